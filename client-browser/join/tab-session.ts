import { io } from 'socket.io-client';
import type { ClientSessionEvents, ClientSocket } from '../../shared/client/client-session';
import { SecAggSubmission } from '../../shared/client/secure-submission';
import { TfjsTrainer } from '../../shared/client/tfjs-trainer';
import type { TfjsTrainerOptions } from '../../shared/client/tfjs-trainer';
import type {
  LocalEvaluation,
  LocalFitResult,
  Trainer,
  TrainingProgress,
} from '../../shared/client/trainer';
import { limitExamples } from '../../shared/data/dataset';
import type { SigningIdentity } from '../../shared/identity';
import type { FitConfigMessage, ModelPayload } from '../../shared/protocol/messages';
import type { RoundLedger } from '../../shared/secagg/round-ledger';
import type { ByteCounter } from './byte-counter';
import type { ClientSession } from '../../shared/client/client-session';
import { openClientSession } from '../../shared/client/open-session';

/** Test examples the page evaluates each received global model on (display only). */
const LOCAL_EVAL_LIMIT = 1_000;

/** Everything one connection of the tab needs; the page keeps it across rejoins. */
export interface TabSessionOptions extends TfjsTrainerOptions {
  identity: SigningIdentity;
  ledger: RoundLedger;
  minParticipants: number;
  displayName?: string;
  joinToken?: string;
  events: ClientSessionEvents;
  bytes: ByteCounter;
  /** A fit request for `round` arrived (read for display; the session validates it). */
  onFitRequest(round: number, epochs: number | null): void;
  /** The accuracy of the round's global model on the local test split, computed here. */
  onLocalAccuracy(accuracy: number): void;
  onConnection(state: 'connecting' | 'connected' | 'disconnected'): void;
}

/** One live connection of the tab; `close` leaves for good (the page may join again). */
export interface TabSession {
  readonly session: ClientSession;
  close(): void;
}

/**
 * Connects the tab to its own origin over socket.io (websocket only, reconnecting with
 * backoff) and hands the round logic to the platform-free ClientSession, as the Node client
 * does (client-node/node-client.ts): secure aggregation required, with this tab's identity,
 * its IndexedDB round ledger and its minimum cohort. Nothing here speaks the protocol.
 */
export function connectTab(options: TabSessionOptions): TabSession {
  const trainer = new ObservedTrainer(
    new TfjsTrainer({
      task: options.task,
      spec: options.spec,
      modelSpecHash: options.modelSpecHash,
      backend: options.backend,
      train: options.train,
      // Secure sessions never share metrics, so the trainer's test split serves only the
      // page's own accuracy readout: a bounded sample keeps that quick.
      test: limitExamples(options.test, LOCAL_EVAL_LIMIT),
    }),
    (accuracy) => options.onLocalAccuracy(accuracy),
  );
  const socket: ClientSocket = io(location.origin, {
    autoConnect: false,
    // A manager of its own: a rejoin must not reuse (and double-count) the last one's.
    forceNew: true,
    transports: ['websocket'],
    reconnection: true,
    reconnectionAttempts: Infinity,
    reconnectionDelay: 1_000,
    reconnectionDelayMax: 30_000,
    randomizationFactor: 0.5,
    timeout: 20_000,
  });
  options.bytes.attach(socket);
  socket.on('connect', () => options.onConnection('connected'));
  socket.on('disconnect', () => options.onConnection('disconnected'));
  socket.io.on('reconnect_attempt', () => options.onConnection('connecting'));
  socket.on('fit', (raw: unknown) => {
    const { round, config } = (raw ?? {}) as { round?: unknown; config?: { epochs?: unknown } };
    if (typeof round !== 'number' || !Number.isSafeInteger(round)) return;
    options.bytes.setRound(round);
    options.onFitRequest(round, typeof config?.epochs === 'number' ? config.epochs : null);
  });
  const session = openClientSession(socket, trainer, {
    identity: options.identity,
    platform: 'browser',
    secure: new SecAggSubmission({
      identity: options.identity,
      ledger: options.ledger,
      minParticipants: options.minParticipants,
    }),
    events: options.events,
    ...(options.displayName !== undefined ? { displayName: options.displayName } : {}),
    ...(options.joinToken !== undefined ? { joinToken: options.joinToken } : {}),
  });
  options.onConnection('connecting');
  socket.connect();
  return { session, close: () => session.close() };
}

/**
 * The tfjs trainer, plus one local readout for the page: before training on a round's global
 * model it measures that model's accuracy on (a sample of) the tab's own test split. The
 * number stays in the tab; what the coordinator receives is unchanged.
 */
class ObservedTrainer implements Trainer {
  constructor(
    private readonly inner: TfjsTrainer,
    private readonly onAccuracy: (accuracy: number) => void,
  ) {}

  get task(): string {
    return this.inner.task;
  }
  get modelSpecHash(): string {
    return this.inner.modelSpecHash;
  }
  get backend(): string {
    return this.inner.backend;
  }
  get trainExamples(): number {
    return this.inner.trainExamples;
  }
  get testExamples(): number {
    return this.inner.testExamples;
  }

  async fit(
    model: ModelPayload,
    config: FitConfigMessage,
    hooks: { onProgress?(p: TrainingProgress): void; shouldStop?(): boolean },
  ): Promise<LocalFitResult> {
    if (this.inner.testExamples > 0) {
      try {
        this.onAccuracy((await this.inner.evaluate(model, 256)).accuracy);
      } catch {
        // A bad model payload fails the fit below, with the session's own error.
      }
    }
    return this.inner.fit(model, config, hooks);
  }

  evaluate(model: ModelPayload, batchSize: number): Promise<LocalEvaluation> {
    return this.inner.evaluate(model, batchSize);
  }

  dispose(): void {
    this.inner.dispose();
  }
}
