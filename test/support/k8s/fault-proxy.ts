/**
 * A fault-injecting reverse proxy between a Kubernetes client and a kube-apiserver, for tests.
 *
 * `startFaultProxy({ upstream: 'https://127.0.0.1:6443', ca })` listens on plain HTTP on 127.0.0.1
 * (a free port, `proxy.url`) and forwards every request to the upstream over TLS: method, path and
 * query, headers (Authorization included; Host rewritten to the upstream's) and bodies, streaming both
 * ways; long responses (watches, followed logs) are never buffered, each chunk is flushed as it
 * arrives. HTTP upgrades (exec/attach/port-forward over WebSocket, or SPDY) are tunnelled: the proxy
 * opens a TLS socket to the upstream, writes the request head and pipes both sockets, the upstream's
 * `101 Switching Protocols` included.
 *
 * `kubeconfigThrough(proxy, kubeconfig)` gives a copy of a KubeConfig whose current cluster is the
 * proxy. Faults are rules added and removed at run time (`fail`, `hang`, `delay`, `reset`), plus
 * `dropStreams()` to cut open watches and exec sessions; `requests()` lists what the client sent.
 *
 * Client certificates cannot cross a plain-HTTP hop: for a cluster whose user authenticates with a
 * certificate (kind's default kubeconfig), give the proxy the certificate instead, e.g.
 * `startFaultProxy(upstreamFromKubeConfig(kc))`. Bearer tokens and exec/auth-provider credentials go
 * through as the Authorization header.
 */
