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
 *
 * Its types are in ./fault-proxy-types.ts, its HTTP helpers in ./fault-proxy-http.ts, the kubeconfig
 * helpers in ./fault-proxy-kubeconfig.ts; everything is exported from here.
 */
import { createServer, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { isIP, Socket, type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

import { forwardableHeaders, headerObject, isLongLived, kubernetesStatus, matches, rawResponse } from './fault-proxy-http.js';
import type { FaultKind, FaultMatch, FaultProxy, FaultProxyOptions, FaultRule, OpenStream, RequestRecord } from './fault-proxy-types.js';

export type * from './fault-proxy-types.js';
export { kubernetesStatus } from './fault-proxy-http.js';
export { kubeconfigThrough, upstreamFromKubeConfig } from './fault-proxy-kubeconfig.js';

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
