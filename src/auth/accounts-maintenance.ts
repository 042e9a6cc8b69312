import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { Interval } from '@nestjs/schedule';
import { Clock } from '../common/clock/clock.js';
import { DomainEvents } from '../common/events/domain-events.js';
import { UsersService } from '../users/users.service.js';
import { IdentitiesRepository } from './identities.repository.js';
import { OneTimeCodesRepository } from './one-time-codes.repository.js';
import { SessionRevoker } from './session-revoker.js';
import { SessionsRepository } from './sessions.repository.js';

/** Ended sessions and used codes are kept this long (for support and the audit trail), then removed. */
const RETENTION_MS = 7 * 24 * 3600_000;

/**
 * Removes what belongs to a deleted account, and runs the scheduled clean-up that replaces TTL
 * indexes (which FerretDB lacks): expired sessions and codes, unfinished account deletions.
 */
@Injectable()
export class AccountsMaintenance implements OnModuleInit {
  private readonly logger = new Logger('AccountsMaintenance');

  constructor(
    private readonly events: DomainEvents,
    private readonly sessions: SessionsRepository,
    private readonly revoker: SessionRevoker,
    private readonly identities: IdentitiesRepository,
    private readonly codes: OneTimeCodesRepository,
    private readonly users: UsersService,
    private readonly clock: Clock,
  ) {}

  onModuleInit(): void {
    this.events.on('user.deleting', async ({ userId }) => {
      await this.sessions.deleteAllForUser(userId);
      await this.identities.deleteAllForUser(userId);
      await this.codes.deleteAllForUser(userId);
    });
    this.events.on('user.deactivated', async ({ userId }) => {
      await this.revoker.revokeAll(userId, 'account_deactivated');
    });
  }

  @Interval('accounts-maintenance', 3600_000)
  async run(): Promise<{ sessions: number; codes: number; deletions: number }> {
    try {
      const cutoff = new Date(this.clock.nowMs() - RETENTION_MS);
      const result = {
        sessions: await this.sessions.purge(cutoff),
        codes: await this.codes.purge(cutoff),
        deletions: await this.users.purgePendingDeletions(),
      };
      if (result.sessions + result.codes + result.deletions > 0) this.logger.log(`Clean-up: ${JSON.stringify(result)}`);
      return result;
    } catch (error) {
      this.logger.warn(`Clean-up failed, will retry: ${error instanceof Error ? error.message : String(error)}`);
      return { sessions: 0, codes: 0, deletions: 0 };
    }
  }
}
