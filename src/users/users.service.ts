import { Injectable, Logger } from '@nestjs/common';
import { AuditService } from '../audit/audit.service.js';
import { Clock } from '../common/clock/clock.js';
import { AppError } from '../common/errors/app-error.js';
import { UserError } from './users.errors.js';
import { DomainEvents } from '../common/events/domain-events.js';
import type { PlanName } from './plans.js';
import { AdminChanges, Page, ProfileChanges, UsersRepository } from './users.repository.js';
import type { Role, User } from './user.js';

/** Profiles, admin changes and account deletion. */
@Injectable()
export class UsersService {
  private readonly logger = new Logger('Users');

  constructor(
    private readonly users: UsersRepository,
    private readonly events: DomainEvents,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  async get(id: string): Promise<User> {
    const user = await this.users.findById(id);
    if (!user) throw new AppError(UserError.NotFound, 'No such user');
    return user;
  }

  async updateProfile(id: string, changes: ProfileChanges): Promise<User> {
    const user = await this.users.updateProfile(id, changes);
    if (!user) throw new AppError(UserError.NotFound, 'No such user');
    return user;
  }

  /**
   * Deletes an account: first deactivated (its tokens stop working at once), then every module
   * removes what belongs to it (`user.deleting`), then the record goes. If a clean-up fails, the
   * account stays deactivated and the scheduled purge finishes the job.
   */
  async deleteAccount(id: string, actor: { id: string; username: string; ip: string | null }): Promise<void> {
    const user = await this.users.requestDeletion(id, this.clock.now());
    if (!user) throw new AppError(UserError.NotFound, 'No such user');
    await this.audit.record({
      action: 'user.deleted',
      actorId: actor.id,
      actorUsername: actor.username,
      targetId: id,
      target: user.username,
      ip: actor.ip,
    });
    try {
      await this.finishDeletion(id);
    } catch (error) {
      this.logger.warn(`Deletion of user ${id} will be retried by the purge: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  async finishDeletion(id: string): Promise<void> {
    await this.events.emit('user.deleting', { userId: id });
    await this.users.delete(id);
  }

  async purgePendingDeletions(): Promise<number> {
    const pending = await this.users.pendingDeletions(this.clock.now(), 100);
    let done = 0;
    for (const user of pending) {
      try {
        await this.finishDeletion(user.id);
        done += 1;
      } catch (error) {
        this.logger.warn(`Deletion of user ${user.id} failed again: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return done;
  }

  search(query: string | undefined, page: number, pageSize: number): Promise<Page<User>> {
    return this.users.search(query, page, pageSize);
  }

  /** Admin changes; an admin cannot demote or deactivate themselves (no lock-out of the last admin by accident). */
  async updateAsAdmin(targetId: string, changes: AdminChanges, actor: { id: string; username: string; ip: string | null }): Promise<User> {
    if (targetId === actor.id && (changes.role === 'user' || changes.isActive === false)) {
      throw new AppError(UserError.OwnAdminRights, 'Admins cannot remove their own admin role or deactivate themselves');
    }
    const before = await this.get(targetId);
    const user = await this.users.updateAsAdmin(targetId, changes);
    if (!user) throw new AppError(UserError.NotFound, 'No such user');
    await this.audit.record({
      action: 'admin.user_updated',
      actorId: actor.id,
      actorUsername: actor.username,
      targetId,
      target: user.username,
      ip: actor.ip,
      details: changeSummary(before, changes),
    });
    if (before.isActive && changes.isActive === false) await this.events.emit('user.deactivated', { userId: targetId });
    return user;
  }

  /** For the CLI: find by id, username or email. */
  async find(reference: string): Promise<User | null> {
    return (await this.users.findById(reference)) ?? (await this.users.findByUsernameOrEmail(reference));
  }

  setPlan(id: string, plan: PlanName): Promise<User | null> {
    return this.users.updateAsAdmin(id, { plan });
  }

  setRole(id: string, role: Role): Promise<User | null> {
    return this.users.updateAsAdmin(id, { role });
  }
}

function changeSummary(before: User, changes: AdminChanges): Record<string, unknown> {
  const summary: Record<string, unknown> = {};
  if (changes.plan !== undefined) summary.subscription_plan = { from: before.plan, to: changes.plan };
  if (changes.role !== undefined) summary.role = { from: before.role, to: changes.role };
  if (changes.isActive !== undefined) summary.is_active = { from: before.isActive, to: changes.isActive };
  return summary;
}
