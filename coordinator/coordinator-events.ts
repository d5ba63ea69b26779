import type { RunStatus } from '../shared/protocol/web';
import type { RoundHistoryEntry, RunHistory } from './history';

/**
 * What a coordinator tells observers (the CLI's progress lines, the dashboard feed, the
 * metrics, tests). Declared apart from the coordinator so observers need not import it.
 */
export interface CoordinatorEvents {
  listening: [{ url: string; port: number }];
  waiting: [{ round: number; connected: number; needed: number }];
  'client-joined': [{ clientId: string; backend: string; platform: string; connected: number }];
  'client-left': [{ clientId: string; reason: string; connected: number }];
  'round-start': [{ round: number; selected: number; target: number }];
  /** 'training', then each secure-aggregation phase, then 'evaluating'. */
  'round-phase': [{ round: number; phase: string }];
  'client-progress': [{ round: number; clientId: string; fraction: number }];
  'round-end': [RoundHistoryEntry];
  /** The run's status changed (waiting, running, pausing, paused, finished, stopped). */
  status: [{ status: RunStatus; reason: string }];
  resumed: [{ round: number }];
  /** Cluster mode: this process joined its cluster and waits for the leader lock. */
  following: [{ nodeId: string; peers: number }];
  /** Cluster mode: this process took the leader lock and runs the rounds from now on. */
  leading: [{ nodeId: string; resumeAfterRound: number }];
  finished: [RunHistory];
}
