import { signedRegistrationAnswer } from './coordinator-fixtures';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import type { Socket } from 'socket.io';
import { fromHex, toHex } from '../../shared/bytes';
import type { IdentityKeyPair } from '../../shared/identity';
import { clientIdFromPublicKey, generateIdentity } from '../../shared/identity';
import type { FitConfigMessage } from '../../shared/protocol/messages';

/**
 * A hand-written coordinator for client-side tests: its own socket.io server on 127.0.0.1
 * that sends whatever challenge and registration answer a test scripts, then lets the test
 * send requests, while it records everything each client sent — down to the raw engine.io
 * frames — so a test can assert what did, and did not, leave a client.
 */

/** One engine.io packet a client sent, as the server received it. */
export interface Frame {
  type: string;
  /** Text frames as they were; binary frames (socket.io attachments) as bytes. */
  data: string | Uint8Array | undefined;
}

/** One client connection and everything it sent. */
export interface RecordedConnection {
  socket: Socket;
  frames: Frame[];
  /** The body of each `register` the client emitted. */
  registrations: Array<Record<string, unknown>>;
  /** Every `progress` event. */
  progress: unknown[];
  /** Sends a request and resolves with the client's acknowledgement. */
  request(event: string, payload: unknown, timeoutMs?: number): Promise<unknown>;
}

/** What the server does with a connection; every field has an honest default. */
export interface RecordingOptions {
  /** The key the challenge announces and the answers are signed with (default: a fresh one). */
  identity?: IdentityKeyPair;
  /** Replaces the challenge (default: a fresh nonce, the identity's id and key). */
  challenge?(honest: { nonce: string; coordinatorId: string; coordinatorKey: string }): unknown;
  /** Whether the registration answer says secure aggregation (default true). */
  secureAggregation?: boolean;
  /** Experiment named in the registration answer (default 'recorded'). */
  experiment?: string;
  /** Replaces the (signed) registration answer; `undefined` leaves it unanswered. */
  answer?(honest: Record<string, unknown>, registration: Record<string, unknown>): unknown;
}

/** See the module comment. */
export class RecordingCoordinator {
  readonly connections: RecordedConnection[] = [];
  readonly identity: IdentityKeyPair;
  private readonly waiters: Array<() => void> = [];

  private constructor(
    private readonly http: HttpServer,
    private readonly io: Server,
    readonly url: string,
    private readonly options: RecordingOptions,
  ) {
    this.identity = options.identity ?? generateIdentity();
    io.on('connection', (socket) => this.onConnection(socket));
  }

  /** Listens on an ephemeral port of 127.0.0.1. */
  static async start(options: RecordingOptions = {}): Promise<RecordingCoordinator> {
    const http = createServer();
    const io = new Server(http, { maxHttpBufferSize: 16_000_000 });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
    const { port } = http.address() as AddressInfo;
    return new RecordingCoordinator(http, io, `http://127.0.0.1:${port}`, options);
  }

  get publicKeyHex(): string {
    return toHex(this.identity.publicKey);
  }

  get coordinatorId(): string {
    return clientIdFromPublicKey(this.identity.publicKey);
  }

  /** Resolves with the first connection that has sent a registration. */
  async registered(): Promise<RecordedConnection> {
    for (;;) {
      const found = this.connections.find((c) => c.registrations.length > 0);
      if (found) return found;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Disconnects everyone and closes the server. */
  async close(): Promise<void> {
    this.io.disconnectSockets(true);
    await new Promise<void>((resolve) => {
      void this.io.close(() => resolve());
    });
    this.http.close();
  }

  private onConnection(socket: Socket): void {
    const connection: RecordedConnection = {
      socket,
      frames: [],
      registrations: [],
      progress: [],
      request: (event, payload, timeoutMs = 30_000) =>
        new Promise<unknown>((resolve, reject) => {
          socket
            .timeout(timeoutMs)
            .emit(event, payload, (error: Error | null, answer: unknown) =>
              error ? reject(error) : resolve(answer),
            );
        }),
    };
    this.connections.push(connection);
    socket.conn.on('packet', (packet: { type: string; data?: unknown }) => {
      const data = packet.data;
      connection.frames.push({
        type: packet.type,
        data:
          typeof data === 'string' || data === undefined
            ? data
            : data instanceof ArrayBuffer
              ? new Uint8Array(data)
              : new Uint8Array(
                  (data as Uint8Array).buffer,
                  (data as Uint8Array).byteOffset,
                  (data as Uint8Array).byteLength,
                ),
      });
    });
    const nonce = randomBytes(32).toString('hex');
    const honestChallenge = {
      nonce,
      coordinatorId: this.coordinatorId,
      coordinatorKey: this.publicKeyHex,
    };
    socket.on('progress', (progress: unknown) => connection.progress.push(progress));
    socket.on('register', (ins: Record<string, unknown>, ack: (res: unknown) => void) => {
      connection.registrations.push(ins);
      for (const wake of this.waiters.splice(0)) wake();
      if (typeof ack !== 'function' || typeof ins?.publicKey !== 'string') return;
      const clientId = clientIdFromPublicKey(fromHex(ins.publicKey));
      const honest = signedRegistrationAnswer({
        identity: this.identity,
        coordinatorId: this.coordinatorId,
        nonce,
        ins,
        clientId,
        experiment: this.options.experiment ?? 'recorded',
        secureAggregation: this.options.secureAggregation ?? true,
      });
      const answer = this.options.answer ? this.options.answer(honest, ins) : honest;
      if (answer !== undefined) ack(answer);
    });
    socket.emit('challenge', this.options.challenge?.(honestChallenge) ?? honestChallenge);
  }
}

/** The binary frames among `frames` (socket.io attachments). */
export function binaryFrames(frames: readonly Frame[]): Uint8Array[] {
  return frames.map((f) => f.data).filter((d): d is Uint8Array => d instanceof Uint8Array);
}

/** A short local fit config. */
export const QUICK_FIT: FitConfigMessage = {
  epochs: 1,
  batchSize: 16,
  learningRate: 0.05,
  optimizer: 'sgd',
  proximalMu: 0,
  seed: 1,
  maxExamples: 0,
};
