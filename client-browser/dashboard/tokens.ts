/**
 * The dashboard token (the coordinator's `--dashboard-token`, read-only access). An operator
 * may open `/?token=…` once; the token then moves to sessionStorage and out of the address
 * bar, so it does not linger in history, bookmarks or a screenshot of the page. The admin
 * token is a different thing and never comes here: it stays in controls.ts's memory.
 */

/** The sessionStorage key of the dashboard token. */
export const TOKEN_STORAGE_KEY = 'cohort.dashboardToken';

/** The token in sessionStorage, or null (none, or storage unavailable). */
export function readStoredToken(storage: Storage | null = safeSessionStorage()): string | null {
  try {
    const token = storage?.getItem(TOKEN_STORAGE_KEY) ?? null;
    return token !== null && token.length > 0 ? token : null;
  } catch {
    return null;
  }
}

/** Keeps `token` for this tab's session (an empty one forgets it). */
export function storeToken(token: string, storage: Storage | null = safeSessionStorage()): void {
  try {
    if (token.length > 0) storage?.setItem(TOKEN_STORAGE_KEY, token);
    else storage?.removeItem(TOKEN_STORAGE_KEY);
  } catch {
    // Storage refused (private mode, quota): the token then lives only in memory.
  }
}

/**
 * Moves a `?token=` of the page's URL to sessionStorage and removes it from the address bar
 * (history.replaceState, other parameters and the hash kept). Returns the token to use: the
 * URL's if there was one, else the stored one, else null.
 */
export function takeDashboardToken(): string | null {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl !== null) {
    url.searchParams.delete('token');
    const search = url.searchParams.toString();
    window.history.replaceState(
      window.history.state,
      '',
      `${url.pathname}${search.length > 0 ? `?${search}` : ''}${url.hash}`,
    );
    if (fromUrl.length > 0) {
      storeToken(fromUrl);
      return fromUrl;
    }
  }
  return readStoredToken();
}

function safeSessionStorage(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}
