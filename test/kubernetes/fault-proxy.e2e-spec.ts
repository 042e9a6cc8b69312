/**
 * The fault-injecting Kubernetes API proxy (test/support/k8s/fault-proxy.ts), proven without a cluster,
 * against the stand-in apiserver of test/support/k8s/fault-proxy-upstream.ts (a JSON endpoint, a
 * watch-like stream and an echoing WebSocket upgrade). ./fault-proxy-client-node.e2e-spec.ts drives it
 * with @kubernetes/client-node.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { eventually } from '../support/eventually.js';
import { startFaultProxy, type FaultProxy } from '../support/k8s/fault-proxy.js';
import {
  closeOf,
  firstMessage,
  hasOpenssl,
  open,
  openWebSocket,
  podEvent,
  PODS,
  send,
  startUpstream,
  TOKEN,
  type Upstream,
} from '../support/k8s/fault-proxy-upstream.js';

const EXEC = `${PODS}/pod-a/exec?command=cat&stdin=true&stdout=true`;
const K8S_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'channel.k8s.io'];

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
});
