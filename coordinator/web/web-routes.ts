import type { IncomingMessage, ServerResponse } from 'node:http';
import QRCode from 'qrcode';
import { isCohortError, reasonOf } from '../../shared/errors';
import type { ErrorCode } from '../../shared/errors';
import type {
  ControlAction,
  DashboardSnapshot,
  JoinInfo,
  WebError,
} from '../../shared/protocol/web';
import { CONTROL_ACTIONS, WEB_PATHS } from '../../shared/protocol/web';
import type { Logger } from '../logger';
import { bearerTokenOf, tokensMatch } from './access-token';
import type { BrowserAssets } from './browser-assets';
import type { CoordinatorMetrics } from './coordinator-metrics';
import { METRICS_CONTENT_TYPE } from './coordinator-metrics';
import type { SampleShards } from './sample-shards';
import { SECURITY_HEADERS } from './security-headers';

/** What the HTTP side of a coordinator serves from; the coordinator provides each part. */
export interface WebRoutesOptions {
  assets: BrowserAssets;
  joinInfo(): JoinInfo;
  snapshot(): Promise<DashboardSnapshot>;
  /** Runs an admin action; throws CohortError to refuse it (e.g. resume while running). */
  control(action: ControlAction): Promise<{ status: string; message: string }>;
  joinUrl(): string;
  sample: SampleShards | null;
  metrics: CoordinatorMetrics;
  /** Null: controls are off. */
  adminToken: string | null;
  /** Null: reading is open. */
  dashboardToken: string | null;
  log: Logger;
}

/** HTTP statuses of the codes web requests are refused with. */
const STATUS_OF: Partial<Record<ErrorCode, number>> = {
  ACCESS_REFUSED: 401,
  NOT_FOUND: 404,
  MESSAGE_INVALID: 400,
  CONFIG_INVALID: 409,
  INTERNAL: 500,
};

/** Requests whose body is bigger than this are refused: no route reads a body. */
const MAX_BODY_BYTES = 1024;

const SAMPLE_PATH = new RegExp(`^${WEB_PATHS.sample}(\\d{1,4})/(images|labels)$`);

/**
 * The coordinator's HTTP routes (everything but `/socket.io/`): the pages, their assets, the
 * read API, the admin controls and the metrics. Every answer carries the security headers;
 * every refusal is a {@link WebError} with a stable code. Tokens are compared in constant time
 * and never logged; a request never reaches state it is not entitled to.
 */
