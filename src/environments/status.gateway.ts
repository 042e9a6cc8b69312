import type { IncomingMessage } from 'node:http';
import { OnGatewayConnection, WebSocketGateway } from '@nestjs/websockets';
import { WebSocket } from 'ws';
import { superviseConnection } from '../common/websocket/ws-connection.js';
import { EnvironmentSocketAccess } from './environment-socket-access.js';
import { EnvironmentStatusHub } from './environment-status-hub.js';

/**
 * `/api/v1/ws/environments?token=…`: the signed-in user's environments, as one `snapshot` message,
 * then each change as it happens, on whichever replica it was made (docs/status-websocket.md).
 * Signed in like the terminal (token in the query, an `Authorization` header or the subprotocol
 * `bearer.<token>`; 4001 otherwise); closed with 4001 when that sign-in session ends. Frames from
 * the client are ignored (the adapter counts them as signs of life).
 */
@WebSocketGateway({ path: '/api/v1/ws/environments' })
export class StatusGateway implements OnGatewayConnection<WebSocket> {
  constructor(
    private readonly access: EnvironmentSocketAccess,
    private readonly hub: EnvironmentStatusHub,
  ) {}

  handleConnection(socket: WebSocket, request: IncomingMessage): void {
    superviseConnection(socket, request, async () => {
      const signedIn = await this.access.signIn(socket, request);
      if (!signedIn || socket.readyState !== WebSocket.OPEN) return;
      this.access.track(socket, signedIn.principal);
      const { principal } = signedIn;
      this.hub.add({ userId: principal.user.id, sessionId: principal.sessionId, origin: originOf(request) }, socket);
    });
  }
}

/** The server's address as the client reached it (for preview addresses when PUBLIC_URL is not set). */
function originOf(request: IncomingMessage): string | null {
  const host = request.headers.host;
  if (!host) return null;
  const secure = request.headers['x-forwarded-proto'] === 'https' || ('encrypted' in request.socket && request.socket.encrypted === true);
  return `${secure ? 'https' : 'http'}://${host}`;
}
