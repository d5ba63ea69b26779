import { z } from 'zod';
import { CohortError } from '../shared/errors';
import { TASK_NAMES, getModelSpec } from '../shared/model/registry';
import { summarizeModelSpec } from '../shared/model/validate-spec';
import { MIN_THRESHOLD, chooseSecAggParams } from '../shared/secagg/params';

/** Federated evaluation modes: who measures the global model after each round. */
export const EVALUATION_MODES = ['auto', 'centralized', 'federated', 'both', 'none'] as const;
export const STRATEGY_NAMES = ['fedavg', 'fedavgm', 'fedadam', 'fedyogi', 'fedprox'] as const;

const positiveInt = z.number().int().positive();

/**
 * Every coordinator option with its default, validated once at start-up and frozen, so a bad
 * value is refused with a clear message before a socket opens, and a configured 0 never
 * silently becomes a default.
 */
export const coordinatorConfigSchema = z
  .object({
    host: z.string().min(1).default('0.0.0.0'),
    port: z.number().int().min(0).max(65_535).default(8080),
    task: z.enum(TASK_NAMES).default('mnist'),
    experiment: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,100}$/, 'letters, digits, _ . - only')
      .optional(),
    rounds: positiveInt.max(100_000).default(10),
    minClients: positiveInt.max(100_000).default(3),
    clientsPerRound: positiveInt.max(100_000).optional(),
    fraction: z.number().gt(0).max(1).optional(),
    overSelection: z.number().min(0).max(1).default(0.1),
    epochs: positiveInt.max(1000).default(1),
    batchSize: positiveInt.max(65_536).default(32),
    learningRate: z.number().gt(0).max(10).default(0.1),
    optimizer: z.enum(['sgd', 'adam']).default('sgd'),
    maxExamples: z.number().int().min(0).default(0),
    strategy: z.enum(STRATEGY_NAMES).default('fedavg'),
    serverLearningRate: z.number().gt(0).max(100).optional(),
    proximalMu: z.number().min(0).max(100).optional(),
    roundTimeoutMs: positiveInt.default(600_000),
    evaluateTimeoutMs: positiveInt.default(120_000),
    /** How long to wait for minClients before a round; undefined = forever. */
    waitForClientsMs: positiveInt.optional(),
    evaluation: z.enum(EVALUATION_MODES).default('auto'),
    secureAggregation: z.boolean().default(true),
    /** Secure aggregation: every update element is clipped to [-clipRange, clipRange]. */
    clipRange: z.number().gt(0).max(1e6).default(4),
    /** Example counts above this are capped in the weighted mean (both modes). */
    weightCap: positiveInt.max(1 << 24).default(16_384),
    /** Secure aggregation: deadline of each of the five phases. */
    phaseTimeoutMs: positiveInt.default(120_000),
    database: z.string().min(1).default('file:./cohort.db'),
    exportDir: z.string().min(1).optional(),
    jsonPath: z.string().min(1).optional(),
    keepAlive: z.boolean().default(false),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1)
      .default(0),
    /** Directory holding datasets and their cache (CIFAR-10 download, coordinator test set). */
    dataDir: z.string().min(1).optional(),
    /** Hard cap on one socket.io message; derived from the model size when absent. */
    maxMessageBytes: positiveInt.optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.clientsPerRound !== undefined && c.fraction !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message: '--clients-per-round and --fraction conflict: give one',
      });
    }
    if (c.clientsPerRound !== undefined && c.clientsPerRound < c.minClients) {
      ctx.addIssue({
        code: 'custom',
        message: `--clients-per-round (${c.clientsPerRound}) is below --min-clients (${c.minClients})`,
      });
    }
    if (c.proximalMu !== undefined && c.strategy !== 'fedprox') {
      ctx.addIssue({ code: 'custom', message: '--mu only applies to --strategy fedprox' });
    }
    if (c.serverLearningRate !== undefined && ['fedavg', 'fedprox'].includes(c.strategy)) {
      ctx.addIssue({ code: 'custom', message: `--server-lr has no effect with ${c.strategy}` });
    }
  });

export type CoordinatorConfig = Readonly<z.infer<typeof coordinatorConfigSchema>>;
export type CoordinatorConfigInput = z.input<typeof coordinatorConfigSchema>;

/**
 * Validates options once, fills defaults, checks secure-aggregation safety for the task's
 * model, and freezes the result. Everything a coordinator refuses, it refuses here.
 */
export function resolveCoordinatorConfig(input: CoordinatorConfigInput): CoordinatorConfig {
  const config = parseCoordinatorConfig(input);
  assertSecureAggregationSafe(config, summarizeModelSpec(getModelSpec(config.task)).parameters);
  return config;
}

function parseCoordinatorConfig(input: CoordinatorConfigInput): CoordinatorConfig {
  const parsed = coordinatorConfigSchema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const field = issue.path.join('.');
      return field ? `${field}: ${issue.message}` : issue.message;
    });
    throw new CohortError('CONFIG_INVALID', lines.join('; '));
  }
  return Object.freeze({ ...parsed.data, experiment: parsed.data.experiment ?? parsed.data.task });
}

/**
 * Refuses secure-aggregation settings that would be unsafe before anything runs: cohorts
 * below the minimum threshold (a mean of two reveals each update to the other), and, when
 * the cohort size is bounded, parameters that could overflow the 2^32 modulus.
 */
function assertSecureAggregationSafe(config: CoordinatorConfig, vectorLength: number): void {
  if (!config.secureAggregation) return;
  if (config.minClients < MIN_THRESHOLD) {
    throw new CohortError(
      'CONFIG_UNSAFE',
      `secure aggregation needs at least ${MIN_THRESHOLD} clients per round (--min-clients ${config.minClients}); ` +
        'raise --min-clients or pass --secure-aggregation off',
    );
  }
  if (config.clientsPerRound !== undefined) {
    const largest = Math.ceil(config.clientsPerRound * (1 + config.overSelection));
    try {
      chooseSecAggParams(largest, {
        vectorLength,
        clipRange: config.clipRange,
        weightCap: config.weightCap,
      });
    } catch (error) {
      throw new CohortError(
        'CONFIG_UNSAFE',
        `secure aggregation for ${largest} clients: ${(error as Error).message}`,
      );
    }
  }
}
