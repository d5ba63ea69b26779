import type { TaskName } from '../shared/model/registry';
import { untrustedCertificate } from './tls-failure';
import { io } from 'socket.io-client';
import { coordinatorUrls, rotateOnReconnect } from './coordinator-urls';
import type {
  ClientSessionEvents,
  ClientSessionOptions,
  ClientSocket,
} from '../shared/client/client-session';
import type { ClientSession } from '../shared/client/client-session';
import { openClientSession } from '../shared/client/open-session';
import { SecAggSubmission } from '../shared/client/secure-submission';
import { TfjsTrainer } from '../shared/client/tfjs-trainer';
import type { Dataset } from '../shared/data/dataset';
import type { IdentityKeyPair } from '../shared/identity';
import { getModelSpec } from '../shared/model/registry';
import type { ModelSpec } from '../shared/model/spec';
import { specHash } from '../shared/model/spec-hash';
import type { RoundLedger } from '../shared/secagg/round-ledger';
import { MemoryRoundLedger } from '../shared/secagg/round-ledger';
import { FileRoundLedger, roundLedgerPath } from './round-ledger-file';
import { WorkerGradientHelpers } from './training/worker-gradient-helpers';

/** Everything a Node client needs once its data and backend are ready. */
export interface NodeClientOptions {
  /** The coordinator's URL, or several separated by commas (a cluster: fails over in turn). */
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
  /** This identity's registrar certificate (`--certificate`), sent at registration. */
  certificate?: Uint8Array;
  /** The registrar key every secure-round member must be certified by (`--registrar-key`). */
  registrarKey?: Uint8Array;
  /** Pinned identity keys of every acceptable cohort member (see loadTrustedKeys). */
  trustedKeys?: Uint8Array[];
  /** Join plain rounds too (`--allow-plain`); default: secure aggregation required. */
  allowPlain?: boolean;
  /** The coordinator's pinned public key, hex (`--coordinator-key`). */
  coordinatorKey?: string;
  /** Share evaluation metrics and example counts in secure sessions (`--share-metrics`). */
  shareMetrics?: boolean;
  /** PEM CA certificate(s) to trust for an `https://` coordinator (`--ca`). */
  ca?: string;
  /** The coordinator's join token (`--join-token-file`); only a proof of it is sent. */
  joinToken?: string;
  /** Smallest secure round this client takes part in (`--min-participants`, default 5). */
  minParticipants?: number;
  /**
   * The identity file this client's key came from: the ledger of secure rounds it revealed
   * shares in is kept next to it (`<identity>.rounds`), so a restart cannot be made to
   * reveal twice. Without it (simulations), the ledger lives in memory.
   */
  identityPath?: string;
  /** An explicit round ledger (tests); overrides `identityPath`. */
  ledger?: RoundLedger;
  /**
   * Threads for local training (`--threads`): on the wasm and cpu backends, threads - 1 worker
   * threads compute parts of every step's gradient. Default 1 (simulations run many clients in
   * one process); native TensorFlow ignores it.
   */
  threads?: number;
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
  // Secure aggregation is always available; unless allowPlain, it is also required.
  const secure = options.secure ?? (await secureSubmission(options));
  const helpers = trainingHelpers(options, spec);
  const trainer = new TfjsTrainer({
    task: options.task,
    spec,
    modelSpecHash: await specHash(spec),
    backend: options.backend,
    train: options.train,
    test: options.test,
    ...(helpers ? { helpers } : {}),
  });
  // Connected only once the session listens, so no challenge can arrive before it does.
  const urls = coordinatorUrls(options.server);
  const socket: ClientSocket = io(urls[0], {
    autoConnect: false,
    transports: ['websocket'],
    reconnection: true,
    reconnectionAttempts: Infinity,
    reconnectionDelay: options.reconnectDelayMs ?? 1_000,
    reconnectionDelayMax: options.reconnectDelayMaxMs ?? 30_000,
    randomizationFactor: 0.5,
    timeout: 20_000,
    // Its own manager: failover turns that manager's URL (see rotateOnReconnect).
    forceNew: true,
    ...(options.ca !== undefined ? { ca: options.ca } : {}),
  });
  rotateOnReconnect(socket, urls);
  // When the run is over the socket is closed so the process can exit on its own.
  const session = openClientSession(socket, trainer, {
    identity: options.identity,
    platform: 'node',
    secure,
    ...(options.displayName !== undefined ? { displayName: options.displayName } : {}),
    ...(options.events ? { events: options.events } : {}),
    ...(options.faults ? { faults: options.faults } : {}),
    ...(options.allowPlain !== undefined ? { allowPlain: options.allowPlain } : {}),
    ...(options.coordinatorKey !== undefined ? { coordinatorKey: options.coordinatorKey } : {}),
    ...(options.shareMetrics !== undefined ? { shareMetrics: options.shareMetrics } : {}),
    ...(options.joinToken !== undefined ? { joinToken: options.joinToken } : {}),
    ...(options.certificate !== undefined ? { certificate: options.certificate } : {}),
  });
  // A certificate this client does not trust will not become trusted by retrying.
  socket.on('connect_error', (error) => {
    const untrusted = untrustedCertificate(error);
    if (untrusted) session.abort(untrusted);
  });
  socket.connect();
  return {
    session,
    close: () => {
      session.close();
      void helpers?.close();
    },
  };
}

/** Worker threads for data-parallel steps, where the backend runs on this thread only. */
function trainingHelpers(
  options: NodeClientOptions,
  spec: ModelSpec,
): WorkerGradientHelpers | undefined {
  const threads = options.threads ?? 1;
  if (threads <= 1 || (options.backend !== 'wasm' && options.backend !== 'cpu')) return undefined;
  return new WorkerGradientHelpers({ count: threads - 1, spec, backend: options.backend });
}

/** The honest secure-aggregation client, with its round ledger. */
async function secureSubmission(options: NodeClientOptions): Promise<SecAggSubmission> {
  const ledger =
    options.ledger ??
    (options.identityPath !== undefined
      ? await FileRoundLedger.open(roundLedgerPath(options.identityPath))
      : new MemoryRoundLedger());
  return new SecAggSubmission({
    identity: options.identity,
    ledger,
    ...(options.trustedKeys ? { knownIdentityKeys: options.trustedKeys } : {}),
    ...(options.registrarKey ? { registrarKey: options.registrarKey } : {}),
    ...(options.minParticipants !== undefined ? { minParticipants: options.minParticipants } : {}),
  });
}
