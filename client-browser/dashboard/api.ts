import { WEB_PATHS } from '../../shared/protocol/web';
import type { ControlAction, DashboardSnapshot, WebError } from '../../shared/protocol/web';

/** A refused or failed request, as the page shows it: the server's code and sentence. */
export interface ApiFailure {
  ok: false;
  /** The HTTP status, 0 when no answer came (network down, coordinator gone). */
  status: number;
  code: string;
  message: string;
}

/** The outcome of GET /api/state. */
export type StateResult = { ok: true; snapshot: DashboardSnapshot } | ApiFailure;

/** The outcome of POST /api/control/<action>. */
export type ControlResult = { ok: true; status: number; message: string } | ApiFailure;

function authHeaders(token: string | null): Record<string, string> {
  return token !== null && token.length > 0 ? { Authorization: `Bearer ${token}` } : {};
}

/** The body of a refusal: the WebError the coordinator sends, or a code made from the status. */
async function failureOf(response: Response): Promise<ApiFailure> {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text) as Partial<WebError>;
    if (typeof body.error?.code === 'string' && typeof body.error.message === 'string') {
      return {
        ok: false,
        status: response.status,
        code: body.error.code,
        message: body.error.message,
      };
    }
  } catch {
    // Not JSON (a proxy's error page, say): fall through to a code made from the status.
  }
  return {
    ok: false,
    status: response.status,
    code: `HTTP_${response.status}`,
    message: text.trim().slice(0, 200) || response.statusText || 'request refused',
  };
}

function networkFailure(error: unknown): ApiFailure {
  return {
    ok: false,
    status: 0,
    code: 'NETWORK',
    message: `no answer from the coordinator: ${error instanceof Error ? error.message : String(error)}`,
  };
}

/** GET /api/state, with the dashboard token when one is known. */
export async function fetchState(token: string | null): Promise<StateResult> {
  let response: Response;
  try {
    response = await fetch(WEB_PATHS.state, {
      headers: { Accept: 'application/json', ...authHeaders(token) },
      cache: 'no-store',
    });
  } catch (error) {
    return networkFailure(error);
  }
  if (!response.ok) return failureOf(response);
  try {
    return { ok: true, snapshot: (await response.json()) as DashboardSnapshot };
  } catch (error) {
    return {
      ok: false,
      status: response.status,
      code: 'BAD_RESPONSE',
      message: `the state was not JSON: ${String(error)}`,
    };
  }
}

/**
 * POST /api/control/<action> with the admin token (none sent when the field is empty, so
 * the coordinator's refusal is what the operator sees).
 */
export async function postControl(
  action: ControlAction,
  adminToken: string,
): Promise<ControlResult> {
  let response: Response;
  try {
    response = await fetch(`${WEB_PATHS.control}${action}`, {
      method: 'POST',
      headers: { Accept: 'application/json', ...authHeaders(adminToken) },
      cache: 'no-store',
    });
  } catch (error) {
    return networkFailure(error);
  }
  if (!response.ok) return failureOf(response);
  const text = await response.text().catch(() => '');
  return { ok: true, status: response.status, message: describeSuccess(action, text) };
}

/** A sentence for an accepted action, from whatever the body says (message, status). */
function describeSuccess(action: ControlAction, text: string): string {
  try {
    const body = JSON.parse(text) as { message?: unknown; status?: unknown };
    if (typeof body.message === 'string') return body.message;
    if (typeof body.status === 'string') return `${action} accepted: the run is ${body.status}`;
  } catch {
    // An empty or non-JSON body is still a success.
  }
  return `${action} accepted`;
}