export function createWebRoutes(options: WebRoutesOptions) {
  const { assets } = options;
  let qrCache: { url: string; svg: string } | null = null;

  const send = (
    res: ServerResponse,
    status: number,
    contentType: string,
    body: string | Buffer | Uint8Array,
    extra: Record<string, string> = {},
  ): void => {
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      'Content-Type': contentType,
      'Content-Length': String(typeof body === 'string' ? Buffer.byteLength(body) : body.length),
      'Cache-Control': 'no-store',
      ...extra,
    });
    res.end(body);
  };
  const json = (res: ServerResponse, status: number, value: unknown): void =>
    send(res, status, 'application/json; charset=utf-8', JSON.stringify(value));
  const refuse = (res: ServerResponse, code: ErrorCode, message: string): void => {
    const body: WebError = { error: { code, message } };
    json(res, STATUS_OF[code] ?? 400, body);
  };

  const canRead = (req: IncomingMessage): boolean =>
    options.dashboardToken === null || tokensMatch(bearerTokenOf(req), options.dashboardToken);

  const page = (res: ServerResponse, name: 'dashboard.html' | 'join.html'): void => {
    const asset = assets.get(name);
    if (!asset) {
      send(
        res,
        503,
        'text/plain; charset=utf-8',
        `The browser pages are not built (${assets.dir ?? 'no dist/browser folder'}): run \`npm run build\` and restart the coordinator.\n`,
      );
      return;
    }
    send(res, 200, asset.contentType, asset.body);
  };

  const routes = async (req: IncomingMessage, res: ServerResponse, path: string) => {
    const method = req.method ?? 'GET';
    const isRead = method === 'GET' || method === 'HEAD';
    if (path.startsWith(WEB_PATHS.control)) {
      if (method !== 'POST') return refuse(res, 'MESSAGE_INVALID', 'controls are POST requests');
      const action = path.slice(WEB_PATHS.control.length);
      if (!(CONTROL_ACTIONS as readonly string[]).includes(action)) {
        return refuse(
          res,
          'NOT_FOUND',
          `no control "${action.slice(0, 40)}": one of ${CONTROL_ACTIONS.join(', ')}`,
        );
      }
      if (options.adminToken === null) {
        return refuse(
          res,
          'ACCESS_REFUSED',
          'controls are off: start the coordinator with --admin-token-file',
        );
      }
      if (!tokensMatch(bearerTokenOf(req), options.adminToken)) {
        options.log.warn(`refused a control request (${action}) without the admin token`);
        return refuse(
          res,
          'ACCESS_REFUSED',
          'this action needs the admin token (Authorization: Bearer)',
        );
      }
      const result = await options.control(action as ControlAction);
      options.log.info(`admin: ${action} (${result.message})`);
      return json(res, 200, { action, ...result });
    }
    if (!isRead) return refuse(res, 'MESSAGE_INVALID', `${method} is not served here`);
    if (path === WEB_PATHS.dashboard) return page(res, 'dashboard.html');
    if (path === WEB_PATHS.join || path === `${WEB_PATHS.join}/`) return page(res, 'join.html');
    if (path.startsWith(WEB_PATHS.assets)) {
      const asset = assets.get(path.slice(WEB_PATHS.assets.length));
      if (!asset) return refuse(res, 'NOT_FOUND', 'no such asset');
      return send(res, 200, asset.contentType, asset.body, { 'Cache-Control': 'no-cache' });
    }
    if (path === WEB_PATHS.joinInfo) return json(res, 200, options.joinInfo());
    if (path === WEB_PATHS.joinQr) {
      const url = options.joinUrl();
      if (qrCache?.url !== url) {
        qrCache = {
          url,
          svg: await QRCode.toString(url, { type: 'svg', margin: 1, errorCorrectionLevel: 'M' }),
        };
      }
      return send(res, 200, 'image/svg+xml', qrCache.svg);
    }
    const sample = SAMPLE_PATH.exec(path);
    if (sample) {
      const shard = options.sample?.shard(Number(sample[1]));
      if (!shard) return refuse(res, 'NOT_FOUND', 'no such public sample shard');
      return send(
        res,
        200,
        'application/octet-stream',
        sample[2] === 'images' ? shard.images : shard.labels,
      );
    }
    if (path === WEB_PATHS.state || path === WEB_PATHS.metrics) {
      if (!canRead(req)) {
        return refuse(
          res,
          'ACCESS_REFUSED',
          'reading needs the dashboard token (Authorization: Bearer)',
        );
      }
      if (path === WEB_PATHS.state) return json(res, 200, await options.snapshot());
      return send(res, 200, METRICS_CONTENT_TYPE, await options.metrics.render());
    }
    return refuse(res, 'NOT_FOUND', 'no such page');
  };

  /** Handles one request; socket.io's own paths never reach it. */
  return function handle(req: IncomingMessage, res: ServerResponse): void {
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://coordinator').pathname;
    } catch {
      return refuse(res, 'MESSAGE_INVALID', 'bad request URL');
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (!(declared <= MAX_BODY_BYTES)) {
      refuse(res, 'MESSAGE_INVALID', 'request bodies are not accepted here');
      req.destroy();
      return;
    }
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > MAX_BODY_BYTES) req.destroy();
    });
    routes(req, res, path).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (isCohortError(error) && STATUS_OF[error.code] !== undefined) {
        refuse(res, error.code, error.reason);
        return;
      }
      options.log.warn(`web request ${path} failed: ${reasonOf(error)}`);
      refuse(res, 'INTERNAL', 'the coordinator could not answer this request');
    });
  };
}
