import { toHex, utf8Bytes } from '../bytes';
import type { Socket } from 'socket.io-client';
import { CohortError, isCohortError } from '../errors';
import type { IdentityKeyPair } from '../identity';
import { signDetached } from '../identity';
import type { ClientSideServerEvents, ClientToServerEvents, Ack } from '../protocol/events';
import {
  PROTOCOL_VERSION,
  cancelSchema,
  challengeSchema,
  doneSchema,
  evaluateInsSchema,
  fitInsSchema,
  registerResSchema,
  registrationMessage,
  roundSummarySchema,
} from '../protocol/messages';
import type {
  DoneMessage,
  EvaluateRes,
  FitIns,
  FitRes,
  RegisterIns,
  RoundSummaryMessage,
} from '../protocol/messages';
import { packBinary, unpackBinary } from '../protocol/binary-envelope';
import { parseMessage } from '../protocol/validate';
import { floatsToBytes } from '../weights/codec';
import type { LocalFitResult, Trainer, TrainingProgress } from './trainer';

/** The socket type a client session drives (socket.io-client, Node or browser). */
export type ClientSocket = Socket<ClientSideServerEvents, ClientToServerEvents>;

/** Where the client is in its life; rounds may add phases without changing the others. */
export type ClientState =
  'connecting' | 'registering' | 'idle' | 'training' | 'submitting' | 'evaluating' | 'done';

/** Events a session reports so CLIs and pages can show progress without knowing the protocol. */
export interface ClientSessionEvents {
  onState?(state: ClientState): void;
  onLog?(line: string): void;
  onProgress?(roundId: string, progress: TrainingProgress): void;
  onRoundSummary?(summary: RoundSummaryMessage): void;
}

/**
 * Handles the secure-aggregation phases of a round for this client. The plain protocol
 * never calls it; the secure protocol keeps the round's update here until MaskedInput.
 */
export interface SecureSubmission {
  /** Called once training is done: the update to mask, owned by the handler from now on. */
  prepare(roundId: string, fit: FitIns, result: LocalFitResult): void;
  /** Answers one phase request; throws CohortError to refuse. */
  handle(phase: string, roundId: string, body: unknown): Promise<unknown>;
  /** Forgets a round's secrets (after unmasking, cancellation or disconnect). */
  forget(roundId: string): void;
}

/** Options that shape a session; `faults` exists for simulations and tests only. */
export interface ClientSessionOptions {
  identity: IdentityKeyPair;
  trainer: Trainer;
  platform: 'node' | 'browser';
  displayName?: string;
  secure?: SecureSubmission;
  events?: ClientSessionEvents;
  /** Fault injection: vanish halfway through this round's training (then rejoin later). */
  faults?: { dropMidRound?(round: number): boolean; rejoinAfterMs?: number };
}

/**
 * The platform-free client: registers with the coordinator, answers fit/evaluate/secure
 * aggregation requests, and resolves `finished` when the coordinator says the experiment
 * is over. Transport reconnection (with backoff) is socket.io's; on every (re)connection the
 * coordinator sends a fresh challenge and the session registers again.
 */
export class ClientSession {
  private state: ClientState = 'connecting';
  private readonly cancelled = new Set<string>();
  private resolveFinished!: (message: DoneMessage) => void;
  private rejectFinished!: (error: Error) => void;
  /** Resolves when the coordinator announces the end; rejects on a fatal registration error. */
  readonly finished: Promise<DoneMessage>;
  private clientId: string | null = null;
  private closed = false;

  constructor(
    private readonly socket: ClientSocket,
    private readonly options: ClientSessionOptions,
  ) {
    this.finished = new Promise<DoneMessage>((resolve, reject) => {
      this.resolveFinished = resolve;
      this.rejectFinished = reject;
    });
    this.attach();
  }

  /** The id the coordinator derived from our public key, once registered. */
  get id(): string | null {
    return this.clientId;
  }

  private setState(state: ClientState): void {
    this.state = state;
    this.options.events?.onState?.(state);
  }

  private log(line: string): void {
    this.options.events?.onLog?.(line);
  }

  private attach(): void {
    const socket = this.socket;
    socket.on('connect', () => this.setState('registering'));
    socket.on('disconnect', (reason) => {
      if (this.state === 'done') return;
      this.log(`disconnected (${reason}); reconnecting`);
      this.setState('connecting');
    });
    socket.on('challenge', (raw) => void this.register(raw));
    socket.on('fit', (raw, ack) => void this.answer(ack, () => this.onFit(raw)));
    socket.on('evaluate', (raw, ack) => void this.answer(ack, () => this.onEvaluate(raw)));
    socket.on('secagg', (raw, ack) => void this.answer(ack, () => this.onSecAgg(raw)));
    socket.on('cancel', (raw) => {
      const message = cancelSchema.safeParse(raw);
      if (!message.success) return;
      this.cancelled.add(message.data.roundId);
      this.options.secure?.forget(message.data.roundId);
      this.log(`round ${message.data.roundId} cancelled: ${message.data.reason}`);
    });
    socket.on('round-summary', (raw) => {
      const summary = roundSummarySchema.safeParse(raw);
      if (summary.success) this.options.events?.onRoundSummary?.(summary.data);
    });
    socket.on('done', (raw) => {
      const message = doneSchema.safeParse(raw);
      if (!message.success) return;
      this.setState('done');
      this.resolveFinished(message.data);
    });
  }

