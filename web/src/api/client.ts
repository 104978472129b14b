// HTTP client for the Manager Server and the CPA Management API.
// Every call carries `Authorization: Bearer <credential>`; any 401 on an authenticated call
// fires the unauthorized listeners (global logout). Errors become ApiError values carrying
// the HTTP status and the server's `code`, so pages can localise them (see errors.ts).

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** True when the server does not (yet) provide this endpoint. */
  get notAvailable(): boolean {
    return this.status === 501 || this.status === 404;
  }
}

export interface Connection {
  /** Origin (or origin + path prefix) of the server, without trailing slash. */
  apiBase: string;
  credential: string;
}

export interface RequestOptions {
  method?: string;
  query?: Record<string, string | number | boolean | undefined>;
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** Skip the Authorization header (public endpoints). */
  anonymous?: boolean;
  signal?: AbortSignal;
}

export const kDefaultTimeoutMs = 30_000;

type Listener = () => void;
const unauthorizedListeners = new Set<Listener>();
const versionListeners = new Set<(v: ServerVersion) => void>();

export interface ServerVersion {
  version?: string;
  buildDate?: string;
}

export function onUnauthorized(fn: Listener): () => void {
  unauthorizedListeners.add(fn);
  return () => unauthorizedListeners.delete(fn);
}

export function onServerVersion(fn: (v: ServerVersion) => void): () => void {
  versionListeners.add(fn);
  return () => versionListeners.delete(fn);
}

/** Extracts `{error, code}` from an error body the way the upstream panel does. */
export function parseErrorBody(status: number, text: string): ApiError {
  let code = '';
  let message = text.trim() || `HTTP ${status}`;
  let body: unknown;
  try {
    body = JSON.parse(text) as unknown;
    if (body && typeof body === 'object') {
      const o = body as Record<string, unknown>;
      const err = o['error'];
      if (typeof err === 'string') message = err;
      else if (
        err &&
        typeof err === 'object' &&
        typeof (err as Record<string, unknown>)['message'] === 'string'
      )
        message = (err as Record<string, string>)['message'] ?? message;
      else if (typeof o['message'] === 'string') message = o['message'];
      if (typeof o['code'] === 'string') code = o['code'];
    }
  } catch {
    // Plain-text body (e.g. "404 page not found").
  }
  if (!code) {
    if (status === 401) code = 'invalid_admin_key';
    else if (status === 405) code = 'method_not_allowed';
    else if (status === 412 || status === 428) code = 'usage_service_not_configured';
  }
  return new ApiError(status, code, message, body);
}

export function buildUrl(apiBase: string, path: string, query?: RequestOptions['query']): string {
  const base = apiBase.replace(/\/+$/, '');
  let url = `${base}${path.startsWith('/') ? path : `/${path}`}`;
  if (query) {
    const qs = Object.entries(query)
      .filter(([, v]) => v !== undefined && v !== '')
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
      .join('&');
    if (qs) url += `?${qs}`;
  }
  return url;
}

/** Performs a request and returns the raw Response (2xx only; others throw ApiError). */
export async function rawRequest(
  conn: Connection,
  path: string,
  opts: RequestOptions = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...opts.headers };
  if (!opts.anonymous && conn.credential) headers['Authorization'] = `Bearer ${conn.credential}`;
  let body = opts.body;
  if (opts.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.json);
  }
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), opts.timeoutMs ?? kDefaultTimeoutMs);
  const onOuterAbort = () => controller.abort();
  opts.signal?.addEventListener('abort', onOuterAbort);
  let res: Response;
  try {
    res = await fetch(buildUrl(conn.apiBase, path, opts.query), {
      method: opts.method ?? 'GET',
      headers,
      body,
      signal: controller.signal,
    });
  } catch (e) {
    const aborted = controller.signal.aborted && !opts.signal?.aborted;
    throw new ApiError(
      0,
      aborted ? 'timeout' : 'network_error',
      e instanceof Error ? e.message : String(e),
    );
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onOuterAbort);
  }
  const version = res.headers.get('x-cpa-version') ?? res.headers.get('x-server-version');
  if (version) {
    const buildDate =
      res.headers.get('x-cpa-build-date') ?? res.headers.get('x-server-build-date') ?? undefined;
    versionListeners.forEach((fn) => fn({ version, buildDate }));
  }
  if (!res.ok) {
    const err = parseErrorBody(res.status, await res.text().catch(() => ''));
    if (res.status === 401 && !opts.anonymous) unauthorizedListeners.forEach((fn) => fn());
    throw err;
  }
  return res;
}

/** JSON request; returns the parsed body (undefined for an empty body). */
export async function request<T>(
  conn: Connection,
  path: string,
  opts: RequestOptions = {},
): Promise<T> {
  const res = await rawRequest(conn, path, opts);
  const text = await res.text();
  if (!text) return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError(res.status, 'invalid_response', 'response is not JSON');
  }
}