import { readFileSync } from 'node:fs';
import { createServer, IncomingMessage, OutgoingHttpHeaders, ServerResponse, STATUS_CODES, type ClientRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { isIP, Socket, type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

import { KubeConfig, type Cluster, type User } from '@kubernetes/client-node';

export interface FaultProxyOptions {
  /** The kube-apiserver, `https://HOST:PORT` (a path prefix, if any, is prepended to every request path). */
  upstream: string;
  /** CA certificate(s) the upstream's certificate must chain to (PEM). Without it, the system CAs. */
  ca?: Buffer | string;
  /** False to accept any upstream certificate. Default true. */
  rejectUnauthorized?: boolean;
  /** TLS server name to verify the upstream against (a cluster's `tls-server-name`). */
  servername?: string;
  /** Client certificate and key (PEM) the proxy presents to the upstream (certificate-based users). */
  cert?: Buffer | string;
  key?: Buffer | string;
  /** Like a load balancer: cut an upgraded connection (exec) after this long without a byte either way. */
  idleTimeoutMs?: number;
}

/** Which requests a rule or query applies to; every given field must match, an empty match matches all. */
export interface FaultMatch {
  /** HTTP method, case-insensitive. */
  method?: string;
  /** Tested against the path with its query string, e.g. /\/api\/v1\/namespaces\/[^/]+\/pods\b/. */
  path?: RegExp;
}

export interface TimesOption {
  /** Apply to this many matching requests, then remove the rule. Default: until removed. */
  times?: number;
}

export interface FailOptions extends TimesOption {
  /** HTTP status to answer with. */
  status: number;
  /**
   * Response body: a string is sent as is, anything else as JSON. Default: a Kubernetes Status,
   * `{"kind":"Status","apiVersion":"v1","status":"Failure","message":…,"reason":…,"code":status}`.
   */
  body?: unknown;
  /** With the default body: its message (default "injected fault") and reason (default from the status). */
  message?: string;
  reason?: string;
  /** Extra response headers, e.g. `{ 'retry-after': '1' }`. */
  headers?: Record<string, string>;
}

export type FaultKind = 'fail' | 'hang' | 'delay' | 'reset';

/** A rule as added; `remove()` takes it out (idempotent). */
export interface FaultRule {
  readonly kind: FaultKind;
  /** Requests it has applied to so far. */
  readonly hits: number;
  /** False once removed, by remove(), clear() or by running out of `times`. */
  readonly active: boolean;
  remove(): void;
}

/** One request the proxy received, in order of arrival. */
export interface RequestRecord {
  method: string;
  /** Path with query string, as the client sent it. */
  path: string;
  /**
   * Status answered: the upstream's (101 for an accepted upgrade), the injected one, 502 when the
   * upstream could not be reached; null while pending, or when hung, reset, or abandoned before an answer.
   */
  status: number | null;
  /** Date.now() at arrival. */
  at: number;
  /** The rule that applied, if any. */
  fault: FaultKind | null;
  /** True for an HTTP upgrade (exec, attach, port-forward). */
  upgrade: boolean;
}

/** A long-lived exchange currently open through the proxy. */
export interface OpenStream {
  kind: 'watch' | 'upgrade';
  method: string;
  path: string;
  /** Date.now() when it was forwarded. */
  since: number;
}

/**
 * The running proxy. Rules apply to plain requests and upgrades alike; when several match a request,
 * the most recently added one applies (only one per request).
 */
export interface FaultProxy {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  /** Answers matching requests with `status` without contacting the upstream. */
  fail(match: FaultMatch, options: FailOptions): FaultRule;
  /** Accepts matching requests and never answers; their sockets are destroyed by close(). */
  hang(match: FaultMatch, options?: TimesOption): FaultRule;
  /** Forwards matching requests after `ms` milliseconds. */
  delay(match: FaultMatch, ms: number, options?: TimesOption): FaultRule;
  /** Destroys the client's connection as matching requests arrive (ECONNRESET / "socket hang up"). */
  reset(match: FaultMatch, options?: TimesOption): FaultRule;
  /**
   * Destroys, now, every open watch (`watch=true|1`; also `follow=true|1` log streams) and upgraded
   * connection (exec, attach) that matches, on both sides, like a dropped connection. Returns how many.
   */
  dropStreams(match?: FaultMatch): number;
  /** The watches and upgraded connections open now (to wait for one before dropping it). */
  streams(match?: FaultMatch): OpenStream[];
  /**
   * Silences, now, every upgraded connection (exec, attach) that matches, in both directions, without
   * closing either side: like a peer or a middlebox that vanished (no FIN, no RST). Bytes that arrive
   * afterwards (WebSocket pings included) are read and dropped; the sockets stay open until the client
   * gives up, or dropStreams()/close() destroys them. Returns how many.
   */
  blackholeStreams(match?: FaultMatch): number;
  /** Removes every rule (requests already hung stay hung). */
  clear(): void;
  /** Snapshot of the requests received since start or the last resetLog(), matching if given. */
  requests(match?: FaultMatch): RequestRecord[];
  resetLog(): void;
  /** Stops listening and destroys every socket, both sides. Idempotent. */
  close(): Promise<void>;
}

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

function matches(match: FaultMatch | undefined, method: string, path: string): boolean {
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
function isLongLived(path: string): boolean {
  const query = path.indexOf('?');
  if (query < 0) return false;
  const params = new URLSearchParams(path.slice(query + 1));
  return ['watch', 'follow'].some((name) => {
    const value = params.get(name);
    return value === 'true' || value === '1';
  });
}

/** Header pairs from raw headers (duplicates kept), without hop-by-hop ones (and those Connection names). */
function forwardableHeaders(rawHeaders: string[], keepHopByHop: boolean): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) pairs.push([rawHeaders[i], rawHeaders[i + 1]]);
  if (keepHopByHop) return pairs;
  const named = new Set(HOP_BY_HOP);
  for (const [name, value] of pairs) {
    if (name.toLowerCase() === 'connection') for (const token of value.split(',')) named.add(token.trim().toLowerCase());
  }
  return pairs.filter(([name]) => !named.has(name.toLowerCase()));
}

function headerObject(pairs: [string, string][]): OutgoingHttpHeaders {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of pairs) {
    const key = name.toLowerCase();
    const existing = headers[key];
    if (existing === undefined) headers[key] = value;
    else headers[key] = Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  return headers;
}

function rawResponse(status: number, headers: Record<string, string>, body: string): string {
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  lines.push(`Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close');
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

interface Rule {
  kind: FaultKind;
  match: FaultMatch;
  remaining: number | undefined;
  hits: number;
  active: boolean;
  status?: number;
  body?: string;
  headers?: Record<string, string>;
  delayMs?: number;
}

interface TrackedStream {
  info: OpenStream;
  drop: () => void;
  /** Upgrades only: stop forwarding both ways, closing nothing. */
  blackhole?: () => void;
}

/** Starts the proxy on 127.0.0.1 (a free port) and resolves once it listens. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const upstream = new URL(options.upstream);
  if (upstream.protocol !== 'https:') throw new Error(`startFaultProxy: upstream must be https://, got ${options.upstream}`);
  const upstreamHost = upstream.hostname.replace(/^\[|\]$/g, '');
  const upstreamPort = Number(upstream.port || 443);
  const basePath = upstream.pathname.replace(/\/+$/, '');
  const tlsOptions = {
    ca: options.ca,
    cert: options.cert,
    key: options.key,
    rejectUnauthorized: options.rejectUnauthorized ?? true,
    // SNI must not be an IP address (RFC 6066); Node warns if it is.
    servername: options.servername ?? (isIP(upstreamHost) ? undefined : upstreamHost),
  };
  const agent = new HttpsAgent({ keepAlive: true, ...tlsOptions });

  let rules: Rule[] = [];
  let log: RequestRecord[] = [];
  const streams = new Set<TrackedStream>();
  const clientSockets = new Set<Socket>();
  const upstreamSockets = new Set<TLSSocket>();
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;

  const addRule = (rule: Omit<Rule, 'hits' | 'active'>): FaultRule => {
    if (rule.remaining !== undefined && !(rule.remaining > 0))
      throw new Error(`fault proxy: times must be positive, got ${rule.remaining}`);
    const entry: Rule = { ...rule, hits: 0, active: true };
    rules.unshift(entry); // the newest rule wins
    return {
      kind: entry.kind,
      get hits() {
        return entry.hits;
      },
      get active() {
        return entry.active;
      },
      remove() {
        entry.active = false;
        rules = rules.filter((r) => r !== entry);
      },
    };
  };

  /** The rule that applies to this request, counted and used up if it has `times`. */
  const takeRule = (method: string, path: string): Rule | undefined => {
    const rule = rules.find((r) => matches(r.match, method, path));
    if (!rule) return undefined;
    rule.hits += 1;
    if (rule.remaining !== undefined) {
      rule.remaining -= 1;
      if (rule.remaining <= 0) {
        rule.active = false;
        rules = rules.filter((r) => r !== rule);
      }
    }
    return rule;
  };

  const later = (ms: number, fn: () => void): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!closed) fn();
    }, ms);
    timers.add(timer);
  };

  const track = (info: OpenStream, drop: () => void, blackhole?: () => void): (() => void) => {
    const entry: TrackedStream = { info, drop, blackhole };
    streams.add(entry);
    return () => streams.delete(entry);
  };

  const upstreamPath = (path: string): string => basePath + path;

  // ---- plain requests ----

  const forward = (req: IncomingMessage, res: ServerResponse, record: RequestRecord): void => {
    if (req.socket.destroyed) return;
    const headers = headerObject(forwardableHeaders(req.rawHeaders, false));
    headers.host = upstream.host;
    const upstreamReq: ClientRequest = httpsRequest({
      host: upstreamHost,
      port: upstreamPort,
      method: req.method,
      path: upstreamPath(req.url ?? '/'),
      headers,
      agent,
      ...tlsOptions,
    });
    const untrack = isLongLived(record.path)
      ? track({ kind: 'watch', method: record.method, path: record.path, since: Date.now() }, () => {
          upstreamReq.destroy();
          res.destroy();
        })
      : () => undefined;

    upstreamReq.on('response', (upstreamRes) => {
      const status = upstreamRes.statusCode ?? 502;
      record.status = status;
      res.writeHead(status, upstreamRes.statusMessage, headerObject(forwardableHeaders(upstreamRes.rawHeaders, false)));
      res.flushHeaders(); // a watch sends headers long before its first event
      upstreamRes.pipe(res);
      // An upstream that breaks off must look broken to the client, not like a clean end.
      upstreamRes.on('error', () => res.destroy());
      upstreamRes.on('close', () => {
        if (!upstreamRes.complete) res.destroy();
      });
    });
    upstreamReq.on('error', (error) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (res.destroyed) return;
      record.status = 502;
      const body = JSON.stringify(kubernetesStatus(502, `fault proxy: upstream unreachable: ${error.message}`, 'InternalError'));
      res.writeHead(502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    res.on('close', () => {
      untrack();
      // The client went away (or was dropped) before the end: stop the upstream exchange too.
      if (!res.writableFinished) upstreamReq.destroy();
    });
    req.pipe(upstreamReq);
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const method = (req.method ?? 'GET').toUpperCase();
    const path = req.url ?? '/';
    const record: RequestRecord = { method, path, status: null, at: Date.now(), fault: null, upgrade: false };
    log.push(record);
    const rule = takeRule(method, path);
    record.fault = rule?.kind ?? null;
    if (!rule) return forward(req, res, record);
    switch (rule.kind) {
      case 'fail': {
        req.resume();
        const body = rule.body ?? '';
        record.status = rule.status ?? 500;
        res.writeHead(record.status, { 'content-type': 'application/json', ...rule.headers, 'content-length': Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      case 'hang':
        req.resume(); // read and discard the body; never answer
        return;
      case 'reset':
        req.socket.destroy();
        return;
      case 'delay':
        later(rule.delayMs ?? 0, () => forward(req, res, record));
        return;
    }
  };

  // ---- upgrades (exec, attach, port-forward: WebSocket or SPDY) ----

  const tunnel = (req: IncomingMessage, socket: Duplex, head: Buffer, record: RequestRecord): void => {
    if (socket.destroyed) return;
    const upstreamSocket = tlsConnect({ host: upstreamHost, port: upstreamPort, ALPNProtocols: ['http/1.1'], ...tlsOptions });
    upstreamSockets.add(upstreamSocket);
    let answered = false;
    const untrack = track(
      { kind: 'upgrade', method: record.method, path: record.path, since: Date.now() },
      () => {
        upstreamSocket.destroy();
        socket.destroy();
      },
      () => {
        upstreamSocket.unpipe(socket);
        socket.unpipe(upstreamSocket);
        const discard = (): void => undefined;
        upstreamSocket.on('data', discard);
        socket.on('data', discard);
        if (socket instanceof Socket) socket.setTimeout(0);
      },
    );
    const closeBoth = (): void => {
      untrack();
      upstreamSockets.delete(upstreamSocket);
      upstreamSocket.destroy();
      socket.destroy();
    };
    upstreamSocket.on('secureConnect', () => {
      const headers = forwardableHeaders(req.rawHeaders, true).filter(([name]) => name.toLowerCase() !== 'host');
      const lines = [`${req.method ?? 'GET'} ${upstreamPath(req.url ?? '/')} HTTP/1.1`, `Host: ${upstream.host}`];
      for (const [name, value] of headers) lines.push(`${name}: ${value}`);
      upstreamSocket.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstreamSocket.write(head);
      upstreamSocket.once('data', (chunk: Buffer) => {
        answered = true;
        const status = /^HTTP\/1\.[01] (\d{3})/.exec(chunk.toString('latin1', 0, 16));
        record.status = status ? Number(status[1]) : null;
      });
      upstreamSocket.pipe(socket);
      socket.pipe(upstreamSocket);
      // Like a load balancer: a tunnel with no byte either way for this long is cut.
      if (options.idleTimeoutMs !== undefined && socket instanceof Socket) socket.setTimeout(options.idleTimeoutMs, closeBoth);
    });
    let gaveUp = false;
    upstreamSocket.on('error', (error: Error) => {
      if (!answered && !socket.destroyed) {
        // Never reached the upstream: answer 502 and let the client read it before the socket closes.
        answered = true;
        gaveUp = true;
        record.status = 502;
        const body = JSON.stringify(kubernetesStatus(502, `fault proxy: upstream unreachable: ${error.message}`, 'InternalError'));
        untrack();
        upstreamSockets.delete(upstreamSocket);
        socket.end(rawResponse(502, { 'Content-Type': 'application/json' }, body));
        return;
      }
      closeBoth();
    });
    upstreamSocket.on('close', () => {
      if (!gaveUp) closeBoth();
    });
    socket.on('error', closeBoth);
    socket.on('close', closeBoth);
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const method = (req.method ?? 'GET').toUpperCase();
    const path = req.url ?? '/';
    const record: RequestRecord = { method, path, status: null, at: Date.now(), fault: null, upgrade: true };
    log.push(record);
    socket.on('error', () => socket.destroy());
    const rule = takeRule(method, path);
    record.fault = rule?.kind ?? null;
    if (!rule) return tunnel(req, socket, head, record);
    switch (rule.kind) {
      case 'fail':
        record.status = rule.status ?? 500;
        socket.end(rawResponse(record.status, { 'Content-Type': 'application/json', ...rule.headers }, rule.body ?? ''));
        return;
      case 'hang':
        return;
      case 'reset':
        socket.destroy();
        return;
      case 'delay':
        later(rule.delayMs ?? 0, () => tunnel(req, socket, head, record));
        return;
    }
  };

  const server = createServer();
  server.on('request', onRequest);
  server.on('upgrade', onUpgrade);
  server.on('connection', (socket: Socket) => {
    clientSockets.add(socket);
    socket.on('close', () => clientSockets.delete(socket));
  });
  server.on('clientError', (_error, socket: Duplex) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  const openStreams = (match: FaultMatch | undefined): TrackedStream[] =>
    [...streams].filter((s) => matches(match, s.info.method, s.info.path));

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    fail(match, { status, body, message, reason, headers, times }) {
      const text =
        body === undefined
          ? JSON.stringify(kubernetesStatus(status, message, reason))
          : typeof body === 'string'
            ? body
            : JSON.stringify(body);
      return addRule({ kind: 'fail', match, remaining: times, status, body: text, headers });
    },
    hang(match, { times } = {}) {
      return addRule({ kind: 'hang', match, remaining: times });
    },
    delay(match, ms, { times } = {}) {
      return addRule({ kind: 'delay', match, remaining: times, delayMs: ms });
    },
    reset(match, { times } = {}) {
      return addRule({ kind: 'reset', match, remaining: times });
    },
    dropStreams(match) {
      const dropped = openStreams(match);
      for (const stream of dropped) {
        streams.delete(stream);
        stream.drop();
      }
      return dropped.length;
    },
    streams(match) {
      return openStreams(match).map((s) => ({ ...s.info }));
    },
    blackholeStreams(match) {
      const silenced = openStreams(match).filter((s) => s.blackhole);
      for (const stream of silenced) stream.blackhole?.();
      return silenced.length;
    },
    clear() {
      for (const rule of rules) rule.active = false;
      rules = [];
    },
    requests(match) {
      return log.filter((r) => matches(match, r.method, r.path)).map((r) => ({ ...r }));
    },
    resetLog() {
      log = [];
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const stream of streams) stream.drop();
      streams.clear();
      for (const socket of clientSockets) socket.destroy();
      for (const socket of upstreamSockets) socket.destroy();
      agent.destroy();
      await stopped;
    },
  };
}

function loadKubeConfig(source: string | KubeConfig): KubeConfig {
  if (typeof source !== 'string') return source;
  const kc = new KubeConfig();
  kc.loadFromFile(source);
  return kc;
}

function currentClusterAndUser(kc: KubeConfig): { cluster: Cluster; user: User | null } {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error(`kubeconfig: no cluster for the current context "${kc.getCurrentContext()}"`);
  return { cluster, user: kc.getCurrentUser() };
}

/**
 * Proxy options that reach the current cluster of a kubeconfig as its user would: server, CA,
 * skip-tls-verify, tls-server-name, and the user's client certificate and key if it has one.
 */
export function upstreamFromKubeConfig(source: string | KubeConfig): FaultProxyOptions {
  const { cluster, user } = currentClusterAndUser(loadKubeConfig(source));
  const pem = (data: string | undefined, file: string | undefined): Buffer | undefined =>
    data ? Buffer.from(data, 'base64') : file ? readFileSync(file) : undefined;
  return {
    upstream: cluster.server,
    ca: pem(cluster.caData, cluster.caFile),
    rejectUnauthorized: !cluster.skipTLSVerify,
    servername: cluster.tlsServerName,
    cert: pem(user?.certData, user?.certFile),
    key: pem(user?.keyData, user?.keyFile),
  };
}

/**
 * A copy of a kubeconfig (a file path or a KubeConfig) whose current cluster is the proxy: server
 * `proxy.url`, no CA, and `skipTLSVerify: true`, which client-node 1.4 requires for an http:// server
 * (it refuses one otherwise). The current user keeps its token, basic auth, exec and auth-provider
 * settings; its client certificate is left out (it cannot cross plain HTTP: give it to the proxy with
 * upstreamFromKubeConfig). Other clusters, users and contexts are copied unchanged. The source is not modified.
 */
export function kubeconfigThrough(proxy: Pick<FaultProxy, 'url'>, source: string | KubeConfig): KubeConfig {
  const original = loadKubeConfig(source);
  const { cluster, user } = currentClusterAndUser(original);
  const copy = new KubeConfig();
  copy.loadFromOptions({
    clusters: original.clusters.map((c): Cluster =>
      c.name === cluster.name ? { name: c.name, server: proxy.url, skipTLSVerify: true } : { ...c },
    ),
    users: original.users.map((u): User => {
      if (u.name !== user?.name) return { ...u };
      const { certData: _certData, certFile: _certFile, keyData: _keyData, keyFile: _keyFile, ...rest } = u;
      return rest;
    }),
    contexts: original.contexts.map((c) => ({ ...c })),
    currentContext: original.getCurrentContext(),
  });
  return copy;
}
