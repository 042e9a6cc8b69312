/**
 * The fault-injecting Kubernetes API proxy (test/support/k8s/fault-proxy.ts), proven without a cluster:
 * a local HTTPS upstream (self-signed certificate made with the openssl CLI) stands in for the
 * kube-apiserver with a JSON endpoint, a watch-like chunked stream (a line every 50 ms) and a
 * WebSocket upgrade that echoes (plain, or with the channel.k8s.io framing exec uses).
 * The last block drives it with @kubernetes/client-node 1.4 (KubeConfig/makeApiClient, Watch, Exec)
 * through kubeconfigThrough(), so the runtime provider's tests can rely on that path.
 */
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';

import {
  ApiException,
  CoreV1Api,
  Exec,
  KubeConfig,
  Observable,
  Watch,
  type ConfigurationOptions,
  type RequestContext,
  type ResponseContext,
  type V1Pod,
  type V1Status,
} from '@kubernetes/client-node';
import { WebSocket, WebSocketServer, type RawData } from 'ws';

import { eventually } from '../support/eventually.js';
import { kubeconfigThrough, startFaultProxy, upstreamFromKubeConfig, type FaultProxy } from '../support/k8s/fault-proxy.js';

const TOKEN = 'sekret-token';
const PODS = '/api/v1/namespaces/default/pods';
const EXEC = `${PODS}/pod-a/exec?command=cat&stdin=true&stdout=true`;
const K8S_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'channel.k8s.io'];

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

// ---- the stand-in apiserver ----

interface UpstreamHit {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  upgrade: boolean;
}

interface Upstream {
  url: string;
  port: number;
  ca: Buffer;
  hits: UpstreamHit[];
  /** Watch-like streams currently open on the upstream side. */
  openStreams: number;
  /** WebSockets currently open on the upstream side. */
  openSockets: number;
  close(): Promise<void>;
}

/** A self-signed certificate for 127.0.0.1 (it is its own CA). */
function selfSignedCertificate(dir: string): { cert: Buffer; key: Buffer } {
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  const result = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '1',
      '-subj',
      '/CN=fault-proxy-upstream',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { encoding: 'utf8' },
  );
  if (result.status !== 0) throw new Error(`openssl failed: ${result.stderr}`);
  return { cert: readFileSync(certPath), key: readFileSync(keyPath) };
}

function podEvent(n: number): string {
  const object = { kind: 'Pod', apiVersion: 'v1', metadata: { name: `pod-${n}`, namespace: 'default', resourceVersion: String(n) } };
  return `${JSON.stringify({ type: 'ADDED', object })}\n`;
}

