import type { TaskName } from '../shared/model/registry';
import { io } from 'socket.io-client';
import type {
  ClientSessionEvents,
  ClientSessionOptions,
  ClientSocket,
} from '../shared/client/client-session';
import { ClientSession } from '../shared/client/client-session';
import { SecAggSubmission } from '../shared/client/secure-submission';
import { TfjsTrainer } from '../shared/client/tfjs-trainer';
import type { Dataset } from '../shared/data/dataset';
import type { IdentityKeyPair } from '../shared/identity';
import { getModelSpec } from '../shared/model/registry';
import { specHash } from '../shared/model/spec-hash';

/** Everything a Node client needs once its data and backend are ready. */
export interface NodeClientOptions {
  server: string;
  task: TaskName;
  train: Dataset;
  test: Dataset;
  identity: IdentityKeyPair;
  /** The tfjs backend in use, reported to the coordinator. */
  backend: string;
  displayName?: string;
  events?: ClientSessionEvents;
  faults?: ClientSessionOptions['faults'];
  secure?: ClientSessionOptions['secure'];
  /** Pinned identity keys of every acceptable cohort member (see loadTrustedKeys). */
  trustedKeys?: Uint8Array[];
  /** Reconnection backoff: first delay and cap, in ms (socket.io adds jitter). */
  reconnectDelayMs?: number;
  reconnectDelayMaxMs?: number;
}

/** A connected Node client; `session.finished` resolves when the coordinator ends the run. */
export interface NodeClient {
  readonly session: ClientSession;
  close(): void;
}

/**
 * Connects a Node client over socket.io (websocket transport, exponential backoff with
 * jitter on reconnect) and hands the round logic to the platform-free ClientSession.
 */
export async function connectNodeClient(options: NodeClientOptions): Promise<NodeClient> {
  const spec = getModelSpec(options.task);
  const trainer = new TfjsTrainer({
    task: options.task,
    spec,
    modelSpecHash: await specHash(spec),
    backend: options.backend,
    train: options.train,
    test: options.test,
  });
  const socket: ClientSocket = io(options.server, {
    transports: ['websocket'],
    reconnection: true,
    reconnectionAttempts: Infinity,
    reconnectionDelay: options.reconnectDelayMs ?? 1_000,
    reconnectionDelayMax: options.reconnectDelayMaxMs ?? 30_000,
    randomizationFactor: 0.5,
    timeout: 20_000,
  });
  const session = new ClientSession(socket, {
    identity: options.identity,
    trainer,
    platform: 'node',
    ...(options.displayName !== undefined ? { displayName: options.displayName } : {}),
    ...(options.events ? { events: options.events } : {}),
    ...(options.faults ? { faults: options.faults } : {}),
    // Secure aggregation is always available; the coordinator decides whether a round uses it.
    secure: options.secure ?? new SecAggSubmission(options.identity, options.trustedKeys),
  });
  // When the run is over the socket is closed so the process can exit on its own.
  session.finished.then(
    () => socket.disconnect(),
    () => socket.disconnect(),
  );
  return { session, close: () => session.close() };
}
