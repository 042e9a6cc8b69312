import { Injectable, OnModuleInit } from '@nestjs/common';
import { WebSocket } from 'ws';
import { AuthError } from '../auth/auth.errors.js';
import { AuthService } from '../auth/auth.service.js';
import { AppError } from '../common/errors/app-error.js';
import { WsCloseCode } from '../common/websocket/close-codes.js';
import { rejectSocket, webSocketToken, WebSocketRouter, WsRouteContext } from '../common/websocket/websocket-router.js';
import { EnvironmentsService } from './environments.service.js';

/**
 * `/api/v1/ws/logs/{id}?token=…[&lines=N]`: sends the newest N lines (default 100, at most 1000),
 * then every new line, each as a JSON text frame `{"type":"log","line":"…"}`.
 */
@Injectable()
export class LogsGateway implements OnModuleInit {
  constructor(
    private readonly router: WebSocketRouter,
    private readonly auth: AuthService,
    private readonly environments: EnvironmentsService,
  ) {}

  onModuleInit(): void {
    this.router.register(/^\/api\/v1\/ws\/logs\/(?<id>[^/]+)$/, (socket, context) => this.connect(socket, context));
  }

  private async connect(socket: WebSocket, { req, params, url }: WsRouteContext): Promise<void> {
    const token = webSocketToken(req, url);
    if (!token) return rejectSocket(socket, WsCloseCode.Unauthorized, 'Authentication required: pass ?token=<access token>');
    let principal;
    try {
      principal = await this.auth.authenticate(token);
    } catch (error) {
      return rejectSocket(socket, WsCloseCode.Unauthorized, error instanceof AuthError ? error.detail : 'Invalid token');
    }
    let environment;
    try {
      environment = await this.environments.getOwned(principal, params.id ?? '');
    } catch (error) {
      return rejectSocket(socket, WsCloseCode.NotFound, error instanceof AppError ? error.detail : 'Environment not found');
    }
    if (environment.phase === 'terminated') return rejectSocket(socket, WsCloseCode.NotRunning, 'The environment was deleted');
    const spec = await this.environments.specFor(environment);
    // A client that left while we were checking gets nothing started for it.
    if (socket.readyState !== WebSocket.OPEN) return;
    const send = (line: string): void => {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: 'log', line }));
    };
    const backlog = Math.min(1000, Math.max(0, Number(url.searchParams.get('lines') ?? 100) || 0));
    const unsubscribe = this.environments.followLogs(spec, send, backlog);
    socket.once('close', unsubscribe);
  }
}
