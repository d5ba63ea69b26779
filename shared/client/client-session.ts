import nacl from 'tweetnacl';
import { joinProof } from '../join-proof';
import { fromHex, toHex, utf8Bytes } from '../bytes';
import type { Socket } from 'socket.io-client';
import { CohortError, isCohortError, parseErrorCode, reasonOf } from '../errors';
import type { SigningIdentity } from '../identity';
import { clientIdFromPublicKey, verifyDetached } from '../identity';
import { signMessage } from '../secagg/crypto-primitives';
import type { ClientSideServerEvents, ClientToServerEvents, Ack } from '../protocol/events';
import {
  PROTOCOL_VERSION,
  cancelSchema,
  challengeSchema,
  doneSchema,
  evaluateInsSchema,
  fitInsSchema,
  registerResSchema,
  registrationAnswerMessage,
  registrationMessage,
  roundIdSchema,
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

/** Least time between two progress reports to the coordinator. */
export const PROGRESS_INTERVAL_MS = 250;

/** Events a session reports so CLIs and pages can show progress without knowing the protocol. */
export interface ClientSessionEvents {
  onState?(state: ClientState): void;
  onLog?(line: string): void;
  onProgress?(roundId: string, progress: TrainingProgress): void;
  onRoundSummary?(summary: RoundSummaryMessage): void;
  /** A secure-aggregation phase request arrived (before it is answered). */
  onPhase?(roundId: string, phase: string): void;
}

/**
 * What a secure round is bound to besides its fit request: the round id, the experiment named
 * in the registration answer and the coordinator id of the challenge (derived from the
 * coordinator's public key). Signatures and ledger keys of the round cover all three.
 */
export interface SecureRoundContext {
  roundId: string;
  experiment: string;
  coordinatorId: string;
}

/**
 * Handles the secure-aggregation phases of a round for this client. The plain protocol
 * never calls it; the secure protocol keeps the round's update here until MaskedInput.
 */
export interface SecureSubmission {
  /** Called once training is done: the update to mask, owned by the handler from now on. */
  prepare(context: SecureRoundContext, fit: FitIns, result: LocalFitResult): void;
  /** Answers one phase request; throws CohortError to refuse. */
  handle(phase: string, roundId: string, body: unknown): Promise<unknown>;
  /** Forgets a round's secrets (after unmasking, cancellation or disconnect). */
  forget(roundId: string): void;
}

/** Options that shape a session; `faults` exists for simulations and tests only. */
export interface ClientSessionOptions {
  identity: SigningIdentity;
  trainer: Trainer;
  platform: 'node' | 'browser';
  displayName?: string;
  /** The secure-aggregation client; required unless `allowPlain` is set. */
  secure?: SecureSubmission;
  /**
   * Join plain rounds too (`cohort client --allow-plain`). Default false: the client, not the
   * coordinator, decides that rounds are secure, so a plain registration answer ends the
   * session (SECAGG_REQUIRED) and a plain fit request is refused before training.
   */
  allowPlain?: boolean;
  /**
   * The coordinator's pinned Ed25519 public key, 64 hex characters
   * (`cohort client --coordinator-key`): any other coordinator, or one that cannot prove it
   * holds this key, ends the session with AUTH_FAILED.
   */
  coordinatorKey?: string;
  /**
   * Share evaluation metrics, and the train/test example counts at registration, in secure
   * sessions (`cohort client --share-metrics`). Default false: a secure session refuses
   * evaluate requests with METRICS_PRIVATE and registers with counts of 0.
   */
  shareMetrics?: boolean;
  /**
   * The coordinator's join token (`cohort client --join-token-file`): registration carries
   * an HMAC proof of it bound to the connection's nonce (shared/join-proof.ts), never the
   * token itself.
   */
  joinToken?: string;
  /**
   * The registrar's certificate of this client's identity key (`cohort client
   * --certificate`): sent at registration, and relayed to the cohort in secure rounds.
   */
  certificate?: Uint8Array;
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
  /** What the current connection's registration established; null until it is answered. */
  private registration: {
    experiment: string;
    secure: boolean;
    coordinatorId: string;
  } | null = null;
  private readonly pinnedKey: string | null;
  private closed = false;

  constructor(
    private readonly socket: ClientSocket,
    private readonly options: ClientSessionOptions,
  ) {
    if (!options.secure && options.allowPlain !== true) {
      throw new CohortError(
        'CONFIG_INVALID',
        'a client without secure aggregation must allow plain rounds (allowPlain)',
      );
    }
    if (options.coordinatorKey !== undefined && !/^[0-9a-fA-F]{64}$/.test(options.coordinatorKey)) {
      throw new CohortError(
        'CONFIG_INVALID',
        '--coordinator-key must be the 64-character hex public key the coordinator prints',
      );
    }
    this.pinnedKey = options.coordinatorKey?.toLowerCase() ?? null;
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
    // Refused by the coordinator's connection limits at the handshake: socket.io does not
    // retry a refusal by the server, so try again after the longest backoff (the limit frees
    // up as others leave).
    socket.on('connect_error', (error) => {
      if (!error.message.startsWith('RATE_LIMITED')) return;
      setTimeout(() => {
        if (this.state !== 'done' && !socket.connected) socket.connect();
      }, socket.io.reconnectionDelayMax());
    });
    socket.on('disconnect', (reason) => {
      this.registration = null;
      if (this.state === 'done') return;
      this.log(`disconnected (${reason}); reconnecting`);
      this.setState('connecting');
    });
    socket.on('challenge', (raw) => void this.register(raw));
    socket.on('fit', (raw, ack) => void this.answer(ack, raw, () => this.onFit(raw)));
    socket.on('evaluate', (raw, ack) => void this.answer(ack, raw, () => this.onEvaluate(raw)));
    socket.on('secagg', (raw, ack) => void this.answer(ack, raw, () => this.onSecAgg(raw)));
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
    socket.on('presence', (ack) => {
      if (typeof ack === 'function') ack({ status: 'ok' });
    });
    socket.on('done', (raw, ack) => {
      const message = doneSchema.safeParse(raw);
      if (!message.success) return;
      if (typeof ack === 'function') ack({ status: 'ok' });
      this.setState('done');
      this.resolveFinished(message.data);
    });
  }

  /**
   * Runs a request handler and acknowledges its result, turning failures into data (an error
   * acknowledgement names the request's round when it had a well-formed one).
   */
  private async answer(ack: Ack, raw: unknown, handler: () => Promise<unknown>): Promise<void> {
    try {
      ack(await handler());
    } catch (error) {
      const code = isCohortError(error) ? error.code : 'INTERNAL';
      const message = reasonOf(error);
      this.log(`request refused: ${code}: ${message}`);
      ack({ status: 'error', roundId: roundIdOf(raw), code, message: message.slice(0, 2000) });
    }
  }

  /** Ends the session for good: no reconnection, `finished` rejects with `error`. */
  private fail(error: CohortError): void {
    this.setState('done');
    this.socket.disconnect();
    this.rejectFinished(error);
  }

  private async register(raw: unknown): Promise<void> {
    let challenge;
    try {
      challenge = parseMessage(challengeSchema, raw, 'challenge');
    } catch (error) {
      this.log(`ignoring malformed challenge: ${String(error)}`);
      return;
    }
    const coordinatorKey = fromHex(challenge.coordinatorKey);
    if (clientIdFromPublicKey(coordinatorKey) !== challenge.coordinatorId) {
      this.log(
        `ignoring challenge: coordinator id ${challenge.coordinatorId} does not derive from its key`,
      );
      return;
    }
    if (this.pinnedKey !== null && challenge.coordinatorKey !== this.pinnedKey) {
      this.fail(
        new CohortError(
          'AUTH_FAILED',
          `the coordinator's key ${challenge.coordinatorKey} is not the one pinned with ` +
            `--coordinator-key (${this.pinnedKey}): refusing to register`,
        ),
      );
      return;
    }
    if (challenge.secureAggregation === false && this.options.allowPlain !== true) {
      // Leave before registering, so the coordinator never counts us toward a plain round.
      this.fail(plainOffered(challenge.coordinatorId));
      return;
    }
    const { identity, trainer, joinToken } = this.options;
    if (challenge.joinTokenRequired === true && joinToken === undefined) {
      this.fail(
        new CohortError(
          'JOIN_REFUSED',
          'this coordinator admits only clients with its join token: pass --join-token-file FILE',
        ),
      );
      return;
    }
    const publicKey = toHex(identity.publicKey);
    const signature = await signMessage(
      utf8Bytes(registrationMessage(challenge.nonce, challenge.coordinatorId, publicKey)),
      identity,
    );
    const clientNonce = toHex(nacl.randomBytes(32));
    // Example counts are metadata: a client that only joins secure rounds keeps them unless it
    // shares its metrics anyway; plain rounds need them (the coordinator bounds claimed counts).
    const shareCounts = this.options.allowPlain === true || this.options.shareMetrics === true;
    const ins: RegisterIns = {
      protocolVersion: PROTOCOL_VERSION,
      publicKey,
      signature: toHex(signature),
      task: trainer.task,
      modelSpecHash: trainer.modelSpecHash,
      platform: this.options.platform,
      backend: trainer.backend,
      trainExamples: shareCounts ? trainer.trainExamples : 0,
      testExamples: shareCounts ? trainer.testExamples : 0,
      clientNonce,
      ...(joinToken !== undefined
        ? {
            joinProof: joinProof(joinToken, {
              nonce: challenge.nonce,
              coordinatorId: challenge.coordinatorId,
              publicKey,
            }),
          }
        : {}),
      ...(this.options.displayName !== undefined ? { displayName: this.options.displayName } : {}),
      ...(this.options.certificate !== undefined
        ? { certificate: toHex(this.options.certificate) }
        : {}),
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
      this.fail(
        new CohortError(
          parseErrorCode(res.code) ?? 'AUTH_FAILED',
          `coordinator refused registration: ${res.message}`,
        ),
      );
      return;
    }
    if (res.coordinatorSignature !== undefined || this.pinnedKey !== null) {
      const signed = registrationAnswerMessage({
        coordinatorId: challenge.coordinatorId,
        nonce: challenge.nonce,
        clientNonce,
        clientPublicKey: publicKey,
        clientId: res.clientId,
        experiment: res.experiment,
        secureAggregation: res.secureAggregation,
      });
      const valid =
        res.coordinatorSignature !== undefined &&
        verifyDetached(utf8Bytes(signed), fromHex(res.coordinatorSignature), coordinatorKey);
      if (!valid) {
        this.fail(
          new CohortError(
            'AUTH_FAILED',
            `the coordinator did not prove it holds key ${challenge.coordinatorKey}` +
              (this.pinnedKey !== null ? ' (pinned with --coordinator-key)' : '') +
              ': its registration answer is not signed by it',
          ),
        );
        return;
      }
    }
    if (!res.secureAggregation && this.options.allowPlain !== true) {
      this.fail(plainOffered(challenge.coordinatorId));
      return;
    }
    this.clientId = res.clientId;
    this.registration = {
      experiment: res.experiment,
      secure: res.secureAggregation,
      coordinatorId: challenge.coordinatorId,
    };
    this.log(
      `registered as ${res.clientId} for experiment "${res.experiment}"` +
        ` (secure aggregation ${res.secureAggregation ? 'on' : 'off'};` +
        ` coordinator key ${challenge.coordinatorKey})`,
    );
    this.setState('idle');
  }

  private async onFit(raw: unknown): Promise<FitRes> {
    const ins = parseMessage(fitInsSchema, raw, 'fit request');
    // Decided before anything is trained: the client, not the request, says what leaves it.
    if (!ins.secure && this.options.allowPlain !== true) {
      throw new CohortError(
        'SECAGG_REQUIRED',
        `round ${ins.roundId} asks for a plain update, and this client requires secure ` +
          'aggregation (--allow-plain joins plain rounds)',
      );
    }
    if (ins.secure && !this.options.secure) {
      throw new CohortError(
        'CONFIG_INVALID',
        'coordinator asked for secure aggregation, unsupported here',
      );
    }
    const registration = this.registration;
    if (!registration) {
      throw new CohortError('MESSAGE_INVALID', 'fit request before registration was answered');
    }
    // A secure session reports how far training got, never how well it went.
    const reportLoss = !ins.secure && !registration.secure;
    this.setState('training');
    const dropAt = this.options.faults?.dropMidRound?.(ins.round) ?? false;
    let dropped = false;
    let lastReport = -Infinity;
    try {
      const result = await this.options.trainer.fit(ins.model, ins.config, {
        onProgress: (progress) => {
          this.options.events?.onProgress?.(ins.roundId, progress);
          // One report per interval (and the last): a fast GPU would otherwise send one per
          // batch, hundreds a second, into the coordinator's per-connection event limit.
          const now = Date.now();
          if (progress.fraction >= 1 || now - lastReport >= PROGRESS_INTERVAL_MS) {
            lastReport = now;
            this.socket.emit(
              'progress',
              reportLoss
                ? { roundId: ins.roundId, fraction: progress.fraction, loss: progress.loss }
                : { roundId: ins.roundId, fraction: progress.fraction },
            );
          }
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
        // The example count and the train loss travel inside the masked vector.
        this.options.secure!.prepare(
          {
            roundId: ins.roundId,
            experiment: registration.experiment,
            coordinatorId: registration.coordinatorId,
          },
          ins,
          result,
        );
        return { status: 'ok', roundId: ins.roundId, modelHash: ins.model.modelHash };
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
    if (this.registration?.secure !== false && this.options.shareMetrics !== true) {
      throw new CohortError(
        'METRICS_PRIVATE',
        'this client keeps its evaluation metrics private in secure rounds (--share-metrics shares them)',
      );
    }
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
    this.options.events?.onPhase?.(roundId, phase);
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

  /**
   * Ends the session for good with `error` (no reconnection; `finished` rejects): for what
   * the platform adapter finds unrecoverable, e.g. a TLS certificate it does not trust.
   */
  abort(error: CohortError): void {
    if (this.state !== 'done') this.fail(error);
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

/** The round id of a request, for its error acknowledgement ('unknown' when malformed). */
function roundIdOf(raw: unknown): string {
  if (typeof raw !== 'object' || raw === null) return 'unknown';
  const parsed = roundIdSchema.safeParse((raw as { roundId?: unknown }).roundId);
  return parsed.success ? parsed.data : 'unknown';
}

/** Why a client that requires secure aggregation leaves a plain coordinator. */
function plainOffered(coordinatorId: string): CohortError {
  return new CohortError(
    'SECAGG_REQUIRED',
    `coordinator ${coordinatorId} runs plain rounds, and this client requires secure ` +
      'aggregation: pass --allow-plain (allowPlain: true) to send it unmasked updates',
  );
}
