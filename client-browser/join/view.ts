import type { JoinInfo } from '../../shared/protocol/web';
import type { JoinState } from './page-state';

/** Lines the page's log keeps (older ones scroll away). */
const LOG_LINES = 50;

/** The element with `data-testid="<id>"`; the page's markup is fixed, so a miss is a bug. */
export function byTestId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.querySelector<T>(`[data-testid="${id}"]`);
  if (element === null) throw new Error(`join.html has no element data-testid="${id}"`);
  return element;
}

function setText(id: string, text: string): void {
  const element = byTestId(id);
  if (element.textContent !== text) element.textContent = text;
}

/** The coordinator's announcement: experiment, task, secure aggregation, key fingerprint. */
export function renderJoinInfo(info: JoinInfo): void {
  setText('experiment', info.experiment);
  setText('task', info.task);
  setText(
    'secure-aggregation',
    info.secureAggregation
      ? 'on: the coordinator only ever sees the sum of many updates'
      : 'OFF: this page only joins secure rounds, so it will not take part',
  );
  setText('coordinator-key', info.coordinatorKey.slice(0, 16));
  byTestId('coordinator-key').title = info.coordinatorKey;
  byTestId('token-row').hidden = !info.joinTokenRequired;
  if (info.sample.shards > 0) {
    setText(
      'sample-description',
      `${info.sample.description} (${info.sample.shards} shards of ${info.sample.examplesPerShard} examples)`,
    );
    byTestId('sample-choice').hidden = false;
  }
}

/** Everything derived from the page state (called after every change). */
export function renderState(state: JoinState): void {
  setText('join-state', state.state);
  setText('connection-state', state.connection);
  setText('min-participants', String(state.minParticipants));
  setText('client-id', state.clientId ?? '…');
  setText(
    'identity-kind',
    state.identityKind === 'webcrypto'
      ? 'WebCrypto, non-extractable'
      : state.identityKind === 'tweetnacl'
        ? 'tweetnacl (this browser lacks WebCrypto Ed25519)'
        : '…',
  );
  setText('backend', state.backend ?? '…');
  setText('backend-reason', state.backendReason ?? '…');
  renderList(
    'backend-measurements',
    state.backendMeasurements.map((m) =>
      m.imagesPerSecond !== undefined
        ? `${m.backend}: ${m.imagesPerSecond} img/s`
        : `${m.backend}: ${m.error ?? 'failed'}`,
    ),
  );
  setText('round-number', state.round !== null ? String(state.round) : '–');
  setText('round-phase', state.phase ?? '–');
  setText('local-loss', state.localLoss !== null ? state.localLoss.toFixed(4) : '–');
  setText(
    'local-accuracy',
    state.localAccuracy !== null
      ? `${(state.localAccuracy * 100).toFixed(1)}% (global model, your test split)`
      : '–',
  );
  setText('rounds-completed', String(state.roundsCompleted));
  renderBytes(state.bytesSentByRound);
  const box = byTestId('error');
  box.hidden = state.error === null;
  if (state.error !== null) {
    setText('error-code', state.error.code);
    setText('error-message', state.error.message);
  }
  document.body.classList.toggle('has-error', state.error !== null);
  document.body.dataset.state = state.state;
}

/** The epoch bar: `fraction` of epoch `epoch` (0-based) of `epochs` done. */
export function renderEpoch(epoch: number, epochs: number | null, fraction: number): void {
  const bar = byTestId<HTMLProgressElement>('epoch-progress');
  bar.max = 1;
  bar.value = Math.min(1, Math.max(0, fraction));
  setText('epoch-label', `${epoch + 1}${epochs !== null ? ` of ${epochs}` : ''}`);
}

/** The one-line status under the data choices. */
export function setDataStatus(text: string): void {
  setText('data-status', text);
}

/** Appends a timestamped line to the log, keeping the last {@link LOG_LINES}. */
export function appendLog(line: string): void {
  const list = byTestId('log');
  const item = document.createElement('li');
  item.textContent = `${new Date().toLocaleTimeString()} ${line}`;
  list.append(item);
  while (list.children.length > LOG_LINES) list.firstElementChild?.remove();
  list.scrollTop = list.scrollHeight;
}

function renderList(id: string, lines: string[]): void {
  const list = byTestId(id);
  const current = Array.from(list.children, (child) => child.textContent);
  if (current.length === lines.length && current.every((text, i) => text === lines[i])) return;
  list.replaceChildren(
    ...lines.map((line) => Object.assign(document.createElement('li'), { textContent: line })),
  );
}

function renderBytes(bytes: Record<string, number>): void {
  const body = byTestId('bytes-sent');
  const rows = Object.keys(bytes)
    .sort((a, b) => Number(a) - Number(b))
    .map((key) => ({ key, cells: [key === '0' ? 'joining' : key, formatBytes(bytes[key]!)] }));
  const current = Array.from(body.children, (row) =>
    Array.from(row.children, (cell) => cell.textContent ?? '').join('\t'),
  );
  if (
    current.length === rows.length &&
    current.every((text, i) => text === rows[i]!.cells.join('\t'))
  ) {
    return;
  }
  body.replaceChildren(
    ...rows.map(({ key, cells }) => {
      const row = document.createElement('tr');
      row.dataset.round = key;
      for (const text of cells) {
        row.append(Object.assign(document.createElement('td'), { textContent: text }));
      }
      return row;
    }),
  );
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(2)} MiB`;
}