  /** Runs a request handler and acknowledges its result, turning failures into data. */
  private async answer(ack: Ack, handler: () => Promise<unknown>): Promise<void> {
    try {
      ack(await handler());
    } catch (error) {
      const code = isCohortError(error) ? error.code : 'INTERNAL';
      const message = error instanceof Error ? error.message : String(error);
      this.log(`request refused: ${message}`);
      ack({ status: 'error', roundId: 'unknown', code, message: message.slice(0, 2000) });
    }
  }

  private async register(raw: unknown): Promise<void> {
    let challenge;
    try {
      challenge = parseMessage(challengeSchema, raw, 'challenge');
    } catch (error) {
      this.log(`ignoring malformed challenge: ${String(error)}`);
      return;
    }
    const { identity, trainer } = this.options;
    const publicKey = toHex(identity.publicKey);
    const signature = signDetached(
      utf8Bytes(registrationMessage(challenge.nonce, challenge.coordinatorId, publicKey)),
      identity,
    );
    const ins: RegisterIns = {
      protocolVersion: PROTOCOL_VERSION,
      publicKey,
      signature: toHex(signature),
      task: trainer.task,
      modelSpecHash: trainer.modelSpecHash,
      platform: this.options.platform,
      backend: trainer.backend,
      trainExamples: trainer.trainExamples,
      testExamples: trainer.testExamples,
      ...(this.options.displayName !== undefined ? { displayName: this.options.displayName } : {}),
    };
    let res;
    try {
      res = parseMessage(
        registerResSchema,
        await this.socket.timeout(30_000).emitWithAck('register', ins),
        'register response',
      );
    } catch (error) {
      this.log(`registration failed: ${String(error)}; will retry on reconnect`);
      return;
    }
    if (res.status === 'error') {
      // The coordinator refused us for good (wrong task, protocol version): stop trying.
      this.setState('done');
      this.socket.disconnect();
      this.rejectFinished(new CohortError('AUTH_FAILED', `${res.code}: ${res.message}`));
      return;
    }
    this.clientId = res.clientId;
    this.log(
      `registered as ${res.clientId} for experiment "${res.experiment}"` +
        ` (secure aggregation ${res.secureAggregation ? 'on' : 'off'})`,
    );
    this.setState('idle');
  }

  private async onFit(raw: unknown): Promise<FitRes> {
    const ins = parseMessage(fitInsSchema, raw, 'fit request');
    if (ins.secure && !this.options.secure) {
      throw new CohortError(
        'CONFIG_INVALID',
        'coordinator asked for secure aggregation, unsupported here',
      );
    }
    this.setState('training');
    const dropAt = this.options.faults?.dropMidRound?.(ins.round) ?? false;
    let dropped = false;
    try {
      const result = await this.options.trainer.fit(ins.model, ins.config, {
        onProgress: (progress) => {
          this.options.events?.onProgress?.(ins.roundId, progress);
          this.socket.emit('progress', {
            roundId: ins.roundId,
            fraction: progress.fraction,
            loss: progress.loss,
          });
          if (dropAt && !dropped && progress.fraction >= 0.5) {
            dropped = true;
            this.vanish();
          }
        },
        shouldStop: () => dropped || this.cancelled.has(ins.roundId),
      });
      if (dropped || this.cancelled.has(ins.roundId)) {
        throw new CohortError('CLIENT_DROPPED', `round ${ins.roundId} abandoned before completion`);
      }
      if (ins.secure) {
        this.options.secure!.prepare(ins.roundId, ins, result);
        return {
          status: 'ok',
          roundId: ins.roundId,
          modelHash: ins.model.modelHash,
          numExamples: result.numExamples,
          trainLoss: result.trainLoss,
        };
      }
      return {
        status: 'ok',
        roundId: ins.roundId,
        modelHash: ins.model.modelHash,
        numExamples: result.numExamples,
        trainLoss: result.trainLoss,
        update: floatsToBytes(result.delta),
      };
    } finally {
      if (this.state === 'training') this.setState('idle');
    }
  }

  private async onEvaluate(raw: unknown): Promise<EvaluateRes> {
    const ins = parseMessage(evaluateInsSchema, raw, 'evaluate request');
    this.setState('evaluating');
    try {
      const result = await this.options.trainer.evaluate(ins.model, ins.batchSize);
      return { status: 'ok', roundId: ins.roundId, ...result };
    } finally {
      if (this.state === 'evaluating') this.setState('idle');
    }
  }

  private async onSecAgg(raw: unknown): Promise<unknown> {
    if (!this.options.secure) {
      throw new CohortError('CONFIG_INVALID', 'secure aggregation is not enabled on this client');
    }
    if (typeof raw !== 'object' || raw === null) {
      throw new CohortError('MESSAGE_INVALID', 'secagg envelope must be an object');
    }
    const { phase, roundId } = raw as Record<string, unknown>;
    if (typeof phase !== 'string' || typeof roundId !== 'string') {
      throw new CohortError('MESSAGE_INVALID', 'secagg envelope needs string phase and roundId');
    }
    const body = unpackBinary(raw);
    this.setState('submitting');
    try {
      return packBinary(await this.options.secure.handle(phase, roundId, body));
    } finally {
      if (this.state === 'submitting') this.setState('idle');
    }
  }

  /** Fault injection: drop the connection now and come back after the round. */
  private vanish(): void {
    this.log('fault injection: vanishing mid-round');
    this.socket.disconnect();
    const delay = this.options.faults?.rejoinAfterMs ?? 2_000;
    setTimeout(() => {
      if (this.state !== 'done') this.socket.connect();
    }, delay);
  }

  /** Leaves for good: no reconnection. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.state !== 'done') this.setState('done');
    this.socket.disconnect();
    this.options.trainer.dispose();
  }
}
