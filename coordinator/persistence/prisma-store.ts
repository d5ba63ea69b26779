import { CohortError } from '../../shared/errors';
import type { PrismaClient } from '../generated/sqlite/client';
import { copyBytes, finiteOrNull, toRoundSummary, validateRoundRecord } from './round-records';
import type {
  ClientInput,
  CohortStore,
  EnrollmentInput,
  EnrollmentSummary,
  OpenedExperiment,
  OpenExperimentInput,
  RoundRecordInput,
  RoundStartInput,
  RoundSummary,
  StoredCheckpoint,
} from './store-types';

/**
 * The Prisma client API the store uses. Both generated clients (SQLite and PostgreSQL) share
 * it model for model, since they come from the same models; the SQLite client's type stands
 * for both.
 */
export type StoreClient = PrismaClient;
type TransactionClient = Parameters<Parameters<StoreClient['$transaction']>[0]>[0];

/** Interactive transactions default to 5 s, too short to write a large checkpoint on a slow disk. */
const TRANSACTION_OPTIONS = { maxWait: 15_000, timeout: 120_000 };

/**
 * CohortStore over a generated Prisma client. All the provider-specific work (URL, driver,
 * migrations) happens before construction, in openStore; this class is the same for SQLite
 * and PostgreSQL, which is what lets one contract suite cover both.
 */
export class PrismaCohortStore implements CohortStore {
  private closed = false;

  constructor(
    private readonly prisma: StoreClient,
    /** Checkpoints kept per experiment (newest first). */
    private readonly keepCheckpoints: number,
    /** Where the data lives, for error messages (password-free). */
    private readonly location: string,
    /**
     * How long a transaction is retried while the database reports it busy (SQLite: another
     * connection holds the write lock); 0 never retries.
     */
    private readonly busyRetryMs = 0,
  ) {}