async function startUpstream(dir: string): Promise<Upstream> {
  const { cert, key } = selfSignedCertificate(dir);
  const upstream: Upstream = { url: '', port: 0, ca: cert, hits: [], openStreams: 0, openSockets: 0, close: async () => undefined };
  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  };

  const server = createHttpsServer({ cert, key }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://upstream');
    upstream.hits.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, upgrade: false });
    if (req.method === 'GET' && url.pathname === '/things') {
      json(
        res,
        200,
        { method: req.method, url: req.url, host: req.headers.host, authorization: req.headers.authorization },
        { 'x-upstream': 'yes' },
      );
    } else if (req.method === 'POST' && url.pathname === '/echo') {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        res.writeHead(201, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' });
        res.end(Buffer.concat(chunks));
      });
    } else if (req.method === 'GET' && url.pathname === PODS && url.searchParams.get('watch') === 'true') {
      // Like a watch: headers now, then one JSON line every 50 ms; `lines` ends it, else it runs until closed.
      const lines = url.searchParams.has('lines') ? Number(url.searchParams.get('lines')) : Infinity;
      upstream.openStreams += 1;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      let n = 0;
      const timer = setInterval(() => {
        n += 1;
        res.write(podEvent(n));
        if (n >= lines) {
          clearInterval(timer);
          res.end();
        }
      }, 50);
      res.on('close', () => {
        clearInterval(timer);
        upstream.openStreams -= 1;
      });
    } else if (req.method === 'GET' && url.pathname === PODS) {
      json(res, 200, {
        kind: 'PodList',
        apiVersion: 'v1',
        metadata: { resourceVersion: '7' },
        items: [{ metadata: { name: 'pod-a', namespace: 'default' } }],
      });
    } else {
      json(res, 404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'not found', reason: 'NotFound', code: 404 });
    }
  });

  // Echo: with a channel.k8s.io protocol, stdin (channel 0) comes back on stdout (1) and closing stdin
  // (v5: 255,0) is answered with a Success status (3); with any other protocol, frames come back as sent.
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => protocols.values().next().value ?? false });
  wss.on('connection', (ws) => {
    upstream.openSockets += 1;
    ws.on('close', () => (upstream.openSockets -= 1));
    ws.on('message', (raw: RawData, isBinary) => {
      const data = raw as Buffer;
      if (!ws.protocol.endsWith('channel.k8s.io') || !isBinary) {
        ws.send(data, { binary: isBinary });
      } else if (data[0] === 0) {
        ws.send(Buffer.concat([Buffer.from([1]), data.subarray(1)]));
      } else if (data[0] === 255) {
        ws.send(Buffer.concat([Buffer.from([3]), Buffer.from(JSON.stringify({ metadata: {}, status: 'Success' }))]));
        ws.close(1000);
      }
    });
  });
  server.on('upgrade', (req: IncomingMessage, socket, head: Buffer) => {
    upstream.hits.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, upgrade: true });
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  upstream.port = (server.address() as AddressInfo).port;
  upstream.url = `https://127.0.0.1:${upstream.port}`;
  upstream.close = async () => {
    for (const ws of wss.clients) ws.terminate();
    wss.close();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  };
  return upstream;
}

// ---- plain clients (agent: false: one connection per request) ----

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function send(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    if (options.timeoutMs !== undefined) req.setTimeout(options.timeoutMs, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Opens a GET and resolves with the response as soon as its headers arrive. */
function open(url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false }, (res) => {
      res.on('error', () => undefined); // a dropped stream errors ("aborted"); tests look at `complete`
      resolve(res);
    });
    req.on('error', reject);
    req.end();
  });
}

function openWebSocket(proxy: FaultProxy, path: string, protocols: string[]): WebSocket {
  return new WebSocket(`${proxy.url.replace(/^http/, 'ws')}${path}`, protocols, { headers: { authorization: `Bearer ${TOKEN}` } });
}

/** Resolves on 'close' (events.once would reject on the 'error' a cut-off response emits first). */
function closeOf(res: IncomingMessage): Promise<void> {
  return new Promise((resolve) => res.once('close', () => resolve()));
}

async function firstMessage(ws: WebSocket): Promise<Buffer> {
  const [data] = (await once(ws, 'message')) as [Buffer];
  return data;
}

const KUBE_503 = {
  kind: 'Status',
  apiVersion: 'v1',
  status: 'Failure',
  message: 'injected fault',
  reason: 'ServiceUnavailable',
  code: 503,
};

