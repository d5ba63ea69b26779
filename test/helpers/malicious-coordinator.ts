import { signedRegistrationAnswer } from './coordinator-fixtures';
import { fromHex, toHex } from '../../shared/bytes';
import { randomBytes } from 'node:crypto';
import { packBinary, unpackBinary } from '../../shared/protocol/binary-envelope';
import { createServer } from 'node:http';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import type { Socket } from 'socket.io';
import type { IdentityKeyPair } from '../../shared/identity';
import { clientIdFromPublicKey, generateIdentity } from '../../shared/identity';
import type { FitConfigMessage, FitIns, ModelPayload } from '../../shared/protocol/messages';

/**
 * A coordinator that tests script to misbehave: its own socket.io server on 127.0.0.1 that
 * speaks Cohort's wire protocol (challenge, register, fit, secagg envelopes) but sends
 * whatever the test decides, so real Node clients can be checked against a malicious
 * coordinator over real sockets. It trusts registrations blindly: what matters here is what
 * the honest clients accept, not what this server checks. It does hold a real coordinator key:
 * its challenge announces the key and the id derived from it, and it signs every registration
 * answer, so the clients register exactly as with the real coordinator and every secure
 * round it runs is bound to {@link coordinatorId} and {@link experiment}.
 */

/** Experiment name the harness announces at registration (unless told otherwise). */
export const HARNESS_EXPERIMENT = 'adversarial';

/** A client that registered with the harness. */
export interface HarnessClient {
  id: string;
  identityPublicKey: Uint8Array;
  socket: Socket;
}

/** How long the harness waits for any acknowledgement before failing the test. */
const ACK_TIMEOUT_MS = 30_000;

/** See the module comment. */
export class MaliciousCoordinator {
  /** Registered clients by id. */
  readonly clients = new Map<string, HarnessClient>();
  /** The coordinator's long-term key; its id is {@link coordinatorId}. */
  readonly identity: IdentityKeyPair = generateIdentity();
  /** The id the challenge announces (derived from the key), which clients bind rounds to. */
  readonly coordinatorId = clientIdFromPublicKey(this.identity.publicKey);
  private readonly waiters: Array<() => void> = [];

  private constructor(
    private readonly http: HttpServer,
    private readonly io: Server,
    readonly url: string,
    /** The experiment named in every registration answer. */
    readonly experiment: string,
  ) {
    io.on('connection', (socket) => this.onConnection(socket));
  }

  /** Listens on an ephemeral port of 127.0.0.1. */
  static async start(options: { experiment?: string } = {}): Promise<MaliciousCoordinator> {
    const http = createServer();
    const io = new Server(http, { maxHttpBufferSize: 16_000_000 });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
    const { port } = http.address() as AddressInfo;
    return new MaliciousCoordinator(
      http,
      io,
      `http://127.0.0.1:${port}`,
      options.experiment ?? HARNESS_EXPERIMENT,
    );
  }

  /** The coordinator's public key, hex, as its challenge announces it. */
  get publicKeyHex(): string {
    return toHex(this.identity.publicKey);
  }

  /** Resolves with the registered clients, sorted by id, once there are `count`. */
  async waitForClients(count: number): Promise<HarnessClient[]> {
    while (this.clients.size < count) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    return [...this.clients.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /** Sends a fit request (secure mode) to each client and returns every acknowledgement. */
  async fit(
    roundId: string,
    round: number,
    modelFor: (clientId: string) => ModelPayload,
    config: FitConfigMessage,
  ): Promise<Map<string, unknown>> {
    const ids = [...this.clients.keys()];
    const acks = await Promise.all(
      ids.map((id) => {
        const ins: FitIns = {
          roundId,
          round,
          model: modelFor(id),
          config,
          deadlineMs: ACK_TIMEOUT_MS,
          secure: true,
        };
        return this.request(id, 'fit', ins);
      }),
    );
    return new Map(ids.map((id, i) => [id, acks[i]] as const));
  }

  /**
   * Sends one secure-aggregation envelope (packed, as the real coordinator does) and returns
   * the client's acknowledgement, unpacked unless it is an error.
   */
  async secagg(clientId: string, phase: string, roundId: string, body: unknown): Promise<unknown> {
    const answer = await this.request(clientId, 'secagg', { phase, roundId, ...packBinary(body) });
    return isErrorAck(answer) ? answer : unpackBinary(answer);
  }

  /**
   * Sends `event` to one client and waits for its acknowledgement; rejects at once if the
   * client disconnects meanwhile (a test should fail fast, not wait for the timeout).
   */
  request(clientId: string, event: string, payload: unknown): Promise<unknown> {
    const client = this.clients.get(clientId);
    if (!client) return Promise.reject(new Error(`no client ${clientId} is connected`));
    const { socket } = client;
    return new Promise<unknown>((resolve, reject) => {
      const onDisconnect = (reason: string) =>
        reject(
          new Error(`client ${clientId} disconnected (${reason}) instead of answering ${event}`),
        );
      socket.once('disconnect', onDisconnect);
      socket
        .timeout(ACK_TIMEOUT_MS)
        .emit(event, payload, (error: Error | null, answer: unknown) => {
          socket.off('disconnect', onDisconnect);
          if (error) reject(error);
          else resolve(answer);
        });
    });
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
    const nonce = randomBytes(32).toString('hex');
    socket.on(
      'register',
      (ins: { publicKey?: unknown; clientNonce?: unknown }, ack: (res: unknown) => void) => {
        if (typeof ack !== 'function' || typeof ins?.publicKey !== 'string') return;
        const identityPublicKey = fromHex(ins.publicKey);
        const id = clientIdFromPublicKey(identityPublicKey);
        this.clients.set(id, { id, identityPublicKey, socket });
        const answer = signedRegistrationAnswer({
          identity: this.identity,
          coordinatorId: this.coordinatorId,
          nonce,
          ins,
          clientId: id,
          experiment: this.experiment,
          secureAggregation: true,
        });
        ack(answer);
        for (const wake of this.waiters.splice(0)) wake();
      },
    );
    socket.on('disconnect', () => {
      for (const [id, c] of this.clients) if (c.socket === socket) this.clients.delete(id);
    });
    socket.emit('challenge', {
      nonce,
      coordinatorId: this.coordinatorId,
      coordinatorKey: this.publicKeyHex,
    });
  }
}

/** True when an acknowledgement is Cohort's error shape ({ status: 'error', code, message }). */
export function isErrorAck(
  ack: unknown,
): ack is { status: 'error'; code: string; message: string } {
  if (typeof ack !== 'object' || ack === null) return false;
  const a = ack as Record<string, unknown>;
  return a.status === 'error' && typeof a.code === 'string' && typeof a.message === 'string';
}
