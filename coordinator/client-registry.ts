import type { ClientProxy } from './client-proxy';
import { socketClientProxy } from './client-proxy';
import { fromHex, toHex, utf8Bytes } from '../shared/bytes';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Server, Socket } from 'socket.io';
import { CohortError, isCohortError, errorMessage } from '../shared/errors';
import type { IdentityKeyPair } from '../shared/identity';
import { clientIdFromPublicKey, signDetached, verifyDetached } from '../shared/identity';
import type { ClientToServerEvents, ServerToClientEvents } from '../shared/protocol/events';
import type { RegisterIns, RegisterRes } from '../shared/protocol/messages';
import {
  PROTOCOL_VERSION,
  registerInsSchema,
  registrationAnswerMessage,
  registrationMessage,
} from '../shared/protocol/messages';
import { parseMessage } from '../shared/protocol/validate';
import type { EnrollmentMethod, EnrollmentPolicy } from './enrollment';
import type { Logger } from './logger';

/** The socket type the coordinator drives. */
export type CoordinatorSocket = Socket<ClientToServerEvents, ServerToClientEvents>;

/**
 * A registered client as the round phases see it: connected to this process or, in cluster
 * mode, to another one; either way reached through its proxy.
 */
export interface RoundClient {
  readonly id: string;
  readonly publicKey: Uint8Array;
  readonly info: RegisterIns;
  /** How the round phases talk to this client (fit, evaluate, secure aggregation, cancel). */
  readonly proxy: ClientProxy;
  readonly connectedAt: Date;
  /** Bytes received from this client so far (engine.io packet payloads; 0 when remote). */
  bytesReceived(): number;
}

/** A registered client connected to this process. */
export interface ConnectedClient extends RoundClient {
  /** The connection itself: only the registry and the connection guard touch it. */
  readonly socket: CoordinatorSocket;
}

/** What the registry needs to know to accept a client. */
export interface RegistryOptions {
  /**
   * The coordinator's long-term Ed25519 identity: its public key and the id derived from it
   * go out in every challenge, and it signs every registration answer.
   */
  identity: IdentityKeyPair;
  task: string;
  modelSpecHash: string;
  experiment: string;
  secureAggregation: boolean;
  /** A connection that has not registered by then is closed (idle sockets cost memory). */
  registerTimeoutMs: number;
  /** Who may register (join token, allowlist); checked once the client proved its key. */
  enrollment: EnrollmentPolicy;
  /** Persists the client and its enrollment before it is announced as registered. */
  onRegister(client: ConnectedClient, method: EnrollmentMethod): Promise<void>;
  log: Logger;
}

/** How long a registered connection has to answer "still there?" before it is replaced. */
export const PRESENCE_TIMEOUT_MS = 3_000;

/** True when the socket is connected and answers a presence probe in time. */
async function stillThere(socket: CoordinatorSocket): Promise<boolean> {
  if (!socket.connected) return false;
  try {
    await socket.timeout(PRESENCE_TIMEOUT_MS).emitWithAck('presence');
    return true;
  } catch {
    return false;
  }
}

/**
 * Tracks who is connected and proven. A client only counts once it has signed this
 * coordinator's fresh nonce with the key its id derives from, so ids cannot be chosen or
 * stolen. A second connection of a registered client is refused while the first answers
 * (IDENTITY_IN_USE), and replaces it when it does not (a reconnect after a network cut).
 */
