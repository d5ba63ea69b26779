/**
 * The join page: opening it makes this tab a Cohort client. A thin adapter over shared/,
 * like the Node client: it finds data, a tfjs backend and an identity, then hands everything
 * to the platform-free ClientSession and shows what happens. See client-browser/README.md.
 */
import type { ClientState } from '../../shared/client/client-session';
import { CohortError } from '../../shared/errors';
import { getModelSpec } from '../../shared/model/registry';
import { specHash } from '../../shared/model/spec-hash';
import { WEB_PATHS } from '../../shared/protocol/web';
import type { JoinInfo, WebError } from '../../shared/protocol/web';
import { chooseBackend } from '../backend/choose-backend';
import type { BrowserIdentity } from '../identity-store';
import {
  claimIdentitySlot,
  loadOrCreateBrowserIdentity,
  resetBrowserIdentity,
} from '../identity-store';
import { IndexedDbRoundLedger, openCohortDatabase } from '../round-ledger-idb';
import { AccuracyChart } from './accuracy-chart';
import { ByteCounter } from './byte-counter';
import { chooseData } from './data-choice';
import type { ChosenData } from './data-choice';
import type { JoinPhaseState } from './page-state';
import { JoinStore, PageFailure } from './page-state';
import { watchPresence } from './presence';
import { parseJoinQuery } from './query';
import type { JoinQuery } from './query';
import type { TabSession } from './tab-session';
import { connectTab } from './tab-session';
import { appendLog, byTestId, renderEpoch, renderJoinInfo, renderState } from './view';

const INSECURE_CONTEXT_MESSAGE =
  'This page was served over plain HTTP from a non-local address; browsers only allow the ' +
  'cryptography Cohort needs on https:// or http://localhost. Ask the operator to start the ' +
  'coordinator with --tls-cert/--tls-key, or open it via localhost.';

/** What the page shows for each ClientSession state. */
const SESSION_STATES: Record<ClientState, JoinPhaseState> = {
  connecting: 'connecting',
  registering: 'connecting',
  idle: 'idle',
  training: 'training',
  submitting: 'submitting',
  evaluating: 'evaluating',
  done: 'done',
};

async function main(store: JoinStore): Promise<void> {
  if (!window.isSecureContext) throw new PageFailure('INSECURE_CONTEXT', INSECURE_CONTEXT_MESSAGE);
  const query = parseJoinQuery(location.search);
  store.update({ minParticipants: query.minParticipants });
  const chart = new AccuracyChart(byTestId<HTMLCanvasElement>('join-accuracy-chart'));
  chart
    .start()
    .catch((error: unknown) => appendLog(`accuracy chart unavailable: ${String(error)}`));

  const [info, db, slot] = await Promise.all([
    fetchJoinInfo(),
    openCohortDatabase(),
    claimIdentitySlot(),
  ]);
  renderJoinInfo(info);
  store.update({
    experiment: info.experiment,
    task: info.task,
    secureAggregation: info.secureAggregation,
  });
  const spec = getModelSpec(info.task);
  const identity = await loadOrCreateBrowserIdentity(db, slot);
  store.update({ identityKind: identity.kind, clientId: identity.clientId });
  appendLog(
    `${identity.created ? 'created' : 'loaded'} identity ${identity.clientId} (${identity.kind}` +
      `${slot > 0 ? `, slot ${slot}: other tabs of this browser hold the lower ones` : ''})`,
  );
  let tab: TabSession | null = null;
  const reset = byTestId<HTMLButtonElement>('reset-identity');
  reset.disabled = false;
  reset.addEventListener('click', () => void resetIdentity(db, identity, () => tab?.close()));

  const data = await chooseData(info, spec, query, store);
  store.update({ state: 'choosing-backend', error: null });
  const backend = await chooseBackend(spec, {
    ...(query.backend !== undefined ? { forced: query.backend } : {}),
    log: appendLog,
  });
  store.update({
    backend: backend.backend,
    backendReason: backend.reason,
    backendMeasurements: backend.measurements,
  });
  appendLog(`training on ${backend.reason}`);

  const ledger = new IndexedDbRoundLedger(db, identity.clientId);
  const bytes = new ByteCounter(store.current.bytesSentByRound, () => store.update({}));
  const modelSpecHash = await specHash(spec);
  let epochs: number | null = null;
  let epochLoss = { epoch: -1, sum: 0, batches: 0 };
  let leaving = false;
  let finished = false;

  const join = (): void => {
    if (finished || tab !== null) return;
    if (document.visibilityState === 'hidden') {
      store.update({ state: 'left', connection: 'left' });
      appendLog('tab hidden: joining once it is shown');
      return;
    }
    leaving = false;
    store.update({ joins: store.current.joins + 1, state: 'connecting' });
    const current = connectTab({
      task: info.task,
      spec,
      modelSpecHash,
      backend: backend.backend,
      train: data.split.train,
      test: data.split.test,
      identity: identity.identity,
      ledger,
      minParticipants: query.minParticipants,
      ...displayAndToken(query, data),
      bytes,
      onConnection: (connection) => {
        if (!leaving) store.update({ connection });
      },
      onFitRequest: (round, roundEpochs) => {
        epochs = roundEpochs;
        epochLoss = { epoch: -1, sum: 0, batches: 0 };
        store.update({ round, phase: 'training' });
        renderEpoch(0, epochs, 0);
      },
      onLocalAccuracy: (localAccuracy) => store.update({ localAccuracy }),
      events: {
        onState: (state) => {
          if (leaving) return;
          const page = SESSION_STATES[state];
          if (page === 'done') return; // finished (or close) says which kind of end
          store.update({
            state: page,
            ...(state === 'training' ? { phase: 'training' } : {}),
            ...(state === 'evaluating' ? { phase: 'evaluating' } : {}),
          });
        },
        onPhase: (_roundId, phase) => store.update({ phase }),
        onProgress: (_roundId, p) => {
          if (p.epoch !== epochLoss.epoch) epochLoss = { epoch: p.epoch, sum: 0, batches: 0 };
          epochLoss.sum += p.loss;
          epochLoss.batches += 1;
          store.update({ localLoss: epochLoss.sum / epochLoss.batches });
          renderEpoch(p.epoch, epochs, (p.batch + 1) / p.batches);
        },
        onRoundSummary: (s) => {
          const summaries = [
            ...store.current.summaries.filter((old) => old.round !== s.round),
            {
              round: s.round,
              status: s.status,
              testAccuracy: s.testAccuracy,
              participants: s.participants,
            },
          ];
          store.update({
            summaries,
            roundsCompleted: summaries.filter((x) => x.status === 'completed').length,
            ...(s.round === store.current.round ? { phase: s.status } : {}),
          });
          chart.update(summaries);
          appendLog(
            `round ${s.round} ${s.status}: ${s.participants} participants` +
              (s.testAccuracy !== null
                ? `, global test accuracy ${(s.testAccuracy * 100).toFixed(2)}%`
                : '') +
              (s.reason !== null ? ` (${s.reason})` : ''),
          );
        },
        onLog: appendLog,
      },
    });
    tab = current;
    current.session.finished.then(
      (done) => {
        finished = true;
        tab = null;
        store.update({ state: 'done', connection: 'disconnected', phase: null });
        appendLog(
          `the coordinator finished the run after ${done.rounds} rounds: ${done.reason}` +
            (done.finalAccuracy !== null
              ? ` (final accuracy ${(done.finalAccuracy * 100).toFixed(2)}%)`
              : ''),
        );
      },
      (error: unknown) => {
        finished = true;
        tab = null;
        store.update({ connection: 'disconnected' });
        store.fail(error);
        appendLog(`left: ${error instanceof Error ? error.message : String(error)}`);
      },
    );
  };

  watchPresence({
    leave: (why) => {
      if (tab === null || finished) return;
      leaving = true;
      const closing = tab;
      tab = null;
      closing.close();
      store.update({ state: 'left', connection: 'left', phase: null });
      appendLog(
        why === 'hidden'
          ? 'tab hidden: left the federation (this counts as a dropout); back when shown'
          : 'page closing: left the federation',
      );
    },
    rejoin: () => {
      if (tab !== null || finished || store.current.state !== 'left') return;
      appendLog('tab visible again: rejoining with the same identity and data');
      join();
    },
  });
  join();
}

