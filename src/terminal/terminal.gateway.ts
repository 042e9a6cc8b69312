import type { IncomingMessage } from 'node:http';
import { OnGatewayConnection, WebSocketGateway } from '@nestjs/websockets';
import { WebSocket } from 'ws';
import { superviseConnection } from '../common/websocket/ws-connection.js';
import { EnvironmentSocketAccess } from '../environments/environment-socket-access.js';
import { WsCloseCode } from '../common/websocket/close-codes.js';
import { rejectSocket } from '../common/websocket/ws-connection.js';
import { CLIENT_ID_PATTERN, MAX_COLS, MAX_ROWS } from './protocol.js';
import { ConnectRequest, TerminalHub } from './terminal.hub.js';
import { TerminalMetrics } from './terminal-metrics.js';

function intParam(url: URL, name: string, max: number): number | null {
  const raw = url.searchParams.get(name);
  if (raw === null || !/^\d{1,16}$/.test(raw)) return null;
  const value = Number(raw);
  return value >= 0 && value <= max ? value : null;
}

/**
 * `/api/v1/ws/terminal/{environment_id}`: signs the caller in, checks ownership and that the
 * environment runs (EnvironmentSocketAccess; each rejection sends an `error` message and closes
 * with its own code), and hands the socket to the hub, which owns everything after: limits,
 * the session, frames (those sent during the check included), fan-out and backpressure.
 */
@WebSocketGateway({ path: '/api/v1/ws/terminal/:id' })
export class TerminalGateway implements OnGatewayConnection<WebSocket> {
  constructor(
    private readonly access: EnvironmentSocketAccess,
    private readonly hub: TerminalHub,
    private readonly metrics: TerminalMetrics,
  ) {}

  handleConnection(socket: WebSocket, request: IncomingMessage): void {
    // The hub takes the socket at once, so that nothing the client sends during the check is lost.
    superviseConnection(socket, request, () => this.hub.connect(socket, this.admit(socket, request)));
  }

  private async admit(socket: WebSocket, request: IncomingMessage): Promise<ConnectRequest | null> {
    const access = await this.access.check(socket, request, {
      refusePhase: ({ phase }) => (phase === 'running' ? null : `The environment is ${phase}; start it first`),
      onReject: (reason) => this.metrics.rejections.inc({ reason }),
      // The hub closes its clients when their session ends (auth.sessions_revoked).
      closeOnRevocation: false,
    });
    if (!access) return null;
    const { principal, environment, url } = access;
    const clientId = url.searchParams.get('client_id');
    if (clientId !== null && !CLIENT_ID_PATTERN.test(clientId)) {
      this.metrics.rejections.inc({ reason: 'policy' });
      rejectSocket(socket, WsCloseCode.PolicyViolation, 'client_id must be 16-64 characters of A-Z, a-z, 0-9, _ and -');
      return null;
    }
    return {
      clientId,
      principal,
      environment,
      resume: intParam(url, 'resume', Number.MAX_SAFE_INTEGER),
      cols: intParam(url, 'cols', MAX_COLS) || null,
      rows: intParam(url, 'rows', MAX_ROWS) || null,
    };
  }
}
