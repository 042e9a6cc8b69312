import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { WebSocket, WebSocketServer } from 'ws';
import { WsCloseCode } from './close-codes.js';

export interface WsRouteContext {
  req: IncomingMessage;
  /** Named groups of the route's pattern, e.g. `{ id: '…' }`. */
  params: Record<string, string>;
  url: URL;
}

export type WsRouteHandler = (socket: WebSocket, context: WsRouteContext) => void | Promise<void>;

interface Route {
  pattern: RegExp;
  handler: WsRouteHandler;
}

/** Incoming frames above this size close the connection (modules enforce their own, smaller limits). */
const MAX_PAYLOAD_BYTES = 1024 * 1024;
const PING_INTERVAL_MS = 25_000;

/**
 * Routes WebSocket upgrades on the HTTP server by path to handlers registered by modules (logs,
 * terminal), keeps every socket alive with ping frames (a client silent for two intervals is
 * closed), and closes them all with 1001 on graceful shutdown. Handlers authenticate and close
 * with an application code from WsCloseCode on rejection.
 */
@Injectable()
export class WebSocketRouter implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('WebSocket');
  private readonly routes: Route[] = [];
  private readonly server = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_PAYLOAD_BYTES,
    perMessageDeflate: false,
    // A browser that authenticates with the subprotocol `bearer.<token>` needs one protocol echoed:
    // prefer any other protocol it offered, else that one.
    handleProtocols: (protocols) => [...protocols].find((p) => !p.startsWith('bearer.')) ?? [...protocols][0] ?? false,
  });
  private readonly alive = new WeakMap<WebSocket, boolean>();
  private pingTimer: NodeJS.Timeout | null = null;
  private attached = false;

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  /** `pattern` is matched against the path (no query); use named groups for parameters. */
  register(pattern: RegExp, handler: WsRouteHandler): void {
    this.routes.push({ pattern, handler });
  }

  get clients(): ReadonlySet<WebSocket> {
    return this.server.clients;
  }

  onApplicationBootstrap(): void {
    const httpServer = this.adapterHost.httpAdapter?.getHttpServer() as import('node:http').Server | undefined;
    if (!httpServer || this.attached) return;
    this.attached = true;
    httpServer.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    this.pingTimer = setInterval(() => this.pingAll(), PING_INTERVAL_MS);
    this.pingTimer.unref();
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    for (const route of this.routes) {
      const match = route.pattern.exec(path);
      if (!match) continue;
      this.server.handleUpgrade(req, socket, head, (ws) => {
        // First, before anything can await: `ws` reports a frame it refuses (over the size limit,
        // invalid UTF-8, a reserved opcode, …) as an 'error' event after it has started closing the
        // socket with the matching code (1009, 1007, 1002). Unheard, that event would end the process.
        ws.on('error', (error) => this.protocolError(ws, path, error));
        this.alive.set(ws, true);
        ws.on('pong', () => this.alive.set(ws, true));
        ws.on('message', () => this.alive.set(ws, true));
        Promise.resolve(route.handler(ws, { req, params: { ...(match.groups ?? {}) }, url })).catch((error: unknown) => {
          this.logger.error(`WebSocket handler for ${path} failed: ${error instanceof Error ? error.message : String(error)}`);
          if (ws.readyState === WebSocket.OPEN) ws.close(WsCloseCode.UpstreamError, 'internal error');
        });
      });
      return;
    }
    socket.end(
      'HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"detail":"No WebSocket endpoint at this path","code":"not_found"}',
    );
  }

  /** A client broke the WebSocket protocol: only its socket ends (ws already sent the close code). */
  private protocolError(ws: WebSocket, path: string, error: Error): void {
    const code = (error as Error & { code?: string }).code ?? 'unknown';
    this.logger.warn(`WebSocket client on ${routeName(path)} broke the protocol (${code}): ${error.message}`);
    // ws closes with the frame's status code and waits for the client's close frame; do not wait long.
    setTimeout(() => ws.terminate(), 5_000).unref();
  }

  private pingAll(): void {
    for (const ws of this.server.clients) {
      if (this.alive.get(ws) === false) {
        ws.close(WsCloseCode.Timeout, 'no answer to ping');
        setTimeout(() => ws.terminate(), 5_000).unref();
        continue;
      }
      this.alive.set(ws, false);
      ws.ping();
    }
  }

  beforeApplicationShutdown(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    for (const ws of this.server.clients) ws.close(WsCloseCode.GoingAway, 'server shutting down');
  }
}

/** The path with its last segment (an id) elided, for logs. */
function routeName(path: string): string {
  return path.replace(/\/[^/]+$/, '/…');
}

/** The access token of a WebSocket request: `?token=`, `Authorization: Bearer`, or subprotocol `bearer.<token>`. */
export function webSocketToken(req: IncomingMessage, url: URL): string | null {
  const query = url.searchParams.get('token');
  if (query) return query;
  const header = req.headers.authorization;
  const bearer = header ? /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] : undefined;
  if (bearer) return bearer;
  const protocols = req.headers['sec-websocket-protocol'];
  const offered = (Array.isArray(protocols) ? protocols.join(',') : (protocols ?? '')).split(',').map((p) => p.trim());
  const fromProtocol = offered.find((p) => p.startsWith('bearer.'));
  return fromProtocol ? fromProtocol.slice('bearer.'.length) : null;
}

/** Sends the readable reason as an `error` message, then closes with the code. */
export function rejectSocket(ws: WebSocket, code: WsCloseCode, message: string): void {
  if (ws.readyState !== WebSocket.OPEN) return;
  ws.send(JSON.stringify({ type: 'error', message, code }));
  ws.close(code, message.slice(0, 120));
}
