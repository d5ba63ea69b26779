import { CohortError } from '../errors';
import type { SigningIdentity } from '../identity';
import type { FitIns } from '../protocol/messages';
import type { RoundLedger } from '../secagg';
import { MemoryRoundLedger, SecAggClientSession, isSecAggPhase } from '../secagg';
import type { SecureRoundContext, SecureSubmission } from './client-session';
import type { LocalFitResult } from './trainer';

interface PendingRound {
  session: SecAggClientSession;
  delta: Float32Array;
}

/** Options of a {@link SecAggSubmission}: the client's secure-aggregation policy. */
export interface SecAggSubmissionOptions {
  identity: SigningIdentity;
  /** Pinned identity keys: every participant of a secure round must be one of them. */
  knownIdentityKeys?: Iterable<Uint8Array>;
  /** The registrar's key: every participant of a secure round must be certified by it. */
  registrarKey?: Uint8Array;
  /** Smallest secure cohort this client joins (default 5, see DEFAULT_MIN_PARTICIPANTS). */
  minParticipants?: number;
  /**
   * Rounds this client revealed shares in, persisted with its identity; without one a repeat
   * is only refused within this process.
   */
  ledger?: RoundLedger;
}

/**
 * The client's side of secure aggregation: keeps a round's update after training and answers
 * the five phases through an honest SecAggClientSession, which checks everything the
 * coordinator sends before revealing anything. Only the current round is held; a new round,
 * a cancellation or the end of unmasking forgets (and wipes) the previous one.
 */
export class SecAggSubmission implements SecureSubmission {
  private readonly rounds = new Map<string, PendingRound>();
  /** Recently ended rounds, so a repeated request is named a replay rather than unknown. */
  private readonly ended: string[] = [];
  private readonly ledger: RoundLedger;

  constructor(private readonly options: SecAggSubmissionOptions) {
    this.ledger = options.ledger ?? new MemoryRoundLedger();
  }

  prepare(context: SecureRoundContext, fit: FitIns, result: LocalFitResult): void {
    for (const old of [...this.rounds.keys()]) this.forget(old);
    if (this.ended.includes(context.roundId)) {
      throw new CohortError('SECAGG_REPLAY', `secure round ${context.roundId} already ran here`);
    }
    this.rounds.set(context.roundId, {
      session: new SecAggClientSession({
        identity: this.options.identity,
        coordinatorId: context.coordinatorId,
        experiment: context.experiment,
        roundId: context.roundId,
        modelHash: fit.model.modelHash,
        input: {
          update: result.delta,
          exampleCount: result.numExamples,
          trainLoss: result.trainLoss,
        },
        ledger: this.ledger,
        ...(this.options.minParticipants !== undefined
          ? { minParticipants: this.options.minParticipants }
          : {}),
        ...(this.options.knownIdentityKeys
          ? { knownIdentityKeys: this.options.knownIdentityKeys }
          : {}),
        ...(this.options.registrarKey ? { registrarKey: this.options.registrarKey } : {}),
      }),
      delta: result.delta,
    });
  }

  async handle(phase: string, roundId: string, body: unknown): Promise<unknown> {
    const pending = this.rounds.get(roundId);
    if (!pending) {
      if (this.ended.includes(roundId)) {
        throw new CohortError('SECAGG_REPLAY', `secure round ${roundId} already ended here`);
      }
      throw new CohortError('UPDATE_STALE', `no secure round ${roundId} in progress here`);
    }
    if (!isSecAggPhase(phase)) {
      throw new CohortError('MESSAGE_INVALID', `unknown secure-aggregation phase "${phase}"`);
    }
    try {
      const response = await pending.session.answer(phase, body);
      if (phase === 'unmasking') this.forget(roundId);
      return response;
    } catch (error) {
      // The session refuses for good after any error; drop the update with it.
      this.forget(roundId);
      throw error;
    }
  }

  forget(roundId: string): void {
    const pending = this.rounds.get(roundId);
    if (!pending) return;
    pending.session.abandon();
    pending.delta.fill(0);
    this.rounds.delete(roundId);
    this.ended.push(roundId);
    if (this.ended.length > 32) this.ended.shift();
  }
}
