import { CohortError } from '../../shared/errors';
import { DEFAULT_MIN_PARTICIPANTS, MIN_THRESHOLD } from '../../shared/secagg/params';
import type { BrowserBackend } from '../backend/choose-backend';
import { BROWSER_BACKENDS, isBrowserBackend } from '../backend/choose-backend';

/** What the join URL's query asks for (every parameter is optional). */
export interface JoinQuery {
  /** `?sample=1`: join at once with a public sample shard, no clicks. */
  sample: boolean;
  /** `?shard=N`: which sample shard (default: a random one). */
  shard?: number;
  /** `?backend=webgpu|webgl|wasm|cpu`: that backend or an error, no benchmark race. */
  backend?: BrowserBackend;
  /** `?min-participants=N` (integer >= 3, default 5). */
  minParticipants: number;
  /** `?name=X`: the display name on the dashboard. */
  name?: string;
  /** `?token=T`: the coordinator's join token (only a proof of it is sent). */
  token?: string;
}

/**
 * Reads the join page's query parameters, refusing malformed values (CONFIG_INVALID) rather
 * than ignoring them: a typo in `?min-participants=` must not quietly join smaller rounds.
 */
export function parseJoinQuery(search: string): JoinQuery {
  const params = new URLSearchParams(search);
  const query: JoinQuery = {
    sample: ['1', 'true', 'yes'].includes(params.get('sample') ?? ''),
    minParticipants: DEFAULT_MIN_PARTICIPANTS,
  };
  const shard = params.get('shard');
  if (shard !== null) {
    if (!/^\d+$/.test(shard)) {
      throw new CohortError('CONFIG_INVALID', `?shard= must be a shard number, got "${shard}"`);
    }
    query.shard = Number(shard);
  }
  const backend = params.get('backend');
  if (backend !== null && backend !== '' && backend !== 'auto') {
    if (!isBrowserBackend(backend)) {
      throw new CohortError(
        'CONFIG_INVALID',
        `?backend= must be one of ${BROWSER_BACKENDS.join(', ')} (or absent), got "${backend}"`,
      );
    }
    query.backend = backend;
  }
  const min = params.get('min-participants');
  if (min !== null) {
    const value = /^\d+$/.test(min) ? Number(min) : NaN;
    if (!Number.isSafeInteger(value) || value < MIN_THRESHOLD) {
      throw new CohortError(
        'CONFIG_INVALID',
        `?min-participants= must be an integer of at least ${MIN_THRESHOLD}, got "${min}"`,
      );
    }
    query.minParticipants = value;
  }
  const name = params.get('name')?.trim();
  if (name !== undefined && name !== '') query.name = name.slice(0, 200);
  const token = params.get('token');
  if (token !== null && token !== '') query.token = token;
  return query;
}
