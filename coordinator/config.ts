import { z } from 'zod';
import { CohortError, reasonOf } from '../shared/errors';
import { TASK_NAMES, getModelSpec } from '../shared/model/registry';
import { summarizeModelSpec } from '../shared/model/validate-spec';
import type { SecAggModulusBits } from '../shared/secagg/params';
import { MIN_THRESHOLD, chooseSecAggParams } from '../shared/secagg/params';
import type { OptionSpec } from './options';
import {
  EVALUATION_MODES,
  MAX_DURATION_MS,
  OPTIMIZER_NAMES,
  OPTIONS,
  SECURE_BITS_CHOICES,
  STRATEGY_NAMES,
} from './options';

export { EVALUATION_MODES, STRATEGY_NAMES };

/** A table option's integer range (the table is the one place ranges are declared). */
function integer(spec: OptionSpec) {
  if (spec.type.kind !== 'integer') throw new Error(`${spec.flag} is not an integer option`);
  return z.number().int().min(spec.type.min).max(spec.type.max);
}

/** A table option's number range, min exclusive where the table says so. */
function decimal(spec: OptionSpec) {
  if (spec.type.kind !== 'number') throw new Error(`${spec.flag} is not a number option`);
  const base = spec.type.exclusiveMin
    ? z.number().gt(spec.type.min)
    : z.number().min(spec.type.min);
  return base.max(spec.type.max);
}

/** A duration in milliseconds (the CLI takes seconds). */
const milliseconds = z.number().int().positive().max(MAX_DURATION_MS);

/** A table option's text constraint. */
function textOf(spec: OptionSpec) {
  const base = z.string().min(1);
  return spec.type.kind === 'text' && spec.type.pattern
    ? base.regex(spec.type.pattern, spec.type.patternHelp)
    : base;
}

const O = OPTIONS;

/**
 * Every coordinator option with its default, validated once at start-up and frozen, so a bad
 * value is refused with a clear message before a socket opens, and a configured 0 never
 * silently becomes a default. Ranges and defaults come from the options table
 * (coordinator/options.ts), which the CLI and the README are generated from too.
 */
const coordinatorConfigObject = z
  .object({
    host: textOf(O.host).default(O.host.default),
    port: integer(O.port).default(O.port.default),
    task: z.enum(TASK_NAMES).default(O.task.default),
    experiment: textOf(O.experiment).optional(),
    rounds: integer(O.rounds).default(O.rounds.default),
    minClients: integer(O.minClients).default(O.minClients.default),
    clientsPerRound: integer(O.clientsPerRound).optional(),
    fraction: decimal(O.fraction).optional(),
    overSelection: decimal(O.overSelection).default(O.overSelection.default),
    epochs: integer(O.epochs).default(O.epochs.default),
    batchSize: integer(O.batchSize).default(O.batchSize.default),
    learningRate: decimal(O.learningRate).default(O.learningRate.default),
    optimizer: z.enum(OPTIMIZER_NAMES).default(O.optimizer.default),
    maxExamples: integer(O.maxExamples).default(O.maxExamples.default),
    strategy: z.enum(STRATEGY_NAMES).default(O.strategy.default),
    serverLearningRate: decimal(O.serverLearningRate).optional(),
    proximalMu: decimal(O.proximalMu).optional(),
    roundTimeoutMs: milliseconds.default(O.roundTimeoutMs.default),
    evaluateTimeoutMs: milliseconds.default(O.evaluateTimeoutMs.default),
    /** How long to wait for minClients before a round; undefined = forever. */
    waitForClientsMs: milliseconds.optional(),
    evaluation: z.enum(EVALUATION_MODES).default(O.evaluation.default),
    secureAggregation: z.boolean().default(O.secureAggregation.default),
    /** Secure aggregation: every update element is clipped to [-clipRange, clipRange]. */
    clipRange: decimal(O.clipRange).default(O.clipRange.default),
    /** Example counts above this are capped in the weighted mean (both modes). */
    weightCap: integer(O.weightCap).default(O.weightCap.default),
    /** Secure aggregation: wire bits per masked element, or 'auto' (see secureModulusBits). */
    secureBits: z.enum(SECURE_BITS_CHOICES).default(O.secureBits.default),
    /** Secure aggregation: worker threads for unmasking; undefined = every core. */
    unmaskThreads: integer(O.unmaskThreads).optional(),
    /** Secure aggregation: deadline of each of the five phases. */
    phaseTimeoutMs: milliseconds.default(O.phaseTimeoutMs.default),
    database: textOf(O.database).default(O.database.default),
    /** SQLite: how long a write waits for another process's lock before the round fails. */
    databaseBusyTimeoutMs: milliseconds.default(O.databaseBusyTimeoutMs.default),
    /** Cluster mode: the Redis URL the coordinator processes of one federation share. */
    cluster: textOf(O.cluster).optional(),
    exportDir: textOf(O.exportDir).optional(),
    jsonPath: textOf(O.jsonPath).optional(),
    keepAlive: z.boolean().default(O.keepAlive.default),
    seed: integer(O.seed).default(O.seed.default),
    /** Directory holding datasets and their cache (CIFAR-10 download, coordinator test set). */
    dataDir: textOf(O.dataDir).optional(),
    /** A connection that has not registered by then is closed. */
    registerTimeoutMs: milliseconds.default(O.registerTimeoutMs.default),
    /** Hard cap on one socket.io message; derived from the model size when absent. */
    maxMessageBytes: integer(O.maxMessageBytes).optional(),
    /** Limits per peer (coordinator/connection-guard.ts). */
    maxConnectionsPerAddress: integer(O.maxConnectionsPerAddress).default(
      O.maxConnectionsPerAddress.default,
    ),
    maxUnregisteredConnections: integer(O.maxUnregisteredConnections).default(
      O.maxUnregisteredConnections.default,
    ),
    maxEventsPerSecond: integer(O.maxEventsPerSecond).default(O.maxEventsPerSecond.default),
    maxEventBytes: integer(O.maxEventBytes).default(O.maxEventBytes.default),
    /** TLS: PEM certificate (chain) and private key files; both or neither. */
    tlsCert: textOf(O.tlsCert).optional(),
    tlsKey: textOf(O.tlsKey).optional(),
    /** Enrollment: clients must prove they hold this token. Never logged or stored. */
    joinToken: textOf(O.joinToken).optional(),
    /** Enrollment: the token's file, read (or created) at start-up. */
    joinTokenFile: textOf(O.joinTokenFile).optional(),
    /** Enrollment: a file of the client public keys admitted. */
    allowClients: textOf(O.allowClients).optional(),
    /** Enrollment: only identities certified by this registrar key (hex). */
    registrarKey: textOf(O.registrarKey).optional(),
    /** Web controls: admin token (or its file). Never logged or stored. */
    adminToken: textOf(O.adminToken).optional(),
    adminTokenFile: textOf(O.adminTokenFile).optional(),
    /** Reading the dashboard, /api/state and /metrics: token (or its file). Never logged or stored. */
    dashboardToken: textOf(O.dashboardToken).optional(),
    dashboardTokenFile: textOf(O.dashboardTokenFile).optional(),
    /** The URL browsers use (join link, QR code); the listening address when absent. */
    publicUrl: textOf(O.publicUrl).optional(),
    /** Public sample shards for browser demos (the data itself comes with the dependencies). */
    sampleShards: integer(O.sampleShards).default(O.sampleShards.default),
    sampleShardSize: integer(O.sampleShardSize).default(O.sampleShardSize.default),
    sampleDir: textOf(O.sampleDir).optional(),
  })
  .strict();

