/**
 * The wire: JSON requests to this origin's `/api/v1`, and the one error body every error answers
 * with (docs/api.md): `detail` is what a person reads, `code` what a program branches on.
 */

export const API = '/api/v1';

export interface ErrorBody {
  detail?: unknown;
  code?: unknown;
  errors?: { field: string; message: string; code?: string }[];
  locked_until?: unknown;
  [key: string]: unknown;
}

/** An HTTP answer outside 2xx. */
export class ApiError extends Error {
  readonly detail: string;
  readonly code: string | null;

  constructor(
    readonly status: number,
    readonly body: ErrorBody | null,
    /** Seconds from the `Retry-After` header (429, 423, 503), when there is one. */
    readonly retryAfter: number | null,
  ) {
    const detail = typeof body?.detail === 'string' && body.detail ? body.detail : `The server answered ${status}`;
    super(detail);
    this.name = 'ApiError';
    this.detail = detail;
    this.code = typeof body?.code === 'string' ? body.code : null;
  }
}

/** The request never got an answer (offline, server down, connection cut). */
export class NetworkError extends Error {
  constructor(cause: unknown) {
    super('Cannot reach the server; check the connection and try again', { cause });
    this.name = 'NetworkError';
  }
}

export interface JsonRequest {
  body?: unknown;
  token?: string | null;
  signal?: AbortSignal;
}

function retryAfterSeconds(headers: Headers): number | null {
  const value = headers.get('retry-after');
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

/** One request; resolves with the parsed body of a 2xx, throws ApiError or NetworkError otherwise. */
export async function requestJson<T>(method: string, path: string, options: JsonRequest = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let response: Response;
  try {
    response = await fetch(`${API}${path}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      credentials: 'omit',
      cache: 'no-store',
      redirect: 'error',
      signal: options.signal,
    });
  } catch (error) {
    if (options.signal?.aborted) throw error;
    throw new NetworkError(error);
  }
  const text = await response.text().catch(() => '');
  let body: unknown = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!response.ok)
    throw new ApiError(response.status, body && typeof body === 'object' ? (body as ErrorBody) : null, retryAfterSeconds(response.headers));
  return body as T;
}

/**
 * What to show a person for a failed request: the server's `detail`, with when to retry (429,
 * 423) in words when the server said so.
 */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 423) {
      const until = typeof error.body?.locked_until === 'string' ? new Date(error.body.locked_until) : null;
      const when = until && !Number.isNaN(until.getTime()) ? ` (until ${until.toLocaleTimeString()})` : '';
      return `${error.detail}${when}`;
    }
    if (error.status === 429 && error.retryAfter !== null && !/\d+ ?s\b/.test(error.detail)) {
      return `${error.detail} (retry in ${error.retryAfter} s)`;
    }
    return error.detail;
  }
  if (error instanceof NetworkError) return error.message;
  return error instanceof Error ? error.message : String(error);
}