describe.skipIf(!hasOpenssl)('fault proxy', () => {
  let dir: string;
  let upstream: Upstream;
  let proxy: FaultProxy;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fault-proxy-'));
    upstream = await startUpstream(dir);
    proxy = await startFaultProxy({ upstream: upstream.url, ca: upstream.ca });
  });

  afterAll(async () => {
    await proxy?.close();
    await upstream?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    proxy.clear();
    proxy.dropStreams();
    proxy.resetLog();
    upstream.hits = [];
  });

  it('listens on plain http on 127.0.0.1', () => {
    expect(proxy.url).toBe(`http://127.0.0.1:${proxy.port}`);
    expect(proxy.port).toBeGreaterThan(0);
  });

  it('passes status, headers and body through, with the bearer token and the upstream Host', async () => {
    const reply = await send(`${proxy.url}/things?labelSelector=a%3Db`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(reply.status).toBe(200);
    expect(reply.headers['x-upstream']).toBe('yes');
    expect(reply.headers['content-type']).toBe('application/json');
    expect(JSON.parse(reply.body)).toEqual({
      method: 'GET',
      url: '/things?labelSelector=a%3Db',
      host: `127.0.0.1:${upstream.port}`,
      authorization: `Bearer ${TOKEN}`,
    });

    const posted = await send(`${proxy.url}/echo`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'a body' });
    expect(posted).toMatchObject({ status: 201, body: 'a body' });
    expect(posted.headers['content-type']).toBe('text/plain');

    const missing = await send(`${proxy.url}/nowhere`);
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body)).toMatchObject({ kind: 'Status', reason: 'NotFound' });
  });

  it('streams: the first chunk of a watch arrives long before the stream ends', async () => {
    const res = await open(`${proxy.url}${PODS}?watch=true&lines=10`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['transfer-encoding']).toBe('chunked');
    const chunks: { at: number; text: string }[] = [];
    res.setEncoding('utf8');
    res.on('data', (text: string) => chunks.push({ at: Date.now(), text }));
    await once(res, 'end');
    const endedAt = Date.now();

    expect(res.complete).toBe(true);
    expect(chunks.length).toBeGreaterThan(1);
    // Ten lines 50 ms apart: the first must not have waited for the other nine.
    expect(endedAt - chunks[0].at).toBeGreaterThanOrEqual(200);
    const lines = chunks
      .map((c) => c.text)
      .join('')
      .split('\n')
      .filter(Boolean);
    expect(lines).toEqual(Array.from({ length: 10 }, (_, i) => podEvent(i + 1).trimEnd()));
  });

  it('fail() with times: 2 answers a Kubernetes Status twice without the upstream, then passes through', async () => {
    const rule = proxy.fail({ method: 'GET', path: /^\/things\b/ }, { status: 503, times: 2 });
    const first = await send(`${proxy.url}/things`);
    const second = await send(`${proxy.url}/things`);
    const third = await send(`${proxy.url}/things`);

    for (const reply of [first, second]) {
      expect(reply.status).toBe(503);
      expect(reply.headers['content-type']).toBe('application/json');
      expect(JSON.parse(reply.body)).toEqual(KUBE_503);
    }
    expect(third.status).toBe(200);
    expect(rule.hits).toBe(2);
    expect(rule.active).toBe(false);
    expect(upstream.hits.filter((h) => h.url.startsWith('/things'))).toHaveLength(1);
    expect(proxy.requests({ path: /^\/things/ }).map((r) => [r.status, r.fault])).toEqual([
      [503, 'fail'],
      [503, 'fail'],
      [200, null],
    ]);
  });

  it('fail() takes a custom body and headers, and only matches its method; the newest rule wins', async () => {
    proxy.fail({ method: 'POST' }, { status: 500 });
    proxy.fail({ method: 'POST', path: /^\/echo/ }, { status: 429, body: 'slow down', headers: { 'retry-after': '2' } });
    const limited = await send(`${proxy.url}/echo`, { method: 'POST', body: 'x' });
    expect(limited).toMatchObject({ status: 429, body: 'slow down' });
    expect(limited.headers['retry-after']).toBe('2');
    expect((await send(`${proxy.url}/other`, { method: 'POST', body: 'x' })).status).toBe(500);
    expect((await send(`${proxy.url}/things`)).status).toBe(200);
  });

  it('hang() never answers, so a client with a 300 ms timeout gives up', async () => {
    const rule = proxy.hang({ path: /^\/things/ });
    const started = Date.now();
    await expect(send(`${proxy.url}/things`, { timeoutMs: 300 })).rejects.toThrow('client timeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    expect(upstream.hits).toHaveLength(0);
    expect(proxy.requests()).toMatchObject([{ method: 'GET', path: '/things', status: null, fault: 'hang' }]);

    rule.remove();
    expect((await send(`${proxy.url}/things`, { timeoutMs: 5000 })).status).toBe(200);
  });

  it('delay() forwards late; reset() drops the connection; both can be limited with times', async () => {
    proxy.delay({ path: /^\/things/ }, 250, { times: 1 });
    const started = Date.now();
    expect((await send(`${proxy.url}/things`)).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(240);

    proxy.reset({ path: /^\/things/ }, { times: 1 });
    await expect(send(`${proxy.url}/things`)).rejects.toThrow(/socket hang up|ECONNRESET/);
    expect((await send(`${proxy.url}/things`)).status).toBe(200);
    expect(proxy.requests().map((r) => r.fault)).toEqual(['delay', 'reset', null]);
  });

  it('tunnels WebSocket upgrades with their subprotocol, token and Host', async () => {
    const ws = openWebSocket(proxy, EXEC, K8S_PROTOCOLS);
    await once(ws, 'open');
    expect(ws.protocol).toBe('v5.channel.k8s.io');
    ws.send(Buffer.from([0, ...Buffer.from('hi')]));
    expect((await firstMessage(ws)).toString('latin1')).toBe('\u0001hi');
    ws.close();
    await once(ws, 'close');

    const hit = upstream.hits.find((h) => h.upgrade)!;
    expect(hit).toMatchObject({ method: 'GET', url: EXEC });
    expect(hit.headers.host).toBe(`127.0.0.1:${upstream.port}`);
    expect(hit.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(proxy.requests()).toMatchObject([{ method: 'GET', path: EXEC, status: 101, upgrade: true, fault: null }]);
  });

  it('fail() applies to upgrades too', async () => {
    proxy.fail({ path: /\/exec\?/ }, { status: 403, times: 1 });
    const ws = openWebSocket(proxy, EXEC, K8S_PROTOCOLS);
    const [error] = (await once(ws, 'error')) as [Error];
    expect(error.message).toMatch(/Unexpected server response: 403/);
    expect(upstream.hits).toHaveLength(0);
  });

  it('dropStreams() ends an open watch and an open WebSocket, on both sides, selectively by match', async () => {
    const watch = await open(`${proxy.url}${PODS}?watch=true`);
    await once(watch, 'data');
    const ws = openWebSocket(proxy, '/echo-socket', ['echo']);
    await once(ws, 'open');
    ws.send('ping');
    expect((await firstMessage(ws)).toString()).toBe('ping');
    expect(
      proxy
        .streams()
        .map((s) => [s.kind, s.path])
        .sort(),
    ).toEqual([
      ['upgrade', '/echo-socket'],
      ['watch', `${PODS}?watch=true`],
    ]);
    expect(upstream.openSockets).toBe(1);
    expect(upstream.openStreams).toBe(1);

    // Only the WebSocket.
    const wsClosed = once(ws, 'close');
    expect(proxy.dropStreams({ path: /echo-socket/ })).toBe(1);
    const [code] = (await wsClosed) as [number];
    expect(code).toBe(1006); // abnormal closure: no close frame, the connection just went
    await eventually(() => expect(upstream.openSockets).toBe(0));
    expect(watch.destroyed).toBe(false);
    expect(proxy.streams()).toMatchObject([{ kind: 'watch' }]);

    // Then the watch.
    const watchClosed = closeOf(watch);
    expect(proxy.dropStreams()).toBe(1);
    await watchClosed;
    expect(watch.complete).toBe(false); // cut off, not a clean end of the chunked body
    await eventually(() => expect(upstream.openStreams).toBe(0));
    expect(proxy.streams()).toEqual([]);
    expect(proxy.dropStreams()).toBe(0);
  });

  it('requests() lists and counts what was sent, by method and path; resetLog() empties it', async () => {
    const before = Date.now();
    await send(`${proxy.url}/things?x=1`);
    await send(`${proxy.url}/things?x=2`);
    await send(`${proxy.url}/echo`, { method: 'POST', body: '{}' });
    await send(`${proxy.url}/nowhere`);

    const all = proxy.requests();
    expect(all.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
      'GET /things?x=1 200',
      'GET /things?x=2 200',
      'POST /echo 201',
      'GET /nowhere 404',
    ]);
    for (const record of all) expect(record.at).toBeGreaterThanOrEqual(before);
    expect(proxy.requests({ method: 'get' })).toHaveLength(3);
    expect(proxy.requests({ path: /^\/things\?/g })).toHaveLength(2);
    expect(proxy.requests({ path: /^\/things\?/g })).toHaveLength(2); // a global regex is not stateful here
    expect(proxy.requests({ method: 'POST', path: /^\/echo$/ })).toHaveLength(1);

    proxy.resetLog();
    expect(proxy.requests()).toEqual([]);
  });

  it('answers 502 when the upstream cannot be reached', async () => {
    const unreachable = await startFaultProxy({ upstream: 'https://127.0.0.1:1', ca: upstream.ca });
    try {
      const reply = await send(`${unreachable.url}/things`);
      expect(reply.status).toBe(502);
      expect(JSON.parse(reply.body)).toMatchObject({ kind: 'Status', code: 502 });
      expect(unreachable.requests()).toMatchObject([{ status: 502 }]);
    } finally {
      await unreachable.close();
    }
  });

  it('close() destroys hung requests and open streams', async () => {
    const doomed = await startFaultProxy({ upstream: upstream.url, ca: upstream.ca });
    doomed.hang({ path: /^\/things/ });
    const hung = send(`${doomed.url}/things`);
    const watch = await open(`${doomed.url}${PODS}?watch=true`);
    await eventually(() => expect(doomed.requests()).toHaveLength(2));
    const watchClosed = closeOf(watch);
    await doomed.close();
    await expect(hung).rejects.toThrow(/socket hang up|ECONNRESET/);
    await watchClosed;
    expect(watch.complete).toBe(false);
    await doomed.close(); // idempotent
  });

  describe('with @kubernetes/client-node over http://', () => {
    let source: KubeConfig;
    let kc: KubeConfig;
    let viaKubeconfig: FaultProxy;

    beforeAll(async () => {
      source = new KubeConfig();
      source.loadFromOptions({
        clusters: [{ name: 'up', server: upstream.url, caData: upstream.ca.toString('base64'), skipTLSVerify: false }],
        users: [{ name: 'me', token: TOKEN }],
        contexts: [{ name: 'ctx', cluster: 'up', user: 'me', namespace: 'default' }],
        currentContext: 'ctx',
      });
      viaKubeconfig = await startFaultProxy(upstreamFromKubeConfig(source));
      kc = kubeconfigThrough(viaKubeconfig, source);
    });

    afterAll(async () => {
      await viaKubeconfig?.close();
    });

    beforeEach(() => {
      viaKubeconfig.clear();
      viaKubeconfig.dropStreams();
      viaKubeconfig.resetLog();
    });

    /** Per-call options that abort a request after `ms` (client-node has no timeout setting of its own). */
    function timeout(ms: number): ConfigurationOptions {
      return {
        middleware: [
          {
            pre: (context: RequestContext) => {
              context.setSignal(AbortSignal.timeout(ms));
              return new Observable(Promise.resolve(context));
            },
            post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
          },
        ],
        middlewareMergeStrategy: 'append',
      };
    }

    it('kubeconfigThrough() points the current cluster at the proxy and keeps the token; the source is untouched', () => {
      expect(kc.getCurrentCluster()).toEqual({ name: 'up', server: viaKubeconfig.url, skipTLSVerify: true });
      expect(kc.getCurrentUser()).toEqual({ name: 'me', token: TOKEN });
      expect(kc.getCurrentContext()).toBe('ctx');
      expect(kc.getContextObject('ctx')?.namespace).toBe('default');
      expect(source.getCurrentCluster()?.server).toBe(upstream.url);

      const file = join(dir, 'kubeconfig.json');
      writeFileSync(file, source.exportConfig());
      expect(kubeconfigThrough(viaKubeconfig, file).getCurrentCluster()?.server).toBe(viaKubeconfig.url);
      expect(upstreamFromKubeConfig(file)).toMatchObject({ upstream: upstream.url, rejectUnauthorized: true });
    });

    it('client-node refuses an http:// server unless skipTLSVerify is set (which kubeconfigThrough does)', async () => {
      const strict = new KubeConfig();
      strict.loadFromOptions({
        clusters: [{ name: 'p', server: viaKubeconfig.url, skipTLSVerify: false }],
        users: [{ name: 'me', token: TOKEN }],
        contexts: [{ name: 'c', cluster: 'p', user: 'me' }],
        currentContext: 'c',
      });
      await expect(strict.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: 'default' })).rejects.toThrow(
        'HTTP protocol is not allowed when skipTLSVerify is not set or false',
      );
      expect(viaKubeconfig.requests()).toEqual([]);
    });

    it('makeApiClient: calls pass through, injected 503s surface as ApiException, a hang needs a client-side timeout', async () => {
      const core = kc.makeApiClient(CoreV1Api);
      const list = await core.listNamespacedPod({ namespace: 'default' });
      expect(list.items.map((p) => p.metadata?.name)).toEqual(['pod-a']);
      expect(viaKubeconfig.requests()).toMatchObject([{ method: 'GET', path: PODS, status: 200 }]);

      viaKubeconfig.fail({ path: /\/pods$/ }, { status: 503, times: 1 });
      const failure = await core.listNamespacedPod({ namespace: 'default' }).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(ApiException);
      expect((failure as ApiException<unknown>).code).toBe(503);
      expect((failure as ApiException<unknown>).body).toContain('"reason":"ServiceUnavailable"');

      viaKubeconfig.hang({ path: /\/pods$/ }, { times: 1 });
      const started = Date.now();
      await expect(core.listNamespacedPod({ namespace: 'default' }, timeout(300))).rejects.toThrow(/abort/i);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(viaKubeconfig.requests({ path: /\/pods$/ }).map((r) => r.status)).toEqual([200, 503, null]);
    });

    it('Watch: events stream through; a dropped watch calls done with an error', async () => {
      const names: string[] = [];
      let resolveDone: (error: unknown) => void = () => undefined;
      const done = new Promise<unknown>((resolve) => (resolveDone = resolve));
      await new Watch(kc).watch(
        PODS,
        {},
        (type: string, pod: V1Pod) => names.push(`${type} ${pod.metadata?.name}`),
        (error: unknown) => resolveDone(error),
      );
      await eventually(() => expect(names.length).toBeGreaterThanOrEqual(2));
      expect(names.slice(0, 2)).toEqual(['ADDED pod-1', 'ADDED pod-2']);
      expect(viaKubeconfig.streams()).toMatchObject([{ kind: 'watch', path: `${PODS}?watch=true` }]);
      expect(upstream.hits.at(-1)?.headers.authorization).toBe(`Bearer ${TOKEN}`);

      expect(viaKubeconfig.dropStreams({ path: /watch=true/ })).toBe(1);
      const error = await done;
      expect(error).toBeInstanceOf(Error);
      // client-node 2 reads watches with undici's fetch, which reports a cut body as "terminated"
      // (client-node 1's node-fetch said "Premature close").
      expect(String(error)).toMatch(/terminated|premature close/i);
      await eventually(() => expect(upstream.openStreams).toBe(0));
    });

    it('Exec: stdin/stdout and the status go through the WebSocket; a dropped exec closes it', async () => {
      const exec = new Exec(kc);
      const stdin = new PassThrough();
      const stdout = new PassThrough();
      let output = '';
      stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      let status: V1Status | null = null;
      const conn = await exec.exec('default', 'pod-a', 'main', ['cat'], stdout, null, stdin, false, (s) => (status = s));
      expect(conn.protocol).toBe('v5.channel.k8s.io');
      stdin.write('hello\n');
      await eventually(() => expect(output).toBe('hello\n'));
      stdin.end();
      await eventually(() => expect(status).toMatchObject({ status: 'Success' }));
      expect(viaKubeconfig.requests({ path: /\/exec\?/ })).toMatchObject([{ status: 101, upgrade: true }]);

      const second = await exec.exec('default', 'pod-a', 'main', ['cat'], new PassThrough(), null, new PassThrough(), false);
      const closed = new Promise<number>((resolve) => second.on('close', (code: number) => resolve(code)));
      await eventually(() => expect(viaKubeconfig.streams({ path: /\/exec\?/ })).toHaveLength(1));
      expect(viaKubeconfig.dropStreams({ path: /\/exec\?/ })).toBe(1);
      expect(await closed).toBe(1006);
    });
  });
});
