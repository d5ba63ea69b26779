/**
 * What the coordinator serves over HTTP besides socket.io, and the shapes the browser pages
 * read: declared once here so the coordinator's routes, the join page and the dashboard
 * cannot disagree. Everything here is public (no secret, no individual update, no data).
 */

/** Every path the coordinator answers over HTTP (socket.io keeps `/socket.io/`). */
export const WEB_PATHS = {
  /** The live dashboard (HTML). */
  dashboard: '/',
  /** The join page: opening it makes the tab a client (HTML). */
  join: '/join',
  /** Static assets: `join.js`, `dashboard.js` and the tfjs wasm binaries (`*.wasm`). */
  assets: '/assets/',
  /** GET {@link JoinInfo}: what a tab needs before it connects. Never needs a token. */
  joinInfo: '/api/join-info',
  /** GET {@link DashboardSnapshot} (`Authorization: Bearer <dashboard token>` when one is set). */
  state: '/api/state',
  /** POST `/api/control/<ControlAction>` with `Authorization: Bearer <admin token>`. */
  control: '/api/control/',
  /** GET an SVG QR code of the join URL. */
  joinQr: '/api/join-qr.svg',
  /**
   * GET `/api/sample/<shard>/images` and `/api/sample/<shard>/labels`: one public sample shard
   * as IDX files (unsigned bytes, the MNIST container), the format a user's own files may
   * have, so the tab decodes both with the same code.
   */
  sample: '/api/sample/',
  /** Prometheus text format (prom-client). */
  metrics: '/metrics',
} as const;

/** The read-only socket.io namespace the dashboard listens on for live updates. */
export const DASHBOARD_NAMESPACE = '/dashboard';

/** The server → dashboard events of {@link DASHBOARD_NAMESPACE}; the dashboard sends none. */
export interface DashboardServerEvents {
  /** The whole state, sent on connect and again (throttled) after every change. */
  snapshot(snapshot: DashboardSnapshot): void;
}

/** What an admin can ask for on `/api/control/<action>`. */
export const CONTROL_ACTIONS = ['pause', 'resume', 'stop'] as const;
export type ControlAction = (typeof CONTROL_ACTIONS)[number];

/** Where the run is, as the dashboard shows it. */
export type RunStatus =
  | 'waiting' // for enough clients
  | 'running'
  | 'pausing' // pause asked: the round in flight finishes, no new one starts
  | 'paused'
  | 'finished'
  | 'stopped'
  | 'failed'; // the run cannot go on (a round could not be saved); a restart resumes

/** The answer of `/api/join-info`. */
export interface JoinInfo {
  experiment: string;
  task: string;
  secureAggregation: boolean;
  /** The coordinator's Ed25519 public key (hex), which the page shows for comparison. */
  coordinatorKey: string;
  /** Whether a join token is needed (the page then asks for it). */
  joinTokenRequired: boolean;
  /** Public sample shards on offer; `shards` is 0 when there are none. */
  sample: SampleInfo;
}

/** Public sample data the coordinator offers for demos (never anyone's private data). */
export interface SampleInfo {
  shards: number;
  /** Examples per shard. */
  examplesPerShard: number;
  /** Where the data comes from, shown on the page (e.g. "MNIST training set, public"). */
  description: string;
}

/** One recorded round attempt, from the database. */
export interface DashboardRound {
  round: number;
  attempt: number;
  status: 'running' | 'completed' | 'failed' | 'aborted';
  secureAggregation: boolean;
  startedAt: string;
  durationMs: number;
  /** Clients whose contribution is in the aggregate. */
  participants: number;
  dropped: number;
  rejected: number;
  /** Browser tabs among the participants. */
  browserParticipants: number;
  bytesReceived: number;
  trainLoss: number | null;
  testLoss: number | null;
  testAccuracy: number | null;
  failureCode: string | null;
  failureReason: string | null;
}

/** A connected client as the dashboard lists it. */
export interface DashboardClient {
  clientId: string;
  displayName: string | null;
  platform: 'node' | 'browser';
  backend: string;
  connectedAt: string;
  /** Last message from it (registration, progress, answer). */
  lastSeenAt: string;
  /** Completed participations of this client in this experiment. */
  rounds: number;
}

/** The round in flight, if any. */
export interface CurrentRound {
  round: number;
  /** 'training', then each secure-aggregation phase, then 'evaluating'. */
  phase: string;
  selected: number;
}

/** Everything the dashboard shows; a reload rebuilds it from the database. */
export interface DashboardSnapshot {
  experiment: string;
  task: string;
  status: RunStatus;
  /** Rounds the run was asked for. */
  rounds: number;
  /** Public options of the run (no token, no path to a secret). */
  config: Record<string, string | number | boolean | null>;
  current: CurrentRound | null;
  history: DashboardRound[];
  clients: DashboardClient[];
  /** The URL a browser opens to join (the page adds a QR code of it). */
  joinUrl: string;
  /** Whether control actions are possible at all (an admin token was configured). */
  controls: boolean;
  sample: SampleInfo;
}

/** The body of every refused HTTP request: a stable code and a sentence. */
export interface WebError {
  error: { code: string; message: string };
}
