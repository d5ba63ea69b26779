import { connect, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

/**
 * One loopback address that outlives the coordinator behind it: a TCP forwarder the test
 * holds for its whole run, pointed at whichever coordinator is current. A restart test can
 * then start the second coordinator on any free port (port 0) instead of re-binding the first
 * one's port, which another process may have taken in between; the clients keep the address
 * they were given and reconnect through it by themselves, as they would to a real host name.
 */
export class StableAddress {
  private target: number | null = null;
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: Server) {}

  /** Listens on a free loopback port; connections are refused until {@link pointAt}. */
  static async open(): Promise<StableAddress> {
    const server = createServer();
    const address = new StableAddress(server);
    server.on('connection', (socket) => address.forward(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return address;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** New connections go to `port` (on 127.0.0.1); `null` refuses them, as a stopped host would. */
  pointAt(port: number | null): void {
    this.target = port;
  }

  /** Closes the listener and every forwarded connection. */
  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private forward(incoming: Socket): void {
    if (this.target === null) {
      incoming.destroy();
      return;
    }
    const outgoing = connect(this.target, '127.0.0.1');
    for (const socket of [incoming, outgoing]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      // Either side going away ends the pair, like a dropped TCP connection.
      socket.on('error', () => undefined);
    }
    incoming.on('close', () => outgoing.destroy());
    outgoing.on('close', () => incoming.destroy());
    incoming.pipe(outgoing);
    outgoing.pipe(incoming);
  }
}
