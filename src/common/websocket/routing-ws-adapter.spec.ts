import { createServer, IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { Test } from '@nestjs/testing';
import { OnGatewayConnection, OnGatewayDisconnect, WebSocketGateway } from '@nestjs/websockets';
import { WebSocket, WebSocketServer } from 'ws';
import { RawWebSocket } from '../../../test/support/raw-websocket.js';
import { WsCloseCode } from './close-codes.js';
import { compilePathPattern, RoutingWsAdapter, RoutingWsAdapterOptions } from './routing-ws-adapter.js';
import { wsRoute, WsRoute } from './ws-connection.js';

const NOT_FOUND =
  'HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"detail":"No WebSocket endpoint at this path","code":"not_found"}';

describe('compilePathPattern', () => {
  const terminal = compilePathPattern('/api/v1/ws/terminal/:id');

  it('matches one segment per parameter and returns it by name', () => {
    expect(terminal('/api/v1/ws/terminal/6b08d99f869a8bb6c4466f54')).toEqual({ id: '6b08d99f869a8bb6c4466f54' });
    expect(compilePathPattern('/a/:x/b/:y')('/a/1/b/2')).toEqual({ x: '1', y: '2' });
  });

  it('ignores a trailing slash on the path and on the pattern', () => {
    expect(terminal('/api/v1/ws/terminal/abc/')).toEqual({ id: 'abc' });
    expect(terminal('/api/v1/ws/terminal/abc//')).toEqual({ id: 'abc' });
    expect(compilePathPattern('/api/v1/ws/logs/:id/')('/api/v1/ws/logs/abc')).toEqual({ id: 'abc' });
  });

  it('refuses a missing, empty or extra segment, and other literal segments', () => {
    for (const path of [
      '/api/v1/ws/terminal',
      '/api/v1/ws/terminal/',
      '/api/v1/ws/terminal//x',
      '/api/v1/ws/terminal/a/b',
      '/api/v1/ws/logs/a',
      '/API/v1/ws/terminal/a',
    ]) {
      expect({ path, match: terminal(path) }).toEqual({ path, match: null });
    }
  });

  it('treats the literal segments literally', () => {
    expect(compilePathPattern('/a.b/:id')('/aXb/1')).toBeNull();
    expect(compilePathPattern('/a.b/:id')('/a.b/1')).toEqual({ id: '1' });
  });

  it('refuses malformed patterns', () => {
    expect(() => compilePathPattern('/a/:id/:id')).toThrow(/twice/);
    expect(() => compilePathPattern('/a/x:id')).toThrow(/Invalid/);
  });
});

/** An HTTP server with the adapter on it and two routes, as Nest would set them up. */
class Harness {
  readonly http: Server = createServer((_req, res) => res.end('http'));
  readonly adapter: RoutingWsAdapter;
  readonly terminal: WebSocketServer;
  readonly logs: WebSocketServer;
  readonly connections: { ws: WebSocket; route: WsRoute; server: 'terminal' | 'logs' }[] = [];
  private readonly sockets = new Set<WebSocket>();

  constructor(options: Pick<RoutingWsAdapterOptions, 'pingIntervalMs' | 'closeGraceMs' | 'admitUpgrade' | 'passThrough'> = {}) {
    this.adapter = new RoutingWsAdapter(this.http, { pingIntervalMs: 60_000, closeGraceMs: 200, ...options });
    this.terminal = this.adapter.create(0, { path: '/api/v1/ws/terminal/:id' });
    this.logs = this.adapter.create(0, { path: '/api/v1/ws/logs/:id' });
    for (const [server, name] of [
      [this.terminal, 'terminal'],
      [this.logs, 'logs'],
    ] as const) {
      this.adapter.bindClientConnect(server, (ws: WebSocket, request: IncomingMessage) => {
        this.connections.push({ ws, route: wsRoute(request), server: name });
        // An echo, to show a socket still works.
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
      });
    }
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.http.listen(0, '127.0.0.1', resolve));
    return this;
  }

  url(path: string): string {
    return `ws://127.0.0.1:${(this.http.address() as AddressInfo).port}${path}`;
  }

  /** Opens a client and waits for the server's side of it. */
  async open(path: string, options: { protocols?: string[]; autoPong?: boolean } = {}): Promise<{ client: WebSocket; server: WebSocket }> {
    const before = this.connections.length;
    const client = new WebSocket(this.url(path), options.protocols ?? [], { autoPong: options.autoPong ?? true });
    this.sockets.add(client);
    client.on('error', () => undefined);
    await new Promise((resolve, reject) => {
      client.once('open', resolve);
      client.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    await until(() => this.connections.length > before);
    return { client, server: this.connections[before].ws };
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.terminate();
    for (const socket of [...this.terminal.clients, ...this.logs.clients]) socket.terminate();
    await this.adapter.dispose();
    this.http.closeAllConnections();
    await new Promise((resolve) => this.http.close(resolve));
  }
}

/** Sends an upgrade request by hand and returns the whole answer (the server ends the connection). */
async function rawUpgrade(http: Server, path: string): Promise<string> {
  const socket = connect((http.address() as AddressInfo).port, '127.0.0.1');
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  let answer = '';
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
  await new Promise((resolve) => socket.once('close', resolve));
  return answer;
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

function nextMessage(ws: WebSocket): Promise<string> {
  return new Promise((resolve) => ws.once('message', (data: Buffer) => resolve(data.toString())));
}

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('RoutingWsAdapter', () => {
  let harness: Harness;

  afterEach(async () => {
    await harness?.close();
  });

  describe('routing', () => {
    beforeEach(async () => {
      harness = await new Harness().listen();
    });

    it('routes by pattern and gives the gateway the parameters and the URL', async () => {
      const { server } = await harness.open('/api/v1/ws/terminal/abc123?token=t0k&resume=42');
      const [connection] = harness.connections;
      expect(connection.ws).toBe(server);
      expect(connection.server).toBe('terminal');
      expect(connection.route.pattern).toBe('/api/v1/ws/terminal/:id');
      expect(connection.route.params).toEqual({ id: 'abc123' });
      expect(connection.route.url.searchParams.get('token')).toBe('t0k');
      expect(connection.route.url.searchParams.get('resume')).toBe('42');

      await harness.open('/api/v1/ws/logs/def456/?lines=5');
      expect(harness.connections[1].server).toBe('logs');
      expect(harness.connections[1].route.params).toEqual({ id: 'def456' });
      expect(harness.adapter.patterns).toEqual(['/api/v1/ws/terminal/:id', '/api/v1/ws/logs/:id']);
    });

    it('ignores the query string and a trailing slash', async () => {
      await harness.open('/api/v1/ws/terminal/abc/');
      await harness.open('/api/v1/ws/terminal/abc?x=/api/v1/ws/logs/z');
      await harness.open('/api/v1/ws/terminal/abc/?token=1');
      expect(harness.connections.map((c) => [c.server, c.route.params.id])).toEqual([
        ['terminal', 'abc'],
        ['terminal', 'abc'],
        ['terminal', 'abc'],
      ]);
    });

    it('answers an unknown path with HTTP 404 and the JSON body, without an upgrade', async () => {
      for (const path of ['/api/v1/ws/nothing-here', '/api/v1/ws/terminal', '/api/v1/ws/terminal/a/b', '/', '/api/v1/ws/logs/?token=x']) {
        expect({ path, answer: await rawUpgrade(harness.http, path) }).toEqual({ path, answer: NOT_FOUND });
      }
      expect(harness.connections).toEqual([]);
      // Plain HTTP is not the adapter's business.
      expect(await (await fetch(harness.url('/api/v1/ws/nothing').replace('ws:', 'http:'))).text()).toBe('http');
    });

    it('echoes one offered protocol, a bearer.<token> one only when it is the only offer', async () => {
      expect((await harness.open('/api/v1/ws/terminal/a', { protocols: ['bearer.secret', 'devpocket.v1'] })).client.protocol).toBe(
        'devpocket.v1',
      );
      expect((await harness.open('/api/v1/ws/terminal/a', { protocols: ['bearer.secret'] })).client.protocol).toBe('bearer.secret');
      expect((await harness.open('/api/v1/ws/terminal/a')).client.protocol).toBe('');
    });

    it('negotiates no compression', async () => {
      const { client } = await harness.open('/api/v1/ws/logs/a');
      expect(client.extensions).toBe('');
    });

    it('closes only the socket whose frame it refuses, with that frame’s code, and cuts it if it does not answer', async () => {
      const { client: bystander } = await harness.open('/api/v1/ws/terminal/a');
      const cases: [Buffer, number][] = [
        [RawWebSocket.announce(1024 * 1024 + 1), 1009],
        [RawWebSocket.text(Buffer.from([0xe2, 0x28, 0xa1])), 1007],
        [RawWebSocket.frame(0x3, Buffer.from('x')), 1002],
      ];
      for (const [frame, code] of cases) {
        // Sent with the upgrade request: the server reads it before anything else happens.
        const attacker = await RawWebSocket.open(harness.url('/api/v1/ws/terminal/b'), frame);
        // RawWebSocket never answers a close frame: the TCP connection ends because the server cuts it.
        expect(await attacker.ended).toBe(code);
        const echoed = nextMessage(bystander);
        bystander.send(`still here after ${code}`);
        expect(await echoed).toBe(`still here after ${code}`);
      }
      // A frame exactly at the limit is accepted.
      const { client } = await harness.open('/api/v1/ws/terminal/c');
      const echoed = nextMessage(client);
      client.send('x'.repeat(1024 * 1024));
      expect((await echoed).length).toBe(1024 * 1024);
    });
  });

  describe('admission and pass-through', () => {
    it('hands the upgrades a pass-through claims over after admission, and refuses them over the limit like any other', async () => {
      let admitted = 0;
      const handed: string[] = [];
      const h = await new Harness({
        admitUpgrade: () => {
          admitted += 1;
          return Promise.resolve(
            admitted > 2
              ? { status: 429, headers: { 'Retry-After': '7' }, body: { detail: 'Too many requests', code: 'rate_limited' } }
              : null,
          );
        },
        passThrough: {
          claims: (request) => request.url?.startsWith('/preview/') === true,
          upgrade: (request, socket) => {
            handed.push(request.url ?? '');
            socket.end('HTTP/1.1 418 Handed Over\r\nConnection: close\r\n\r\n');
          },
        },
      }).listen();
      try {
        expect(await rawUpgrade(h.http, '/preview/a/1/ws')).toMatch(/^HTTP\/1\.1 418 Handed Over/);
        expect(handed).toEqual(['/preview/a/1/ws']);
        // A gateway's path is not claimed: routed as before (and counted).
        await h.open('/api/v1/ws/logs/x');
        expect(await rawUpgrade(h.http, '/preview/a/1/ws')).toMatch(/^HTTP\/1\.1 429 Too Many Requests[\s\S]*Retry-After: 7/);
        expect(handed).toHaveLength(1);
        expect(admitted).toBe(3);
      } finally {
        await h.close();
      }
    });
  });

  describe('keep-alive', () => {
    beforeEach(async () => {
      harness = await new Harness({ pingIntervalMs: 40 }).listen();
    });

    it('pings, and closes a socket silent for two intervals with 4010', async () => {
      const { client } = await harness.open('/api/v1/ws/terminal/a', { autoPong: false });
      let pings = 0;
      client.on('ping', () => (pings += 1));
      expect(await closed(client)).toEqual({ code: WsCloseCode.Timeout, reason: 'no answer to ping' });
      expect(pings).toBeGreaterThanOrEqual(1);
    });

    it('keeps a socket that answers pings, or sends messages, open', async () => {
      const { client: ponging } = await harness.open('/api/v1/ws/terminal/a');
      const { client: talking } = await harness.open('/api/v1/ws/logs/b', { autoPong: false });
      let pings = 0;
      ponging.on('ping', () => (pings += 1));
      talking.on('ping', () => talking.send('alive'));
      await until(() => pings >= 5);
      expect([ponging.readyState, talking.readyState]).toEqual([WebSocket.OPEN, WebSocket.OPEN]);
    });
  });

  describe('shutdown', () => {
    beforeEach(async () => {
      harness = await new Harness().listen();
    });

    it('closes every socket of a server with 1001, cutting those that do not answer, then stops listening', async () => {
      const { client: polite } = await harness.open('/api/v1/ws/terminal/a');
      const silent = await RawWebSocket.open(harness.url('/api/v1/ws/terminal/b'));
      const { client: logs } = await harness.open('/api/v1/ws/logs/c');
      const politeClosed = closed(polite);
      await harness.adapter.close(harness.terminal);
      expect(await politeClosed).toEqual({ code: WsCloseCode.GoingAway, reason: 'server shutting down' });
      expect(await silent.ended).toBe(WsCloseCode.GoingAway);
      expect(harness.terminal.clients.size).toBe(0);
      // The other gateway's server is closed on its own call.
      expect(logs.readyState).toBe(WebSocket.OPEN);
      await harness.adapter.close(harness.logs);
      expect(harness.logs.clients.size).toBe(0);
      await harness.adapter.dispose();
      expect(harness.http.listenerCount('upgrade')).toBe(0);
    });
  });
});

@WebSocketGateway({ path: '/things/:thing' })
class ThingGateway implements OnGatewayConnection<WebSocket>, OnGatewayDisconnect<WebSocket> {
  readonly seen: { thing: string | undefined; token: string | null; messageListeners: number }[] = [];
  disconnects = 0;

  handleConnection(client: WebSocket, request: IncomingMessage): void {
    const { params, url } = wsRoute(request);
    // Nest binds its message handlers after this; with no @SubscribeMessage there must be none.
    setImmediate(() =>
      this.seen.push({ thing: params.thing, token: url.searchParams.get('token'), messageListeners: client.listenerCount('message') }),
    );
  }

  handleDisconnect(): void {
    this.disconnects += 1;
  }
}

describe('RoutingWsAdapter in a Nest application', () => {
  it('serves @WebSocketGateway({ path }) patterns, calls handleConnection with the request, and closes with 1001', async () => {
    const moduleRef = await Test.createTestingModule({ providers: [ThingGateway] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    app.useWebSocketAdapter(new RoutingWsAdapter(app));
    await app.listen(0, '127.0.0.1');
    const http = app.getHttpServer() as Server;
    let open = true;
    try {
      const port = (http.address() as AddressInfo).port;
      const client = new WebSocket(`ws://127.0.0.1:${port}/things/t1/?token=abc`);
      await new Promise((resolve) => client.once('open', resolve));
      const gateway = app.get(ThingGateway);
      await until(() => gateway.seen.length === 1);
      // One listener: the adapter's sign of life. Nest added no parser.
      expect(gateway.seen).toEqual([{ thing: 't1', token: 'abc', messageListeners: 1 }]);
      expect(await rawUpgrade(http, '/nothing')).toBe(NOT_FOUND);
      const clientClosed = closed(client);
      await app.close();
      open = false;
      expect(await clientClosed).toEqual({ code: WsCloseCode.GoingAway, reason: 'server shutting down' });
      expect(gateway.disconnects).toBe(1);
    } finally {
      if (open) await app.close();
    }
  });
});
