import { io } from 'socket.io-client';
import type { Socket } from 'socket.io-client';
import { DASHBOARD_NAMESPACE } from '../../shared/protocol/web';
import type { DashboardServerEvents, DashboardSnapshot } from '../../shared/protocol/web';

/** The dashboard's socket: it only listens ({@link DashboardServerEvents}), it sends nothing. */
type DashboardSocket = Socket<DashboardServerEvents, Record<string, never>>;

/** What the live connection tells the page. */
export interface LiveEvents {
  onSnapshot(snapshot: DashboardSnapshot): void;
  onLive(live: boolean): void;
  /** The coordinator refused the connection (a middleware error: a wrong token, say). */
  onRefused(code: string, message: string): void;
}

/** The code and message of a refused connection, from socket.io's error and its `data`. */
function refusalOf(error: Error & { data?: unknown }): { code: string; message: string } {
  const data = error.data as { code?: unknown; message?: unknown; error?: unknown } | undefined;
  const nested = data?.error as { code?: unknown; message?: unknown } | undefined;
  const code = data?.code ?? nested?.code;
  const message = data?.message ?? nested?.message ?? error.message;
  return {
    code: typeof code === 'string' ? code : 'LIVE_REFUSED',
    message: typeof message === 'string' ? message : error.message,
  };
}

/**
 * Live updates: a read-only socket.io connection to {@link DASHBOARD_NAMESPACE} on the page's
 * own origin (websocket only, which the CSP's connect-src allows), with the dashboard token
 * as auth. socket.io reconnects after a drop and the coordinator sends a whole snapshot on
 * every connect, so nothing is replayed here.
 */
export class LiveConnection {
  private socket: DashboardSocket | null = null;

  constructor(private readonly events: LiveEvents) {}

  /** Connects with `token`, replacing any earlier connection (a new token was typed). */
  connect(token: string | null): void {
    this.close();
    const socket: DashboardSocket = io(DASHBOARD_NAMESPACE, {
      auth: token !== null ? { token } : {},
      transports: ['websocket'],
    });
    socket.on('snapshot', (snapshot) => this.events.onSnapshot(snapshot));
    socket.on('connect', () => this.events.onLive(true));
    socket.on('disconnect', () => this.events.onLive(false));
    socket.on('connect_error', (error: Error & { data?: unknown }) => {
      this.events.onLive(false);
      // An inactive socket was refused by the server and will not retry on its own.
      if (!socket.active) {
        const refusal = refusalOf(error);
        this.events.onRefused(refusal.code, refusal.message);
      }
    });
    this.socket = socket;
  }

  close(): void {
    if (this.socket === null) return;
    this.socket.removeAllListeners();
    this.socket.disconnect();
    this.socket = null;
    this.events.onLive(false);
  }
}