export class ClientRegistry extends EventEmitter<{
  registered: [ConnectedClient];
  left: [string, string];
}> {
  private readonly clients = new Map<string, ConnectedClient>();
  /** The id clients bind their signatures to: derived from the coordinator's public key. */
  readonly coordinatorId: string;
  private readonly coordinatorKey: string;

  constructor(
    io: Server<ClientToServerEvents, ServerToClientEvents>,
    private readonly options: RegistryOptions,
  ) {
    super();
    this.coordinatorId = clientIdFromPublicKey(options.identity.publicKey);
    this.coordinatorKey = toHex(options.identity.publicKey);
    io.on('connection', (socket) => this.onConnection(socket));
  }

  /** Connected, registered clients (a snapshot). */
  list(): ConnectedClient[] {
    return [...this.clients.values()];
  }

  get(id: string): ConnectedClient | undefined {
    return this.clients.get(id);
  }

  get size(): number {
    return this.clients.size;
  }

  private onConnection(socket: CoordinatorSocket): void {
    const nonce = randomBytes(32).toString('hex');
    let bytes = 0;
    socket.conn.on('packet', (packet: { data?: unknown }) => {
      const data = packet.data;
      if (typeof data === 'string') bytes += Buffer.byteLength(data);
      else if (data instanceof Uint8Array) bytes += data.byteLength;
      else if (data instanceof ArrayBuffer) bytes += data.byteLength;
    });
    // One identity per connection: a second registration while one is pending or done is
    // refused, so a socket can never stand for several clients.
    let state: 'none' | 'pending' | { id: string } = 'none';
    const unregistered = setTimeout(() => {
      if (typeof state === 'object') return;
      this.options.log.info(`closing a connection that did not register in time`);
      socket.disconnect(true);
    }, this.options.registerTimeoutMs);
    unregistered.unref();
    socket.on('register', (raw, ack) => {
      if (typeof ack !== 'function') return;
      if (state !== 'none') {
        ack({
          status: 'error',
          code: 'MESSAGE_INVALID',
          message: 'this connection has already registered (reconnect to register again)',
        });
        return;
      }
      state = 'pending';
      void this.register(socket, nonce, raw, () => bytes).then(
        (res) => {
          state = res.status === 'ok' ? { id: res.clientId } : 'none';
          ack(res);
        },
        (error: unknown) => {
          state = 'none';
          this.options.log.warn(`registration error: ${errorMessage(error)}`);
          ack({ status: 'error', code: 'INTERNAL', message: 'registration failed' });
        },
      );
    });
    // Progress is advisory; it is validated where it is consumed (round runner).
    socket.on('disconnect', (reason) => {
      clearTimeout(unregistered);
      for (const [id, client] of this.clients) {
        if (client.socket !== socket) continue;
        this.clients.delete(id);
        this.emit('left', id, reason);
      }
    });
    socket.emit('challenge', {
      nonce,
      coordinatorId: this.coordinatorId,
      coordinatorKey: this.coordinatorKey,
      secureAggregation: this.options.secureAggregation,
      task: this.options.task,
      modelSpecHash: this.options.modelSpecHash,
      joinTokenRequired: this.options.enrollment.tokenRequired,
    });
  }

  private async register(
    socket: CoordinatorSocket,
    nonce: string,
    raw: unknown,
    bytesReceived: () => number,
  ): Promise<RegisterRes> {
    let ins: RegisterIns;
    try {
      ins = parseMessage(registerInsSchema, raw, 'register');
      if (ins.protocolVersion !== PROTOCOL_VERSION) {
        throw new CohortError(
          'PROTOCOL_VERSION',
          `client speaks protocol v${ins.protocolVersion}, coordinator v${PROTOCOL_VERSION}`,
        );
      }
      if (ins.task !== this.options.task || ins.modelSpecHash !== this.options.modelSpecHash) {
        throw new CohortError(
          'TASK_MISMATCH',
          `coordinator runs task "${this.options.task}" (model ${this.options.modelSpecHash.slice(0, 12)}), ` +
            `client brought "${ins.task}" (model ${ins.modelSpecHash.slice(0, 12)})`,
        );
      }
      const publicKey = fromHex(ins.publicKey);
      const message = utf8Bytes(registrationMessage(nonce, this.coordinatorId, ins.publicKey));
      if (!verifyDetached(message, fromHex(ins.signature), publicKey)) {
        throw new CohortError('AUTH_FAILED', 'registration signature does not verify');
      }
      this.options.enrollment.admit(ins, { nonce, coordinatorId: this.coordinatorId });
      const id = clientIdFromPublicKey(publicKey);
      const previous = this.clients.get(id);
      if (previous && previous.socket !== socket && (await stillThere(previous.socket))) {
        // Evicting a live connection for a newcomer with the same key is how two processes
        // sharing one identity file kick each other off forever: the first one stays.
        throw new CohortError(
          'IDENTITY_IN_USE',
          `client ${id} is already connected (another process or machine uses the same identity): ` +
            'give each client its own --identity FILE',
        );
      }
      const client: ConnectedClient = {
        id,
        publicKey,
        info: ins,
        socket,
        proxy: socketClientProxy(socket),
        connectedAt: new Date(),
        bytesReceived,
      };
      await this.options.onRegister(client, this.options.enrollment.method);
      if (!socket.connected) throw new CohortError('CLIENT_DROPPED', 'left during registration');
      // A previous connection that did not answer is a dead one not yet noticed (a client
      // reconnecting after a network cut): the new connection replaces it.
      const stale = this.clients.get(id);
      this.clients.set(id, client);
      if (stale && stale.socket !== socket) stale.socket.disconnect(true);
      this.emit('registered', client);
      const answer = {
        status: 'ok' as const,
        clientId: id,
        experiment: this.options.experiment,
        secureAggregation: this.options.secureAggregation,
      };
      if (ins.clientNonce === undefined) return answer;
      const signed = registrationAnswerMessage({
        coordinatorId: this.coordinatorId,
        nonce,
        clientNonce: ins.clientNonce,
        clientPublicKey: ins.publicKey,
        clientId: id,
        experiment: answer.experiment,
        secureAggregation: answer.secureAggregation,
      });
      return {
        ...answer,
        coordinatorSignature: toHex(signDetached(utf8Bytes(signed), this.options.identity)),
      };
    } catch (error) {
      if (!isCohortError(error)) throw error;
      this.options.log.warn(`refused registration: ${error.message}`);
      return { status: 'error', code: error.code, message: error.reason };
    }
  }
}
