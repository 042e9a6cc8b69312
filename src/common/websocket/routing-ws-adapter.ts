import { type IncomingMessage, type Server as HttpServer, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { INestApplicationContext, Logger } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { MessageMappingProperties } from '@nestjs/websockets';
import { Observable } from 'rxjs';
import { WebSocket, WebSocketServer } from 'ws';
import { WsCloseCode } from './close-codes.js';
import { recordWsRoute, WsRoute } from './ws-connection.js';

/** Incoming frames above this size close the connection with 1009 (gateways enforce their own, smaller limits). */
export const MAX_PAYLOAD_BYTES = 1024 * 1024;
export const PING_INTERVAL_MS = 25_000;
/** How long a socket we closed may take to answer our close frame before it is cut. */
export const CLOSE_GRACE_MS = 5_000;

const NOT_FOUND_RESPONSE =
  'HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"detail":"No WebSocket endpoint at this path","code":"not_found"}';

/** An upgrade refused before it happens: the HTTP answer the client gets instead of a WebSocket. */
export interface UpgradeRefusal {
  status: number;
  headers: Record<string, string>;
  /** The API's error body (`detail`, `code`). */
  body: { detail: string; code: string };
}

export interface RoutingWsAdapterOptions {
  /** Ping period; a socket silent for two periods is closed with 4010. Default 25 s. */
  pingIntervalMs?: number;
  /** Cut a socket this long after the server sent it a close frame (timeout, refused frame, shutdown). Default 5 s. */
  closeGraceMs?: number;
  /**
   * Asked about every upgrade to a served path before it happens (the rate limit per client IP,
   * `UpgradeRateLimit`): null lets it through, a refusal is sent as the HTTP answer. Default: none.
   */
  admitUpgrade?: (request: IncomingMessage) => Promise<UpgradeRefusal | null>;
  /**
   * Upgrades served by something other than a gateway (the web previews' proxy): asked first about
   * every upgrade; one it `claims` is admitted like any other, then handed to its `upgrade`.
   */
  passThrough?: {
    claims(request: IncomingMessage): boolean;
    upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  };
}

/** What a gateway's `@WebSocketGateway({ path })` passes to `create()`. */
interface GatewayServerOptions {
  path?: string;
  namespace?: unknown;
  server?: unknown;
}

interface Route {
  pattern: string;
  match: (path: string) => Record<string, string> | null;
  server: WebSocketServer;
}

/**
 * Compiles a gateway path like `/api/v1/ws/terminal/:id` into a matcher: `:name` matches one
 * non-empty segment and becomes a parameter; every other segment matches itself. A trailing slash
 * in the pattern or the path does not matter.
 */
export function compilePathPattern(pattern: string): (path: string) => Record<string, string> | null {
  const segments = trimSlashes(pattern).split('/');
  const names: string[] = [];
  const source = segments
    .map((segment) => {
      const param = /^:([A-Za-z_][A-Za-z0-9_]*)$/.exec(segment);
      if (!param) {
        if (segment.includes(':')) throw new Error(`Invalid WebSocket path pattern ${pattern}: "${segment}"`);
        return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      }
      if (names.includes(param[1])) throw new Error(`Invalid WebSocket path pattern ${pattern}: ":${param[1]}" twice`);
      names.push(param[1]);
      return '([^/]+)';
    })
    .join('/');
  const regex = new RegExp(`^${source}$`);
  return (path) => {
    const found = regex.exec(trimSlashes(path));
    if (!found) return null;
    return Object.fromEntries(names.map((name, i) => [name, found[i + 1]]));
  };
}

function trimSlashes(path: string): string {
  return path.replace(/\/+$/, '') || '/';
}

/**
 * The application's WebSocket adapter (`app.useWebSocketAdapter`, in `configureApp`): the
 * platform-ws `WsAdapter`, with what the stock one lacks for this API.
 *
 * - **Routes by path pattern.** Each gateway's `@WebSocketGateway({ path })` is a pattern with
 *   `:params` (`/api/v1/ws/terminal/:id`), served on the application's HTTP server. The stock
 *   adapter compares paths for equality, and destroys the TCP connection of an upgrade it does not
 *   route. Here the query string and a trailing slash are ignored, the parameters reach the
 *   gateway through `wsRoute(request)`, and an unknown path gets HTTP 404 with the API's JSON body,
 *   without an upgrade.
 * - **One transport for every gateway**: frames of at most 1 MiB, no compression, and the
 *   subprotocol choice that keeps a `bearer.<token>` protocol out of the response when it can.
 * - **Refused frames close only their socket.** An 'error' listener is attached to each socket
 *   before the gateway sees it; `ws` has already started closing it (1009, 1007, 1002), and the
 *   socket is cut if the client does not answer.
 * - **Admission** (`admitUpgrade`, optional): each upgrade to a served path is counted against the
 *   client's rate limit first, and refused with a plain HTTP answer (429 and `Retry-After`).
 * - **Pass-through** (`passThrough`, optional): upgrades it claims (web previews) are admitted the
 *   same way, then handed over as they are (no WebSocket server of ours takes them).
 * - **Keep-alive**: a ping every 25 s; a socket with neither pong nor message since the previous
 *   ping is closed with 4010.
 * - **Graceful shutdown**: when Nest closes the gateways' servers (after the
 *   `beforeApplicationShutdown` hooks, before `onApplicationShutdown`), every socket is closed with
 *   1001, and cut if it has not answered within 5 s.
 *
 * Messages are not dispatched by Nest's `event` field: gateways without `@SubscribeMessage`
 * handlers get no parsing listener at all (see docs/architecture.md, "WebSocket path").
 */
export class RoutingWsAdapter extends WsAdapter {
  protected override readonly logger = new Logger('WebSocket');
  private readonly routes: Route[] = [];
  private readonly alive = new WeakMap<WebSocket, boolean>();
  private readonly pingIntervalMs: number;
  private readonly closeGraceMs: number;
  private readonly admitUpgrade: RoutingWsAdapterOptions['admitUpgrade'];
  private readonly passThrough: RoutingWsAdapterOptions['passThrough'];
  private readonly pingTimer: NodeJS.Timeout;
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => this.upgrade(req, socket, head);

  constructor(appOrHttpServer: INestApplicationContext | HttpServer, options: RoutingWsAdapterOptions = {}) {
    super(appOrHttpServer);
    this.pingIntervalMs = options.pingIntervalMs ?? PING_INTERVAL_MS;
    this.closeGraceMs = options.closeGraceMs ?? CLOSE_GRACE_MS;
    this.admitUpgrade = options.admitUpgrade;
    this.passThrough = options.passThrough;
    // From the start, not from the first gateway: an upgrade to a path no gateway serves is a 404
    // even in an application without gateways.
    (this.httpServer as HttpServer).on('upgrade', this.onUpgrade);
    this.pingTimer = setInterval(() => this.pingAll(), this.pingIntervalMs);
    this.pingTimer.unref();
  }

  /** The patterns served, in the order gateways registered them (the first match wins). */
  get patterns(): string[] {
    return this.routes.map((route) => route.pattern);
  }

  override create(port: number, options: GatewayServerOptions = {}): WebSocketServer {
    const { path, namespace, server } = options;
    if (port !== 0 || server !== undefined || namespace !== undefined || !path) {
      throw new Error('RoutingWsAdapter serves gateways on the application port, each with its own path: @WebSocketGateway({ path })');
    }
    const wsServer = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_PAYLOAD_BYTES,
      perMessageDeflate: false,
      // A browser that authenticates with the subprotocol `bearer.<token>` needs one protocol echoed:
      // prefer any other protocol it offered, else that one.
      handleProtocols: (protocols) => [...protocols].find((p) => !p.startsWith('bearer.')) ?? [...protocols][0] ?? false,
    });
    wsServer.on('error', (error) => this.logger.error(`WebSocket server for ${path}: ${error.message}`));
    this.routes.push({ pattern: path, match: compilePathPattern(path), server: wsServer });
    return wsServer;
  }

  /** Gateways here read frames themselves; only `@SubscribeMessage` handlers, if a gateway has any, get Nest's dispatch. */
  override bindMessageHandlers(
    client: WebSocket,
    handlers: MessageMappingProperties[],
    transform: (data: unknown) => Observable<unknown>,
  ): void {
    if (handlers.length > 0) super.bindMessageHandlers(client, handlers, transform);
  }

  /** Called by Nest for each gateway server on shutdown: 1001 to every socket, then the server closes. */
  override async close(server: WebSocketServer): Promise<void> {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const ws of server.clients) ws.close(WsCloseCode.GoingAway, 'server shutting down');
    const cut = setTimeout(() => {
      for (const ws of server.clients) ws.terminate();
    }, this.closeGraceMs);
    cut.unref();
    await closed;
    clearTimeout(cut);
  }

  override async dispose(): Promise<void> {
    clearInterval(this.pingTimer);
    (this.httpServer as HttpServer).off('upgrade', this.onUpgrade);
    this.routes.length = 0;
    await super.dispose();
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const passThrough = this.passThrough;
    if (passThrough?.claims(req)) return this.admitThen(req, socket, 'a pass-through path', () => passThrough.upgrade(req, socket, head));
    const found = this.route(req.url);
    if (!found) {
      // Node has taken its own 'error' listener off an upgraded socket: a reset must not end the process.
      socket.on('error', () => socket.destroy());
      socket.end(NOT_FOUND_RESPONSE);
      return;
    }
    const [route, where] = found;
    this.admitThen(req, socket, route.pattern, () =>
      route.server.handleUpgrade(req, socket, head, (ws) => this.accept(route, ws, req, where)),
    );
  }

  /** Counts the upgrade against the client's rate limit (`admitUpgrade`), then goes on with it, or refuses it. */
  private admitThen(req: IncomingMessage, socket: Duplex, what: string, upgrade: () => void): void {
    if (!this.admitUpgrade) return upgrade();
    // While the admission is decided, a reset of the client must not end the process either.
    const onError = (): void => void socket.destroy();
    socket.on('error', onError);
    // The upgrade goes on from the tick queue, not from the promise that decided it: the frames the
    // client sent with its request are then read before the gateway's check runs on (ws reads them
    // from a tick), in the same turn of the event loop, exactly as without admission.
    const decide = (refusal: UpgradeRefusal | null): void =>
      process.nextTick(() => {
        socket.off('error', onError);
        if (socket.destroyed) return;
        if (refusal) return refuseUpgrade(socket, refusal);
        upgrade();
      });
    this.admitUpgrade(req).then(decide, (error: unknown) => {
      this.logger.warn(`Could not decide on an upgrade to ${what}, let through: ${error instanceof Error ? error.message : String(error)}`);
      decide(null);
    });
  }

  /** The first route whose pattern matches the request's path (query and trailing slash ignored). */
  private route(requestUrl = '/'): [Route, WsRoute] | null {
    let url: URL;
    try {
      url = new URL(requestUrl, 'http://localhost');
    } catch {
      return null;
    }
    for (const route of this.routes) {
      const params = route.match(url.pathname);
      if (params) return [route, { pattern: route.pattern, params, url }];
    }
    return null;
  }

  private accept(route: Route, ws: WebSocket, req: IncomingMessage, where: WsRoute): void {
    // First, before anything can await: `ws` reports a frame it refuses (over the size limit,
    // invalid UTF-8, a reserved opcode, …) as an 'error' event after it has started closing the
    // socket with the matching code (1009, 1007, 1002). Unheard, that event would end the process.
    ws.on('error', (error) => this.protocolError(ws, route, error));
    this.alive.set(ws, true);
    const markAlive = (): void => void this.alive.set(ws, true);
    ws.on('pong', markAlive);
    ws.on('message', markAlive);
    recordWsRoute(req, where);
    // Nest's gateway machinery listens here (bindClientConnect): handleConnection(ws, req).
    route.server.emit('connection', ws, req);
  }

  /** A client broke the WebSocket protocol: only its socket ends (ws already sent the close code). */
  private protocolError(ws: WebSocket, route: Route, error: Error): void {
    const code = (error as Error & { code?: string }).code ?? 'unknown';
    this.logger.warn(`WebSocket client on ${route.pattern} broke the protocol (${code}): ${error.message}`);
    // ws closes with the frame's status code and waits for the client's close frame; do not wait long.
    this.cutLater(ws);
  }

  private pingAll(): void {
    for (const route of this.routes) {
      for (const ws of route.server.clients) {
        if (this.alive.get(ws) === false) {
          ws.close(WsCloseCode.Timeout, 'no answer to ping');
          this.cutLater(ws);
          continue;
        }
        this.alive.set(ws, false);
        ws.ping();
      }
    }
  }

  private cutLater(ws: WebSocket): void {
    setTimeout(() => ws.terminate(), this.closeGraceMs).unref();
  }
}

/** Answers an upgrade with a plain HTTP error (the API's JSON body) and closes the connection. */
function refuseUpgrade(socket: Duplex, refusal: UpgradeRefusal): void {
  socket.on('error', () => socket.destroy());
  const body = JSON.stringify(refusal.body);
  const headers = Object.entries({
    ...refusal.headers,
    'Content-Type': 'application/json',
    'Content-Length': String(Buffer.byteLength(body)),
    Connection: 'close',
  })
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.end(`HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? ''}\r\n${headers}\r\n${body}`);
}
