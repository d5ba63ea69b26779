import type { Server } from 'socket.io';
import { CohortError, reasonOf } from '../../shared/errors';
import type { DashboardServerEvents, DashboardSnapshot } from '../../shared/protocol/web';
import { DASHBOARD_NAMESPACE } from '../../shared/protocol/web';
import type { Logger } from '../logger';
import { tokensMatch } from './access-token';

/** Least time between two snapshots pushed to dashboards: changes in between are merged. */
export const SNAPSHOT_INTERVAL_MS = 250;
/** Dashboards connected at once; more are refused (each costs a socket and its snapshots). */
export const MAX_DASHBOARD_VIEWERS = 64;

export interface DashboardFeedOptions {
  /** Null: reading is open. */
  token: string | null;
  snapshot(): Promise<DashboardSnapshot>;
  log: Logger;
}

/** The live feed: call `changed()` after anything a dashboard shows changes. */
export interface DashboardFeed {
  changed(): void;
  close(): void;
}

/**
 * The read-only `/dashboard` namespace: a viewer (with the dashboard token when one is set)
 * gets a snapshot on connect and a fresh one, throttled, after every change. Viewers send
 * nothing; any event from one closes its connection, so the namespace cannot be used to
 * reach round state.
 */
export function attachDashboardFeed(io: Server, options: DashboardFeedOptions): DashboardFeed {
  const nsp = io.of(DASHBOARD_NAMESPACE);
  nsp.use((socket, next) => {
    if (nsp.sockets.size >= MAX_DASHBOARD_VIEWERS) {
      next(new CohortError('RATE_LIMITED', `${MAX_DASHBOARD_VIEWERS} dashboards are open already`));
      return;
    }
    const auth: unknown = socket.handshake.auth;
    const token =
      typeof auth === 'object' &&
      auth !== null &&
      typeof (auth as { token?: unknown }).token === 'string'
        ? (auth as { token: string }).token
        : undefined;
    if (options.token !== null && !tokensMatch(token, options.token)) {
      next(new CohortError('ACCESS_REFUSED', 'the dashboard needs its token (--dashboard-token)'));
      return;
    }
    next();
  });

  let timer: NodeJS.Timeout | null = null;
  let lastSent = 0;
  let closed = false;
  const push = async (target: { emit: (event: 'snapshot', s: DashboardSnapshot) => unknown }) => {
    try {
      const snapshot = await options.snapshot();
      if (!closed) target.emit('snapshot', snapshot);
    } catch (error) {
      options.log.warn(`dashboard snapshot failed: ${reasonOf(error)}`);
    }
  };
  const typed = nsp as unknown as {
    emit: (event: keyof DashboardServerEvents, s: DashboardSnapshot) => unknown;
  };

  nsp.on('connection', (socket) => {
    socket.onAny(() => socket.disconnect(true));
    void push(socket);
  });

  return {
    changed() {
      if (closed || timer !== null || nsp.sockets.size === 0) return;
      const wait = Math.max(0, lastSent + SNAPSHOT_INTERVAL_MS - Date.now());
      timer = setTimeout(() => {
        timer = null;
        lastSent = Date.now();
        void push(typed);
      }, wait);
    },
    close() {
      closed = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
    },
  };
}
