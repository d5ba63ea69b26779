import type { DashboardClient } from '../../shared/protocol/web';
import { el } from './dom';
import { formatAgo, formatClock } from './format';

/** How much of a client id is shown when the client has no display name. */
const SHORT_ID = 10;

/** The name a client row shows: its display name, else the start of its id. */
export function clientLabel(client: DashboardClient): string {
  if (client.displayName !== null && client.displayName.trim().length > 0) {
    return client.displayName;
  }
  return client.clientId.length > SHORT_ID
    ? `${client.clientId.slice(0, SHORT_ID)}…`
    : client.clientId;
}

/** One `<tr data-testid="client-row" data-platform="…">`. */
export function clientRow(client: DashboardClient, now: number): HTMLTableRowElement {
  return el(
    'tr',
    {
      attrs: {
        'data-testid': 'client-row',
        'data-platform': client.platform,
        'data-client-id': client.clientId,
      },
    },
    [
      el('td', {
        text: clientLabel(client),
        title: client.clientId,
        attrs: { 'data-col': 'name' },
      }),
      el('td', { attrs: { 'data-col': 'platform' } }, [
        el('span', { className: `badge badge-${client.platform}`, text: client.platform }),
      ]),
      el('td', { text: client.backend, attrs: { 'data-col': 'backend' } }),
      el('td', {
        text: formatClock(client.connectedAt, now),
        title: client.connectedAt,
        attrs: { 'data-col': 'connected-at' },
      }),
      el('td', {
        text: formatAgo(client.lastSeenAt, now),
        title: client.lastSeenAt,
        attrs: { 'data-col': 'last-seen' },
      }),
      el('td', { text: String(client.rounds), attrs: { 'data-col': 'rounds' } }),
    ],
  );
}

/**
 * Replaces the clients table's body. Called on every snapshot and on a timer, so "last
 * seen" keeps counting up between snapshots.
 */
export function renderClients(
  body: HTMLElement,
  empty: HTMLElement,
  clients: readonly DashboardClient[],
  now = Date.now(),
): void {
  body.replaceChildren(...clients.map((client) => clientRow(client, now)));
  empty.hidden = clients.length > 0;
}