  /**
   * One interactive transaction, retried from the start while the database is busy. SQLite
   * needs it: Prisma opens transactions DEFERRED, and a transaction that has read and then
   * wants to write while another connection holds the write lock gets SQLITE_BUSY at once
   * (its busy timeout cannot apply: waiting could deadlock), so the whole transaction must be
   * run again once the lock is free.
   */
  private async transaction<T>(run: (tx: TransactionClient) => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.busyRetryMs;
    for (let delay = 10; ; delay = Math.min(delay * 2, 250)) {
      try {
        return await this.prisma.$transaction(run, TRANSACTION_OPTIONS);
      } catch (error) {
        if (!isBusy(error) || Date.now() + delay > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  openExperiment(input: OpenExperimentInput): Promise<OpenedExperiment> {
    return this.guard('openExperiment', async () => {
      const config = configJson(input.config);
      let existing = await this.prisma.experiment.findUnique({ where: { name: input.name } });
      if (!existing) {
        try {
          const created = await this.prisma.experiment.create({
            data: {
              name: input.name,
              task: input.task,
              config,
              modelSpecHash: input.modelSpecHash,
            },
          });
          return { experimentId: created.id, resumed: false, lastCompletedRound: 0 };
        } catch (error) {
          // Another coordinator created it between our read and our write: resume it.
          if (!isUniqueViolation(error)) throw error;
          existing = await this.prisma.experiment.findUnique({ where: { name: input.name } });
          if (!existing) throw error;
        }
      }
      if (existing.task !== input.task || existing.modelSpecHash !== input.modelSpecHash) {
        throw new CohortError(
          'EXPERIMENT_MISMATCH',
          `experiment "${input.name}" already exists with task "${existing.task}" and model ` +
            `spec ${existing.modelSpecHash.slice(0, 12)}, but this run has task "${input.task}" ` +
            `and model spec ${input.modelSpecHash.slice(0, 12)}: choose another experiment name`,
          {
            experiment: input.name,
            storedTask: existing.task,
            storedModelSpecHash: existing.modelSpecHash,
          },
        );
      }
      await this.prisma.experiment.update({ where: { id: existing.id }, data: { config } });
      const last = await this.prisma.round.aggregate({
        where: { experimentId: existing.id, status: 'completed' },
        _max: { number: true },
      });
      return {
        experimentId: existing.id,
        resumed: true,
        lastCompletedRound: last._max.number ?? 0,
      };
    });
  }

  upsertClient(input: ClientInput): Promise<void> {
    return this.guard('upsertClient', async () => {
      const existing = await this.prisma.client.findUnique({ where: { id: input.id } });
      if (existing && existing.publicKey !== input.publicKey) {
        throw new CohortError(
          'AUTH_FAILED',
          `client ${input.id} is already recorded with a different public key`,
        );
      }
      if (!existing) {
        await this.prisma.client.upsert({
          where: { id: input.id },
          create: {
            id: input.id,
            publicKey: input.publicKey,
            displayName: input.displayName ?? null,
            ...(input.platform !== undefined ? { platform: input.platform } : {}),
            backend: input.backend ?? null,
            firstSeenAt: input.seenAt,
            lastSeenAt: input.seenAt,
          },
          update: { lastSeenAt: input.seenAt },
        });
        return;
      }
      await this.prisma.client.update({
        where: { id: input.id },
        data: {
          lastSeenAt: input.seenAt > existing.lastSeenAt ? input.seenAt : existing.lastSeenAt,
          ...(input.displayName !== undefined ? { displayName: input.displayName } : {}),
          ...(input.platform !== undefined ? { platform: input.platform } : {}),
          ...(input.backend !== undefined ? { backend: input.backend } : {}),
        },
      });
    });
  }

  recordEnrollment(input: EnrollmentInput): Promise<void> {
    return this.guard('recordEnrollment', async () => {
      await this.prisma.enrollment.upsert({
        where: {
          experimentId_clientId: { experimentId: input.experimentId, clientId: input.clientId },
        },
        create: {
          experimentId: input.experimentId,
          clientId: input.clientId,
          method: input.method,
          firstEnrolledAt: input.at,
          lastEnrolledAt: input.at,
        },
        update: { method: input.method, lastEnrolledAt: input.at },
        select: { id: true },
      });
    });
  }

  listEnrollments(experimentId: string): Promise<EnrollmentSummary[]> {
    return this.guard('listEnrollments', async () => {
      return this.prisma.enrollment.findMany({
        where: { experimentId },
        orderBy: { clientId: 'asc' },
        select: { clientId: true, method: true, firstEnrolledAt: true, lastEnrolledAt: true },
      });
    });
  }

  beginRound(input: RoundStartInput): Promise<void> {
    return this.guard('beginRound', async () => {
      await this.transaction(async (tx) => {
        const earlier = await tx.round.findMany({
          where: { experimentId: input.experimentId, number: input.number },
          select: { attempt: true, status: true },
        });
        const blocking = earlier.find((r) => r.status === 'completed' || r.status === 'running');
        if (blocking) {
          throw new CohortError(
            'INTERNAL',
            `beginRound: round ${input.number} is already ${blocking.status}`,
          );
        }
        await tx.round.create({
          data: {
            experimentId: input.experimentId,
            number: input.number,
            attempt: nextAttempt(earlier),
            status: 'running',
            secureAggregation: input.secureAggregation,
            startedAt: input.startedAt,
            // Rewritten by recordRound; an aborted attempt keeps its start as its end.
            finishedAt: input.startedAt,
            durationMs: 0,
            participantsCount: 0,
            droppedCount: 0,
            bytesReceived: 0n,
          },
          select: { id: true },
        });
      });
    });
  }

  abortInterruptedRounds(experimentId: string, reason: string): Promise<number[]> {
    return this.guard('abortInterruptedRounds', async () => {
      return this.transaction(async (tx) => {
        const running = await tx.round.findMany({
          where: { experimentId, status: 'running' },
          select: { number: true },
          orderBy: { number: 'asc' },
        });
        await tx.round.updateMany({
          where: { experimentId, status: 'running' },
          data: { status: 'aborted', failureCode: 'ROUND_ABORTED', failureReason: reason },
        });
        return running.map((r) => r.number);
      });
    });
  }

  recordRound(input: RoundRecordInput): Promise<void> {
    return this.guard('recordRound', async () => {
      validateRoundRecord(input);
      await this.transaction(async (tx) => {
        const experiment = await tx.experiment.findUnique({
          where: { id: input.experimentId },
          select: { id: true },
        });
        if (!experiment) {
          throw new CohortError('INTERNAL', `recordRound: no experiment ${input.experimentId}`);
        }
        const clientIds = input.participations.map((p) => p.clientId);
        if (clientIds.length > 0) {
          const known = await tx.client.findMany({
            where: { id: { in: clientIds } },
            select: { id: true },
          });
          const knownIds = new Set(known.map((client) => client.id));
          const missing = clientIds.filter((id) => !knownIds.has(id));
          if (missing.length > 0) {
            throw new CohortError(
              'INTERNAL',
              `recordRound: unknown client(s) ${missing.join(', ')}; call upsertClient first`,
            );
          }
        }
        const earlier = await tx.round.findMany({
          where: { experimentId: input.experimentId, number: input.number },
          select: { id: true, attempt: true, status: true },
        });
        if (earlier.some((round) => round.status === 'completed')) {
          throw new CohortError(
            'INTERNAL',
            `recordRound: round ${input.number} is already recorded as completed`,
          );
        }
        // The attempt beginRound wrote becomes this record; without one, a new attempt.
        const running = earlier.find((r) => r.status === 'running');
        if (running) await tx.round.delete({ where: { id: running.id } });
        const round = await tx.round.create({
          data: {
            experimentId: input.experimentId,
            number: input.number,
            attempt: running?.attempt ?? nextAttempt(earlier),
            status: input.status,
            failureReason: input.failureReason,
            failureCode: input.failureCode,
            secureAggregation: input.secureAggregation,
            startedAt: input.startedAt,
            finishedAt: input.finishedAt,
            durationMs: input.durationMs,
            participantsCount: input.participants,
            droppedCount: input.dropped,
            bytesReceived: BigInt(input.bytesReceived),
            trainLoss: finiteOrNull(input.trainLoss),
            testLoss: finiteOrNull(input.testLoss),
            testAccuracy: finiteOrNull(input.testAccuracy),
            participations: {
              create: input.participations.map((p) => ({
                clientId: p.clientId,
                status: p.status,
                numExamples: p.numExamples,
                errorCode: p.errorCode,
              })),
            },
            metrics: {
              create: Object.entries(input.metrics).map(([key, value]) => ({
                key,
                value: finiteOrNull(value),
              })),
            },
          },
          select: { id: true },
        });
        if (input.checkpoint) {
          await tx.checkpoint.create({
            data: {
              experimentId: input.experimentId,
              roundId: round.id,
              roundNumber: input.number,
              weights: copyBytes(input.checkpoint.weights),
              strategyState: copyBytes(input.checkpoint.strategyState),
              modelHash: input.checkpoint.modelHash,
            },
            select: { id: true },
          });
          const stale = await tx.checkpoint.findMany({
            where: { experimentId: input.experimentId },
            orderBy: { roundNumber: 'desc' },
            skip: this.keepCheckpoints,
            select: { id: true },
          });
          if (stale.length > 0) {
            await tx.checkpoint.deleteMany({ where: { id: { in: stale.map((c) => c.id) } } });
          }
        }
      });
    });
  }

  latestCheckpoint(experimentId: string): Promise<StoredCheckpoint | null> {
    return this.guard('latestCheckpoint', async () => {
      const checkpoint = await this.prisma.checkpoint.findFirst({
        where: { experimentId },
        orderBy: { roundNumber: 'desc' },
      });
      if (!checkpoint) return null;
      return {
        round: checkpoint.roundNumber,
        weights: copyBytes(checkpoint.weights),
        strategyState: copyBytes(checkpoint.strategyState),
        modelHash: checkpoint.modelHash,
      };
    });
  }

  listRounds(experimentId: string): Promise<RoundSummary[]> {
    return this.guard('listRounds', async () => {
      const rows = await this.prisma.round.findMany({
        where: { experimentId },
        orderBy: [{ number: 'asc' }, { attempt: 'asc' }],
        include: {
          participations: {
            include: { client: { select: { displayName: true, platform: true } } },
          },
          metrics: { orderBy: { key: 'asc' } },
          // Never the weights: a history listing must not load every checkpoint.
          checkpoint: { select: { modelHash: true, createdAt: true } },
        },
      });
      return rows.map(toRoundSummary);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.prisma.$disconnect();
  }

  /** Runs one operation, turning every failure that is not already a CohortError into DATABASE_ERROR. */
  private async guard<T>(operation: string, run: () => Promise<T>): Promise<T> {
    if (this.closed) {
      throw new CohortError('DATABASE_ERROR', `${operation}: the store is closed`);
    }
    try {
      return await run();
    } catch (error) {
      if (error instanceof CohortError) throw error;
      throw new CohortError(
        'DATABASE_ERROR',
        `${operation} failed on ${this.location}: ${describeError(error)}`,
      );
    }
  }
}

function configJson(config: Record<string, unknown>): string {
  try {
    return JSON.stringify(config);
  } catch (error) {
    throw new CohortError(
      'INTERNAL',
      `openExperiment: config is not JSON-serializable: ${(error as Error).message}`,
    );
  }
}

/** The attempt number after the recorded ones (1 for a round never attempted). */
function nextAttempt(earlier: ReadonlyArray<{ attempt: number }>): number {
  return Math.max(0, ...earlier.map((r) => r.attempt)) + 1;
}

/** The client's error for SQLITE_BUSY (Prisma maps it to P1008, "Operation has timed out"). */
function isBusy(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'P1008';
}

function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'P2002';
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (isBusy(error))
    return 'the database is locked by another process (gave up after --database-busy-timeout)';
  const code = (error as { code?: unknown }).code;
  // Prisma messages start with a long invocation excerpt; its last line says what happened.
  const lines = error.message.trim().split('\n');
  const message = lines[lines.length - 1]?.trim() || error.name;
  return typeof code === 'string' ? `${message} (${code})` : message;
}
