/** HTTP pieces of the fault-injecting proxy (./fault-proxy.ts): Kubernetes Status bodies, rule matching, headers. */
import { type OutgoingHttpHeaders, STATUS_CODES } from 'node:http';

import type { FaultMatch } from './fault-proxy-types.js';

/** Reasons the kube-apiserver gives with these statuses (metav1.StatusReason). */
const STATUS_REASONS: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  406: 'NotAcceptable',
  409: 'Conflict',
  410: 'Expired',
  413: 'RequestEntityTooLarge',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

/** Headers that belong to one connection, never forwarded as such. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** The Kubernetes Status object the apiserver answers errors with. */
export function kubernetesStatus(code: number, message = 'injected fault', reason?: string): Record<string, unknown> {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    status: code < 400 ? 'Success' : 'Failure',
    message,
    reason: reason ?? STATUS_REASONS[code] ?? (code >= 500 ? 'InternalError' : 'Unknown'),
    code,
  };
}

export function matches(match: FaultMatch | undefined, method: string, path: string): boolean {
  if (!match) return true;
  if (match.method !== undefined && match.method.toUpperCase() !== method.toUpperCase()) return false;
  if (match.path !== undefined) {
    // A global or sticky regex keeps state between test() calls: use a stateless copy.
    const path_ =
      match.path.global || match.path.sticky ? new RegExp(match.path.source, match.path.flags.replace(/[gy]/g, '')) : match.path;
    if (!path_.test(path)) return false;
  }
  return true;
}

/** True for a request whose response stays open: a watch or a followed log. */
export function isLongLived(path: string): boolean {
  const query = path.indexOf('?');
  if (query < 0) return false;
  const params = new URLSearchParams(path.slice(query + 1));
  return ['watch', 'follow'].some((name) => {
    const value = params.get(name);
    return value === 'true' || value === '1';
  });
}

/** Header pairs from raw headers (duplicates kept), without hop-by-hop ones (and those Connection names). */
export function forwardableHeaders(rawHeaders: string[], keepHopByHop: boolean): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) pairs.push([rawHeaders[i], rawHeaders[i + 1]]);
  if (keepHopByHop) return pairs;
  const named = new Set(HOP_BY_HOP);
  for (const [name, value] of pairs) {
    if (name.toLowerCase() === 'connection') for (const token of value.split(',')) named.add(token.trim().toLowerCase());
  }
  return pairs.filter(([name]) => !named.has(name.toLowerCase()));
}

export function headerObject(pairs: [string, string][]): OutgoingHttpHeaders {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of pairs) {
    const key = name.toLowerCase();
    const existing = headers[key];
    if (existing === undefined) headers[key] = value;
    else headers[key] = Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  return headers;
}

export function rawResponse(status: number, headers: Record<string, string>, body: string): string {
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  lines.push(`Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close');
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}
