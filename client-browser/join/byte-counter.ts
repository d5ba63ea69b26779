import type { ClientSocket } from '../../shared/client/client-session';

const encoder = new TextEncoder();

/**
 * Counts what this tab sends, per round, so the page can show that a secure round sends a
 * masked vector and key material, not data: every outgoing engine.io packet is counted as it
 * is created (text by its UTF-8 length plus the packet-type byte, binary attachments by
 * their byteLength). Traffic is booked to the round of the latest fit request, "0" before
 * the first one (registration).
 */
export class ByteCounter {
  private round = '0';

  constructor(
    /** Totals by round number; shared with the page state, so mutated in place. */
    private readonly totals: Record<string, number>,
    private readonly onChange: () => void,
  ) {}

  /** Books later traffic to `round`. */
  setRound(round: number): void {
    this.round = String(round);
  }

  /**
   * Starts counting on `socket`. Call before `socket.connect()`: the counter hooks each new
   * engine.io connection as its manager opens it, before socket.io sends its CONNECT packet.
   * The socket must have its own manager (`forceNew`), or earlier sockets' hooks would count
   * its packets too.
   */
  attach(socket: ClientSocket): void {
    const manager = socket.io;
    manager.on('open', () => {
      manager.engine.on('packetCreate', (packet) => this.add(sizeOf(packet.data)));
    });
  }

  private add(bytes: number): void {
    if (bytes === 0) return;
    this.totals[this.round] = (this.totals[this.round] ?? 0) + bytes;
    this.onChange();
  }
}

/** Bytes of one engine.io packet's payload on the wire (approximately, for text). */
function sizeOf(data: unknown): number {
  if (typeof data === 'string') return 1 + encoder.encode(data).byteLength;
  if (data instanceof ArrayBuffer) return data.byteLength;
  if (ArrayBuffer.isView(data)) return data.byteLength;
  if (typeof Blob !== 'undefined' && data instanceof Blob) return data.size;
  return 1;
}
