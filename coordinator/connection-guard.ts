import type { Server, Socket } from 'socket.io';
import { CohortError } from '../shared/errors';
import type { Logger } from './logger';

/** Per-address and per-connection limits, so no one peer can exhaust the coordinator. */
export interface ConnectionLimits {
  /** Open connections from one address; more are refused before they get a challenge. */
  maxConnectionsPerAddress: number;
  /**
   * Connections from all addresses together that have not registered yet; more are closed
   * as they arrive. Per-address limits alone do not bound strangers with many addresses.
   */
  maxUnregisteredConnections: number;
  /** Sustained events per second on one connection (bursts of twice that are allowed). */
  maxEventsPerSecond: number;
  /** Largest event a client may send (registration, progress); answers are bounded apart. */
  maxEventBytes: number;
}

/** The events a client may send; everything else is answered MESSAGE_INVALID and dropped. */
const CLIENT_EVENTS: ReadonlySet<string> = new Set(['register', 'progress']);

/**
 * The size of a decoded socket.io argument, counted until it passes `limit` (strings by
 * length, binary by bytes, 8 per other leaf), so checking a huge payload costs at most `limit`.
 */
export function boundedSize(value: unknown, limit: number): number {
  let size = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0 && size <= limit) {
    const item = stack.pop();
    if (typeof item === 'string') size += item.length;
    else if (item instanceof Uint8Array || item instanceof ArrayBuffer) size += item.byteLength;
    else if (Array.isArray(item)) {
      size += 8;
      for (const element of item) stack.push(element);
    } else if (typeof item === 'object' && item !== null) {
      for (const [key, element] of Object.entries(item)) {
        size += key.length;
        stack.push(element);
      }
    } else size += 8;
  }
  return size;
}

/** A token bucket: `rate` tokens a second, holding at most `burst`. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** Takes one token at time `now` (ms); false when the bucket is empty. */
  take(now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

function answer(args: unknown[], code: 'MESSAGE_INVALID' | 'RATE_LIMITED', message: string) {
  const ack = args[args.length - 1];
  if (typeof ack === 'function')
    (ack as (res: unknown) => void)({ status: 'error', code, message });
}

/** What the rest of the coordinator tells the guard. */
export interface ConnectionGuard {
  /** A connection registered: it no longer counts against the unregistered limit. */
  registered(socket: Socket): void;
  /** Connections open and not yet registered, right now (for tests and metrics). */
  readonly unregistered: number;
}

/**
 * Installs the limits on a socket.io server, ahead of everything else. At the transport
 * level, a connection beyond --max-unregistered is closed as it arrives, before socket.io
 * allocates anything for it; a connection beyond the per-address limit is refused at the
 * handshake (its client sees a connect_error `RATE_LIMITED: ...` and retries later with
 * backoff); on a connection, unknown events are answered MESSAGE_INVALID and dropped, an
 * oversized event or a flood closes the connection. Together with the register timeout this
 * bounds what strangers can make the coordinator hold.
 */
export function guardConnections(
  io: Server,
  limits: ConnectionLimits,
  log: Logger,
): ConnectionGuard {
  /** The transport connections (engine.io sockets, the same objects as `socket.conn`). */
  const pending = new Set<object>();
  let refusedSinceWarning = 0;
  let lastWarning = 0;
  io.engine.on('connection', (conn: Socket['conn']) => {
    if (pending.size >= limits.maxUnregisteredConnections) {
      // One line a second at most: a flood must not turn into a flood of log lines.
      refusedSinceWarning++;
      if (Date.now() - lastWarning >= 1000) {
        log.warn(
          `closing ${refusedSinceWarning} new connection(s): ${pending.size} unregistered already (--max-unregistered)`,
        );
        refusedSinceWarning = 0;
        lastWarning = Date.now();
      }
      conn.close();
      return;
    }
    pending.add(conn);
    conn.once('close', () => pending.delete(conn));
  });
  const open = new Map<string, number>();
  io.use((socket, next) => {
    const address = socket.handshake.address;
    const count = open.get(address) ?? 0;
    if (count >= limits.maxConnectionsPerAddress) {
      log.warn(`refusing a connection from ${address}: ${count} already open`);
      next(
        new CohortError(
          'RATE_LIMITED',
          `${count} connections from this address already (--max-connections-per-address)`,
        ),
      );
      return;
    }
    open.set(address, count + 1);
    socket.conn.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
    limitEvents(socket, limits, log);
    next();
  });
  return {
    registered: (socket) => {
      pending.delete(socket.conn);
    },
    get unregistered() {
      return pending.size;
    },
  };
}

function limitEvents(socket: Socket, limits: ConnectionLimits, log: Logger): void {
  const bucket = new TokenBucket(
    limits.maxEventsPerSecond,
    2 * limits.maxEventsPerSecond,
    Date.now(),
  );
  socket.use(([event, ...args], next) => {
    if (!bucket.take(Date.now())) {
      log.warn(
        `closing a connection from ${socket.handshake.address}: more than ${limits.maxEventsPerSecond} events/s`,
      );
      answer(args, 'RATE_LIMITED', 'too many events (--max-events-per-second)');
      socket.disconnect(true);
      return;
    }
    if (!CLIENT_EVENTS.has(event)) {
      answer(args, 'MESSAGE_INVALID', `unknown event ${JSON.stringify(event.slice(0, 40))}`);
      return;
    }
    if (boundedSize(args, limits.maxEventBytes) > limits.maxEventBytes) {
      log.warn(`closing a connection from ${socket.handshake.address}: oversized ${event}`);
      answer(args, 'MESSAGE_INVALID', `${event} is larger than ${limits.maxEventBytes} bytes`);
      socket.disconnect(true);
      return;
    }
    next();
  });
}
