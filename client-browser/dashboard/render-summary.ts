import { WEB_PATHS } from '../../shared/protocol/web';
import type { DashboardSnapshot, RunStatus, SampleInfo } from '../../shared/protocol/web';
import { byTestId, el, setText } from './dom';
import { formatPercent, MISSING } from './format';
import { roundsDone } from './render-rounds';

/** A sentence per run status, as the badge's tooltip. */
const STATUS_HINTS: Record<RunStatus, string> = {
  waiting: 'waiting for enough clients to start a round',
  running: 'rounds are running',
  pausing: 'pause asked: the round in flight finishes, no new one starts',
  paused: 'paused: no round starts until resumed',
  finished: 'every round asked for is done',
  stopped: 'stopped by an admin',
  failed: 'the run stopped on an error (see the coordinator log); restart it to resume',
};

/** The header: experiment, task, run status badge, rounds done of rounds asked. */
export function renderHeader(snapshot: DashboardSnapshot): void {
  setText('experiment', snapshot.experiment);
  setText('task', snapshot.task);
  const status = byTestId('run-status');
  setText(status, snapshot.status);
  status.dataset.status = snapshot.status;
  status.className = `badge badge-${snapshot.status}`;
  status.title = STATUS_HINTS[snapshot.status] ?? '';
  const done = roundsDone(snapshot.history);
  setText('rounds-progress', `${done} / ${snapshot.rounds} rounds`);
  const bar = byTestId<HTMLProgressElement>('rounds-bar');
  bar.max = Math.max(1, snapshot.rounds);
  bar.value = Math.min(done, bar.max);
  document.body.dataset.status = snapshot.status;
  const title = `Cohort · ${snapshot.experiment} · ${snapshot.status}`;
  if (document.title !== title) document.title = title;
}

/** The round in flight and a few counts. */
export function renderCurrent(snapshot: DashboardSnapshot): void {
  const current = snapshot.current;
  const element = byTestId('current-round');
  setText(
    element,
    current !== null
      ? `Round ${current.round} · ${current.phase} · ${current.selected} selected`
      : 'No round in flight',
  );
  element.dataset.round = current !== null ? String(current.round) : '';
  element.dataset.phase = current?.phase ?? '';
  setText('client-count', String(snapshot.clients.length));
  setText(
    'browser-count',
    String(snapshot.clients.filter((client) => client.platform === 'browser').length),
  );
  const last = [...snapshot.history]
    .filter((round) => round.status === 'completed' && round.testAccuracy !== null)
    .sort((a, b) => b.round - a.round || b.attempt - a.attempt)[0];
  setText(
    'last-accuracy',
    last !== undefined ? `${formatPercent(last.testAccuracy)} (round ${last.round})` : MISSING,
  );
}

/** The join URL as a link and its QR code (the coordinator renders the SVG). */
export function renderJoin(snapshot: DashboardSnapshot): void {
  const link = byTestId<HTMLAnchorElement>('join-url');
  if (link.getAttribute('href') !== snapshot.joinUrl) link.href = snapshot.joinUrl;
  setText(link, snapshot.joinUrl);
  link.target = '_blank';
  link.rel = 'noopener';
  const qr = byTestId<HTMLImageElement>('join-qr');
  if (qr.getAttribute('src') !== WEB_PATHS.joinQr) qr.src = WEB_PATHS.joinQr;
  qr.hidden = false;
  setText('sample-info', sampleText(snapshot.sample));
}

/** What the public sample data is, or that there is none. */
export function sampleText(sample: SampleInfo): string {
  if (sample.shards <= 0) return 'No public sample data on offer: tabs bring their own files.';
  return (
    `Public sample data: ${sample.description} — ${sample.shards} shard` +
    `${sample.shards === 1 ? '' : 's'} of ${sample.examplesPerShard} examples.`
  );
}

/** A config value as text: null as a dash, everything else as written. */
function configValue(value: string | number | boolean | null): string {
  return value === null ? MISSING : String(value);
}

/** The run's public options as a key/value table, in the coordinator's order. */
export function renderConfig(snapshot: DashboardSnapshot): void {
  const rows = Object.entries(snapshot.config).map(([key, value]) =>
    el('tr', { attrs: { 'data-key': key } }, [
      el('th', { text: key, attrs: { scope: 'row' } }),
      el('td', { text: configValue(value), className: `value-${typeof value}` }),
    ]),
  );
  byTestId('config-body').replaceChildren(...rows);
}
