import type { IncomingMessage } from 'node:http';
import { OnGatewayConnection, WebSocketGateway } from '@nestjs/websockets';
import { WebSocket } from 'ws';
import { superviseConnection } from '../common/websocket/ws-connection.js';
import { EnvironmentSocketAccess } from './environment-socket-access.js';
import { EnvironmentsService } from './environments.service.js';

/**
 * `/api/v1/ws/logs/{id}?token=…[&lines=N]`: sends the newest N lines (default 100, at most 1000),
 * then every new line, each as a JSON text frame `{"type":"log","line":"…"}`. Frames from the
 * client are ignored (the adapter counts them as signs of life). It closes with 4001 when the
 * sign-in session that opened it ends (sign-out, password change, deactivation), on any replica.
 */
@WebSocketGateway({ path: '/api/v1/ws/logs/:id' })
export class LogsGateway implements OnGatewayConnection<WebSocket> {
  constructor(
    private readonly access: EnvironmentSocketAccess,
    private readonly environments: EnvironmentsService,
  ) {}

  handleConnection(socket: WebSocket, request: IncomingMessage): void {
    superviseConnection(socket, request, () => this.follow(socket, request));
  }

  private async follow(socket: WebSocket, request: IncomingMessage): Promise<void> {
    const access = await this.access.check(socket, request, {
      refusePhase: ({ phase }) => (phase === 'terminated' ? 'The environment was deleted' : null),
      // A sign-out, a password change or a deactivation ends the log too (4001), on every replica.
      closeOnRevocation: true,
    });
    if (!access) return;
    const spec = await this.environments.specFor(access.environment);
    // A client that left while we were checking gets nothing started for it.
    if (socket.readyState !== WebSocket.OPEN) return;
    const send = (line: string): void => {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: 'log', line }));
    };
    const backlog = Math.min(1000, Math.max(0, Number(access.url.searchParams.get('lines') ?? 100) || 0));
    const unsubscribe = this.environments.followLogs(spec, send, backlog);
    // Tied to this socket's own close: no map from sockets to follows for a handleDisconnect to look up.
    socket.once('close', unsubscribe);
  }
}
