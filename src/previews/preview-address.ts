import type { IncomingMessage } from 'node:http';
import { ENVIRONMENT_ID_PATTERN } from '../runtime/runtime.provider.js';

/** The query parameters a first request may carry: an access token, or the signed grant of `external_url`. */
export const TOKEN_PARAM = 'devpocket_token';
export const GRANT_PARAM = 'devpocket_grant';
/** The preview's own cookie (scoped to it: its host, or its path); never forwarded to the environment. */
export const PREVIEW_COOKIE = 'devpocket_preview';

/** A request for a preview, in either form. */
export interface PreviewRequest {
  form: 'host' | 'path';
  environmentId: string;
  port: number;
  /**
   * What the preview's own addresses start with: `/preview/<id>/<port>/~<key>` or, before the first
   * use, `/preview/<id>/<port>` (path form); '' (host form).
   */
  prefix: string;
  /** Path form: the preview key in the path (a signed, scoped credential), or null. */
  key: string | null;
  /** The path and query the environment's server gets (`/` and below). */
  upstreamPath: string;
  url: URL;
}

const PATH_FORM = /^\/preview\/([0-9a-f]{24})\/(\d{1,5})(?:\/~([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+))?(\/.*)?$/;
/** Anything under /preview/ is a preview request, found or not (a 404 of the previews, never the console's). */
const PATH_PREFIX = /^\/preview(?:\/|$)/;

function validPort(raw: string): number | null {
  const port = Number(raw);
  return Number.isInteger(port) && port >= 1 && port <= 65_535 && String(port) === raw ? port : null;
}

/**
 * Whether a request is for a preview, and which: `<port>-<id>.<domain>` when `domain` is set (any
 * path), else `/preview/<id>/<port>/…`. `'invalid'` for a request in a preview's address space that
 * names none (answered 404 by the previews); null for every other request.
 */
export function parsePreviewRequest(request: IncomingMessage, domain: string | null): PreviewRequest | 'invalid' | null {
  let url: URL;
  try {
    url = new URL(request.url ?? '/', 'http://preview.invalid');
  } catch {
    return null;
  }
  const host = (request.headers.host ?? '').toLowerCase().replace(/:\d+$/, '');
  if (domain && host.endsWith(`.${domain}`)) {
    const label = host.slice(0, -(domain.length + 1));
    const found = /^(\d{1,5})-([0-9a-f]{24})$/.exec(label);
    const port = found ? validPort(found[1]) : null;
    if (!found || port === null) return 'invalid';
    return { form: 'host', environmentId: found[2], port, prefix: '', key: null, upstreamPath: `${url.pathname}${url.search}`, url };
  }
  if (!PATH_PREFIX.test(url.pathname)) return null;
  const found = PATH_FORM.exec(url.pathname);
  const port = found ? validPort(found[2]) : null;
  if (!found || port === null || !ENVIRONMENT_ID_PATTERN.test(found[1])) return 'invalid';
  const key = found[3] ?? null;
  const prefix = `/preview/${found[1]}/${port}${key ? `/~${key}` : ''}`;
  return { form: 'path', environmentId: found[1], port, prefix, key, upstreamPath: `${found[4] ?? '/'}${url.search}`, url };
}

/** The preview's clean address (no token, no grant): absolute, on `publicUrl`'s scheme and port. */
export function previewAddress(publicUrl: URL, domain: string | null, environmentId: string, port: number): string {
  if (domain) {
    const base = new URL(publicUrl.href);
    base.hostname = `${port}-${environmentId}.${domain}`;
    base.pathname = '/';
    return base.href;
  }
  return new URL(`/preview/${environmentId}/${port}/`, publicUrl).href;
}

/**
 * Where a first use redirects to: the request's address without the token and grant parameters;
 * in the path form, with the preview's key in the path (`/preview/<id>/<port>/~<key>/…`).
 */
export function cleanLocation(request: PreviewRequest, key: string): string {
  const url = new URL(request.url.href);
  url.searchParams.delete(TOKEN_PARAM);
  url.searchParams.delete(GRANT_PARAM);
  if (request.form === 'host') return `${url.pathname}${url.search}`;
  const upstream = new URL(request.upstreamPath, 'http://upstream.invalid');
  return `/preview/${request.environmentId}/${request.port}/~${key}${upstream.pathname}${url.search}`;
}

/** The Cookie header without the preview's own cookie (the environment never sees it), or null when nothing is left. */
export function withoutPreviewCookie(header: string | undefined): string | null {
  if (!header) return null;
  const kept = header
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part !== '' && !part.startsWith(`${PREVIEW_COOKIE}=`));
  return kept.length > 0 ? kept.join('; ') : null;
}

/** The value of the preview's cookie in a Cookie header. */
export function previewCookie(header: string | undefined): string | null {
  for (const part of (header ?? '').split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === PREVIEW_COOKIE) return value.join('=');
  }
  return null;
}