/** The config fields: options of the table with these names are coordinator config. */
export const CONFIG_KEYS: readonly string[] = Object.keys(coordinatorConfigObject.shape);

/** The config schema with its cross-field rules. */
export const coordinatorConfigSchema = coordinatorConfigObject.superRefine((c, ctx) => {
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
  if ((c.tlsCert === undefined) !== (c.tlsKey === undefined)) {
    ctx.addIssue({ code: 'custom', message: '--tls-cert and --tls-key go together: give both' });
  }
  if (c.joinToken !== undefined && c.joinTokenFile !== undefined) {
    ctx.addIssue({
      code: 'custom',
      message: '--join-token and --join-token-file conflict: give one',
    });
  }
  for (const [token, file] of [
    ['adminToken', 'adminTokenFile'],
    ['dashboardToken', 'dashboardTokenFile'],
  ] as const) {
    if (c[token] !== undefined && c[file] !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `${O[token].flag} and ${O[file].flag} conflict: give one`,
      });
    }
  }
  if (c.cluster !== undefined && !/^postgres(ql)?:\/\//.test(c.database)) {
    ctx.addIssue({
      code: 'custom',
      message:
        "--cluster needs a postgresql:// --database shared by every process (SQLite is one machine's file, and leadership comes from PostgreSQL)",
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

/** The `modulusBits` option of chooseSecAggParams that `--secure-bits` asks for. */
export function secureModulusBits(config: CoordinatorConfig): 'auto' | SecAggModulusBits {
  return config.secureBits === 'auto' ? 'auto' : (Number(config.secureBits) as SecAggModulusBits);
}

/**
 * Refuses secure-aggregation settings that would be unsafe before anything runs: cohorts
 * below the minimum threshold (a mean of two reveals each update to the other), parameters
 * that could overflow the modulus when the cohort size is bounded, and a fixed
 * `--secure-bits` too narrow even for a cohort of `--min-clients`.
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
  const modulusBits = secureModulusBits(config);
  if (config.clientsPerRound !== undefined || modulusBits !== 'auto') {
    const largest =
      config.clientsPerRound !== undefined
        ? Math.ceil(config.clientsPerRound * (1 + config.overSelection))
        : config.minClients;
    try {
      chooseSecAggParams(largest, {
        vectorLength,
        clipRange: config.clipRange,
        weightCap: config.weightCap,
        modulusBits,
      });
    } catch (error) {
      throw new CohortError(
        'CONFIG_UNSAFE',
        `secure aggregation for ${largest} clients: ${reasonOf(error)}`,
      );
    }
  }
}