/** GET /api/join-info, checked enough that the page can rely on its fields. */
async function fetchJoinInfo(): Promise<JoinInfo> {
  let response: Response;
  try {
    response = await fetch(WEB_PATHS.joinInfo, { credentials: 'same-origin' });
  } catch (error) {
    throw new PageFailure(
      'COORDINATOR_UNREACHABLE',
      `cannot reach the coordinator at ${location.origin}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  const body = (await response.json().catch(() => null)) as unknown;
  if (!response.ok) {
    const error = (body as Partial<WebError> | null)?.error;
    throw new PageFailure(
      error?.code ?? 'COORDINATOR_UNREACHABLE',
      `the coordinator refused ${WEB_PATHS.joinInfo}: ${error?.message ?? `HTTP ${response.status}`}`,
    );
  }
  const info = body as Partial<JoinInfo> | null;
  if (
    typeof info?.experiment !== 'string' ||
    typeof info.task !== 'string' ||
    typeof info.secureAggregation !== 'boolean' ||
    typeof info.coordinatorKey !== 'string' ||
    typeof info.joinTokenRequired !== 'boolean' ||
    typeof info.sample?.shards !== 'number'
  ) {
    throw new CohortError('MESSAGE_INVALID', `${WEB_PATHS.joinInfo} answered something unexpected`);
  }
  return info as JoinInfo;
}

function displayAndToken(
  query: JoinQuery,
  data: ChosenData,
): { displayName?: string; joinToken?: string } {
  return {
    ...(query.name !== undefined ? { displayName: query.name } : {}),
    ...(data.joinToken !== undefined ? { joinToken: data.joinToken } : {}),
  };
}

/** Deletes this tab's identity and its round ledger, then reloads (a new identity follows). */
async function resetIdentity(
  db: IDBDatabase,
  identity: BrowserIdentity,
  leave: () => void,
): Promise<void> {
  leave();
  await resetBrowserIdentity(db, identity);
  location.reload();
}

const store = new JoinStore();
store.subscribe(renderState);
main(store).catch((error: unknown) => {
  store.fail(error);
  appendLog(`cannot join: ${error instanceof Error ? error.message : String(error)}`);
});
