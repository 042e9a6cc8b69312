/**
 * A stand-in kube-apiserver for the fault proxy's own suites (test/kubernetes/fault-proxy*.e2e-spec.ts):
 * a local HTTPS server (self-signed certificate made with the openssl CLI) with a JSON endpoint, a
 * watch-like chunked stream (a line every 50 ms) and a WebSocket upgrade that echoes (plain, or with
 * the channel.k8s.io framing exec uses); and plain clients that go through the proxy.
 */
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { WebSocket, WebSocketServer, type RawData } from 'ws';

import type { FaultProxy } from './fault-proxy.js';

/** The bearer token the clients send. */
export const TOKEN = 'sekret-token';
/** The stand-in's pod collection (a list, or a watch with `watch=true`). */
export const PODS = '/api/v1/namespaces/default/pods';

export const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

export interface UpstreamHit {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  upgrade: boolean;
}

export interface Upstream {
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
export function selfSignedCertificate(dir: string): { cert: Buffer; key: Buffer } {
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

export function podEvent(n: number): string {
  const object = { kind: 'Pod', apiVersion: 'v1', metadata: { name: `pod-${n}`, namespace: 'default', resourceVersion: String(n) } };
  return `${JSON.stringify({ type: 'ADDED', object })}\n`;
}

export async function startUpstream(dir: string): Promise<Upstream> {
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

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export function send(
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
export function open(url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false }, (res) => {
      res.on('error', () => undefined); // a dropped stream errors ("aborted"); tests look at `complete`
      resolve(res);
    });
    req.on('error', reject);
    req.end();
  });
}

export function openWebSocket(proxy: FaultProxy, path: string, protocols: string[]): WebSocket {
  return new WebSocket(`${proxy.url.replace(/^http/, 'ws')}${path}`, protocols, { headers: { authorization: `Bearer ${TOKEN}` } });
}

/** Resolves on 'close' (events.once would reject on the 'error' a cut-off response emits first). */
export function closeOf(res: IncomingMessage): Promise<void> {
  return new Promise((resolve) => res.once('close', () => resolve()));
}

export async function firstMessage(ws: WebSocket): Promise<Buffer> {
  const [data] = (await once(ws, 'message')) as [Buffer];
  return data;
}
