import { Injectable, Logger } from '@nestjs/common';
import { Clock } from '../common/clock/clock.js';
import { DomainEvents } from '../common/events/domain-events.js';
import { SessionsRepository } from './sessions.repository.js';

/**
 * Ends sessions and tells the rest of the application (`auth.sessions_revoked`), so that what
 * was opened with them, such as terminal WebSockets, is closed too.
 */
@Injectable()
export class SessionRevoker {
  private readonly logger = new Logger('Sessions');

  constructor(
    private readonly sessions: SessionsRepository,
    private readonly events: DomainEvents,
    private readonly clock: Clock,
  ) {}

  /** One session. */
  async revoke(userId: string, sessionId: string, reason: string): Promise<void> {
    await this.sessions.revoke(sessionId, this.clock.now(), reason);
    await this.announce({ userId, sessionId, reason });
  }

  /** Every session of the user, or every one but `exceptSessionId`. Returns how many ended. */
  async revokeAll(userId: string, reason: string, exceptSessionId?: string): Promise<number> {
    const count = await this.sessions.revokeAllForUser(userId, this.clock.now(), reason, exceptSessionId);
    await this.announce({ userId, exceptSessionId, reason });
    return count;
  }

  private async announce(payload: { userId: string; sessionId?: string; exceptSessionId?: string; reason: string }): Promise<void> {
    try {
      await this.events.emit('auth.sessions_revoked', payload);
    } catch (error) {
      this.logger.warn(`A session-revocation listener failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}
