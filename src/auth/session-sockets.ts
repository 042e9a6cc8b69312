import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { WebSocket } from 'ws';
import { DomainEvents } from '../common/events/domain-events.js';
import type { Principal } from '../common/http/principal.js';
import { WsCloseCode } from '../common/websocket/close-codes.js';
import { rejectSocket } from '../common/websocket/ws-connection.js';
import { UsersRepository } from '../users/users.repository.js';
import { SessionsRepository } from './sessions.repository.js';

interface OpenSocket {
  userId: string;
  sessionId: string;
  /** Closed here when its session ends (the logs); otherwise its owner does that itself (the terminal hub). */
  closeOnRevocation: boolean;
}

/** How often sockets are re-checked against the database while events of other replicas cannot be heard. */
export const RECHECK_WHILE_OUT_OF_SYNC_MS = 15_000;

/**
 * The WebSockets this process holds open, by the sign-in session that opened them (the terminal
 * and the logs of an environment, through `EnvironmentSocketAccess`). A socket's session is checked
 * once, at connection; after that:
 *
 * - `auth.sessions_revoked`, emitted on this replica or any other, closes the logs sockets of the
 *   ended sessions with 4001 (the terminal hub closes its own clients on the same event);
 * - a revocation this replica could not hear (the Redis subscription was down) is found when it
 *   is back (`DomainEvents.onResync`), and every 15 s while it is down: each open socket's session
 *   and user are read again, and for those that ended `auth.sessions_revoked` is delivered here as
 *   if it came from another replica, so the same handlers close the same sockets.
 */
@Injectable()
export class SessionSockets implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('SessionSockets');
  private readonly open = new Map<WebSocket, OpenSocket>();
  private checking: Promise<void> | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly events: DomainEvents,
    private readonly sessions: SessionsRepository,
    private readonly users: UsersRepository,
  ) {
    this.timer = setInterval(() => {
      if (!this.events.inSync) void this.recheck();
    }, RECHECK_WHILE_OUT_OF_SYNC_MS);
    this.timer.unref();
  }

  onModuleInit(): void {
    this.events.on('auth.sessions_revoked', (revoked) => this.closeRevoked(revoked), { everyReplica: true });
    this.events.onResync(() => void this.recheck());
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** Sockets held open (for tests). */
  get size(): number {
    return this.open.size;
  }

  /** Follows a socket opened with this principal's session until it closes. */
  track(ws: WebSocket, principal: Principal, options: { closeOnRevocation: boolean }): void {
    if (ws.readyState !== WebSocket.OPEN) return;
    this.open.set(ws, { userId: principal.user.id, sessionId: principal.sessionId, closeOnRevocation: options.closeOnRevocation });
    ws.once('close', () => this.open.delete(ws));
  }

  private closeRevoked({ userId, sessionId, exceptSessionId }: { userId: string; sessionId?: string; exceptSessionId?: string }): void {
    for (const [ws, socket] of this.open) {
      if (!socket.closeOnRevocation || socket.userId !== userId) continue;
      if (sessionId !== undefined && socket.sessionId !== sessionId) continue;
      if (exceptSessionId !== undefined && socket.sessionId === exceptSessionId) continue;
      rejectSocket(ws, WsCloseCode.Unauthorized, 'Your session has ended; sign in again');
    }
  }

  /** Reads every open socket's session and user again; one pass at a time. */
  recheck(): Promise<void> {
    this.checking ??= this.checkAll().finally(() => (this.checking = null));
    return this.checking;
  }

  private async checkAll(): Promise<void> {
    const bySession = new Map<string, string>();
    for (const socket of this.open.values()) bySession.set(socket.sessionId, socket.userId);
    let ended = 0;
    try {
      for (const [sessionId, userId] of bySession) {
        const [session, user] = await Promise.all([this.sessions.findById(sessionId), this.users.findById(userId)]);
        const live = session !== null && session.revokedAt === null && session.userId === userId && user !== null && user.isActive;
        if (live) continue;
        ended += 1;
        await this.events.deliverFromReplica('auth.sessions_revoked', { userId, sessionId, reason: 'ended_elsewhere' });
      }
    } catch (error) {
      this.logger.warn(
        `Could not re-check the sessions of open sockets (again in 5 s): ${error instanceof Error ? error.message : String(error)}`,
      );
      setTimeout(() => void this.recheck(), 5_000).unref();
      return;
    }
    if (ended > 0) this.logger.log(`${ended} session(s) ended while events of other replicas could not be heard: their sockets are closed`);
  }
}
