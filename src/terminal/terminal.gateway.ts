import { Injectable, OnModuleInit } from '@nestjs/common';
import { WebSocket } from 'ws';
import { Principal } from '../auth/auth.decorators.js';
import { AuthError } from '../auth/auth.errors.js';
import { AuthService } from '../auth/auth.service.js';
import { WsCloseCode } from '../common/websocket/close-codes.js';
import { rejectSocket, webSocketToken, WebSocketRouter, WsRouteContext } from '../common/websocket/websocket-router.js';
import { EnvironmentsService } from '../environments/environments.service.js';
import { MAX_COLS, MAX_ROWS } from './protocol.js';
import { TerminalHub } from './terminal.hub.js';
import { TerminalMetrics } from './terminal-metrics.js';

function intParam(url: URL, name: string, max: number): number | null {
  const raw = url.searchParams.get(name);
  if (raw === null || !/^\d{1,16}$/.test(raw)) return null;
  const value = Number(raw);
  return value >= 0 && value <= max ? value : null;
}

/**
 * `/api/v1/ws/terminal/{environment_id}`: authenticates (`?token=`, `Authorization: Bearer`, or
 * subprotocol `bearer.<token>`; refresh tokens are refused), checks ownership and that the
 * environment runs, then hands the socket to the hub. Each rejection sends an `error` message and
 * closes with its own code (see WsCloseCode).
 */
@Injectable()
export class TerminalGateway implements OnModuleInit {
  constructor(
    private readonly router: WebSocketRouter,
    private readonly auth: AuthService,
    private readonly environments: EnvironmentsService,
    private readonly hub: TerminalHub,
    private readonly metrics: TerminalMetrics,
  ) {}

  onModuleInit(): void {
    this.router.register(/^\/api\/v1\/ws\/terminal\/(?<id>[^/]+)$/, (socket, context) => this.connect(socket, context));
  }

  private reject(socket: WebSocket, code: WsCloseCode, reason: string, message: string): void {
    this.metrics.rejections.inc({ reason });
    rejectSocket(socket, code, message);
  }

  private async connect(socket: WebSocket, { req, params, url }: WsRouteContext): Promise<void> {
    // Frames sent right after opening (e.g. a first `resume`) must not be lost while we authenticate.
    const early: [Buffer, boolean][] = [];
    const hold = (data: Buffer, isBinary: boolean): void => void early.push([data, isBinary]);
    socket.on('message', hold);
    try {
      await this.admit(socket, req, params, url, early);
    } finally {
      socket.off('message', hold);
    }
  }

  private async admit(
    socket: WebSocket,
    req: WsRouteContext['req'],
    params: WsRouteContext['params'],
    url: URL,
    early: [Buffer, boolean][],
  ): Promise<void> {
    const token = webSocketToken(req, url);
    if (!token) return this.reject(socket, WsCloseCode.Unauthorized, 'unauthorized', 'Authentication required: pass ?token=<access token>');
    let principal: Principal;
    try {
      principal = await this.auth.authenticate(token);
    } catch (error) {
      return this.reject(socket, WsCloseCode.Unauthorized, 'unauthorized', error instanceof AuthError ? error.detail : 'Invalid token');
    }
    const environment = await this.environments.getOwned(principal, params.id ?? '').catch(() => null);
    if (!environment) return this.reject(socket, WsCloseCode.NotFound, 'not_found', 'Environment not found');
    if (environment.phase !== 'running') {
      return this.reject(socket, WsCloseCode.NotRunning, 'not_running', `The environment is ${environment.phase}; start it first`);
    }
    // A client that left while we were checking takes no connection slot.
    if (socket.readyState !== WebSocket.OPEN) return;
    await this.hub.connect(socket, {
      early,
      principal,
      environment,
      resume: intParam(url, 'resume', Number.MAX_SAFE_INTEGER),
      cols: intParam(url, 'cols', MAX_COLS) || null,
      rows: intParam(url, 'rows', MAX_ROWS) || null,
    });
  }
}
