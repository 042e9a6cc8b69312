import type { IncomingMessage } from 'node:http';
import { Injectable } from '@nestjs/common';
import type { WebSocket } from 'ws';
import { Principal } from '../common/http/principal.js';
import { AuthError } from '../auth/auth.errors.js';
import { AuthService } from '../auth/auth.service.js';
import { SessionSockets } from '../auth/session-sockets.js';
import { WsCloseCode } from '../common/websocket/close-codes.js';
import { rejectSocket, webSocketToken, wsRoute } from '../common/websocket/ws-connection.js';
import { Environment } from './environment.js';
import { EnvironmentsService } from './environments.service.js';

/** Why a socket was refused at connection (the terminal counts them by these names). */
export type SocketRejection = 'unauthorized' | 'not_found' | 'not_running';

export interface SocketAccessPolicy {
  /** Why the environment's phase refuses this endpoint (the socket is closed with 4009), or null. */
  refusePhase(environment: Environment): string | null;
  /** Told of each rejection, before the socket is closed. */
  onReject?(reason: SocketRejection): void;
  /**
   * Close the admitted socket (4001) when its sign-in session ends, on any replica. False when the
   * endpoint does that itself (the terminal hub, which counts it among its rejections).
   */
  closeOnRevocation: boolean;
}

export interface SocketAccess {
  principal: Principal;
  environment: Environment;
  /** The request's URL, for the endpoint's own query parameters. */
  url: URL;
}

/**
 * The sign-in and ownership check of the WebSockets on an environment (`/api/v1/ws/terminal/{id}`,
 * `/api/v1/ws/logs/{id}`), shared by their gateways; the status socket (`/api/v1/ws/environments`)
 * uses its sign-in alone (`signIn`, `track`). In order, the first failure rejects:
 *
 * 1. an access token: `?token=`, `Authorization: Bearer`, or subprotocol `bearer.<token>` (4001);
 * 2. `AuthService.authenticate` accepts it (4001, with its 401 detail);
 * 3. the environment of the path's `:id` exists and belongs to the caller (4004; another user's
 *    environment and an invalid id answer the same);
 * 4. the endpoint's phase policy (4009).
 *
 * A rejection is one `{"type":"error","message":…,"code":…}` frame, then the close code. An
 * admitted socket is followed by `SessionSockets` for as long as it is open: its session ending
 * (on any replica, or found ended after a gap in the events) closes it.
 */
@Injectable()
export class EnvironmentSocketAccess {
  constructor(
    private readonly auth: AuthService,
    private readonly environments: EnvironmentsService,
    private readonly sockets: SessionSockets,
  ) {}

  /**
   * The caller and their environment, or null when the socket was rejected (and closed). The
   * socket may have left meanwhile: the endpoint checks that before it starts anything for it.
   */
  async check(socket: WebSocket, request: IncomingMessage, policy: SocketAccessPolicy): Promise<SocketAccess | null> {
    const { params } = wsRoute(request);
    const signedIn = await this.signIn(socket, request, (reason) => policy.onReject?.(reason));
    if (!signedIn) return null;
    const { principal, url } = signedIn;
    const reject = (reason: SocketRejection, code: WsCloseCode, message: string): null => {
      policy.onReject?.(reason);
      rejectSocket(socket, code, message);
      return null;
    };
    const environment = await this.environments.getOwned(principal, params.id ?? '').catch(() => null);
    if (!environment) return reject('not_found', WsCloseCode.NotFound, 'Environment not found');
    const refused = policy.refusePhase(environment);
    if (refused !== null) return reject('not_running', WsCloseCode.NotRunning, refused);
    this.sockets.track(socket, principal, { closeOnRevocation: policy.closeOnRevocation });
    return { principal, environment, url };
  }

  /**
   * Steps 1 and 2 only, for a socket about the caller rather than one environment (the status
   * socket): the caller, or null when the socket was rejected with 4001. The socket is not tracked
   * yet: `track` it once admitted.
   */
  async signIn(
    socket: WebSocket,
    request: IncomingMessage,
    onReject?: (reason: SocketRejection) => void,
  ): Promise<{ principal: Principal; url: URL } | null> {
    const { url } = wsRoute(request);
    const reject = (message: string): null => {
      onReject?.('unauthorized');
      rejectSocket(socket, WsCloseCode.Unauthorized, message);
      return null;
    };
    const token = webSocketToken(request, url);
    if (!token) return reject('Authentication required: pass ?token=<access token>');
    try {
      return { principal: await this.auth.authenticate(token), url };
    } catch (error) {
      return reject(error instanceof AuthError ? error.detail : 'Invalid token');
    }
  }

  /** Closes the socket (4001) when the principal's sign-in session ends, on any replica. */
  track(socket: WebSocket, principal: Principal): void {
    this.sockets.track(socket, principal, { closeOnRevocation: true });
  }
}
