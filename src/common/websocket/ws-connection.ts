import type { IncomingMessage } from 'node:http';
import { Logger } from '@nestjs/common';
import { WebSocket } from 'ws';
import { WsCloseCode } from './close-codes.js';

/** Where a WebSocket connection was routed: the request's URL and its path pattern's parameters. */
export interface WsRoute {
  /** The gateway's path pattern, e.g. `/api/v1/ws/terminal/:id`. */
  pattern: string;
  /** The pattern's parameters, e.g. `{ id: '…' }`. */
  params: Record<string, string>;
  url: URL;
}

const routes = new WeakMap<IncomingMessage, WsRoute>();

/** Set by the adapter (RoutingWsAdapter) before the gateway sees the connection. */
export function recordWsRoute(request: IncomingMessage, route: WsRoute): void {
  routes.set(request, route);
}

/** The route of the upgrade request a gateway's `handleConnection(client, request)` received. */
export function wsRoute(request: IncomingMessage): WsRoute {
  const route = routes.get(request);
  if (!route) throw new Error(`No WebSocket route recorded for ${request.url ?? '?'}: is RoutingWsAdapter the application's adapter?`);
  return route;
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

const logger = new Logger('WebSocket');

/**
 * Runs a gateway's asynchronous connection handling. Nest calls `handleConnection` and drops what
 * it returns, so a failure would go unheard: it is logged here and the socket closed with 4500.
 */
export function superviseConnection(ws: WebSocket, request: IncomingMessage, work: () => Promise<void>): void {
  const failed = (error: unknown): void => {
    const route = routes.get(request)?.pattern ?? 'an unrouted path';
    logger.error(`WebSocket handler for ${route} failed: ${error instanceof Error ? error.message : String(error)}`);
    if (ws.readyState === WebSocket.OPEN) ws.close(WsCloseCode.UpstreamError, 'internal error');
  };
  try {
    work().catch(failed);
  } catch (error) {
    failed(error);
  }
}
