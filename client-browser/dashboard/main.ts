/**
 * The coordinator's live dashboard, served at `/`: it loads the state once over HTTP
 * (GET /api/state), then follows the read-only socket.io namespace for snapshots, and offers
 * pause/resume/stop to whoever holds the admin token. It never sends anything on the socket.
 * Everything it shows is public (see shared/protocol/web.ts); the page's CSP allows no inline
 * script or style, hence the separate bundle and stylesheet.
 */
import type { DashboardSnapshot } from '../../shared/protocol/web';
import { AccuracyChart, chartPointsOf } from './accuracy-chart';
import { fetchState } from './api';
import type { ApiFailure } from './api';
import { Controls } from './controls';
import { byTestId, setText } from './dom';
import { installHook } from './hook';
import { LiveConnection } from './live';
import { renderClients } from './render-clients';
import { renderRounds } from './render-rounds';
import { renderConfig, renderCurrent, renderHeader, renderJoin } from './render-summary';
import { storeToken, takeDashboardToken } from './tokens';

/** How often "last seen" is recomputed between snapshots. */
const CLIENTS_REFRESH_MS = 5_000;

/** HTTP statuses that mean "this token is not good enough": the page asks for one. */
const AUTH_STATUSES = new Set([401, 403]);

const hook = installHook();
let token = takeDashboardToken();

const chart = new AccuracyChart(byTestId<HTMLCanvasElement>('accuracy-chart'), (points) => {
  hook.chartPoints = points;
});
const controls = new Controls((outcome) => {
  hook.lastControl = outcome;
});
const live = new LiveConnection({
  onSnapshot(snapshot) {
    hook.snapshots += 1;
    show(snapshot);
  },
  onLive: setLive,
  onRefused(code, message) {
    showError(code, message, true);
  },
});

/** Draws the whole snapshot; every part is idempotent, so a snapshot a second is cheap. */
function show(snapshot: DashboardSnapshot): void {
  hook.last = snapshot;
  clearError();
  renderHeader(snapshot);
  renderCurrent(snapshot);
  renderJoin(snapshot);
  renderConfig(snapshot);
  renderRounds(byTestId('rounds-body'), byTestId('rounds-empty'), snapshot.history);
  renderClients(byTestId('clients-body'), byTestId('clients-empty'), snapshot.clients);
  controls.render(snapshot);
  chart.update(chartPointsOf(snapshot.history));
}

function setLive(isLive: boolean): void {
  hook.live = isLive;
  const indicator = byTestId('live-indicator');
  indicator.dataset.live = String(isLive);
  setText(indicator, isLive ? 'live' : 'disconnected');
}

/** Shows why the state cannot be shown; `askToken` adds the token field and retry button. */
function showError(code: string, message: string, askToken: boolean): void {
  hook.error = { code, message };
  byTestId('error').hidden = false;
  setText('error-code', code);
  setText('error-message', message);
  const form = byTestId('token-form');
  if (askToken && form.hidden) {
    form.hidden = false;
    byTestId<HTMLInputElement>('dashboard-token').focus();
  }
}

function clearError(): void {
  hook.error = null;
  byTestId('error').hidden = true;
  byTestId('token-form').hidden = true;
}

function showFailure(failure: ApiFailure): void {
  showError(failure.code, failure.message, AUTH_STATUSES.has(failure.status));
}

/**
 * Loads the state over HTTP, then (unless the token was refused) goes live with the same
 * token. A coordinator that is merely unreachable still gets a socket: it may come back.
 */
async function load(): Promise<void> {
  const result = await fetchState(token);
  if (result.ok) {
    hook.httpLoads += 1;
    show(result.snapshot);
  } else {
    showFailure(result);
    if (AUTH_STATUSES.has(result.status)) {
      setLive(false);
      return;
    }
  }
  live.connect(token);
}

byTestId<HTMLFormElement>('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const typed = byTestId<HTMLInputElement>('dashboard-token').value.trim();
  token = typed.length > 0 ? typed : null;
  storeToken(typed);
  live.close();
  void load();
});

setInterval(() => {
  if (hook.last !== null) {
    renderClients(byTestId('clients-body'), byTestId('clients-empty'), hook.last.clients);
  }
}, CLIENTS_REFRESH_MS);

chart.start().catch((error: unknown) => {
  setText('chart-note', `chart unavailable: ${String(error)}`);
});
void load();
