import { Injectable } from '@nestjs/common';
import { Clock } from '../../common/clock/clock.js';
import { AppError } from '../../common/errors/app-error.js';
import { UsersRepository } from '../../users/users.repository.js';
import { AccountsError } from '../auth.errors.js';

/** The 423 of a locked account: `Retry-After` in seconds and `locked_until` in the body. */
export function accountLocked(until: Date, now: Date): AppError {
  const seconds = Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 1000));
  return new AppError(
    AccountsError.AccountLocked,
    `Too many failed sign-ins; the account is locked for ${Math.ceil(seconds / 60)} more minute(s)`,
    {
      headers: { 'Retry-After': String(seconds) },
      extra: { locked_until: until.toISOString() },
    },
  );
}

/**
 * The lock's side of password sign-in: whether an attempt may go on to the password check. The
 * failures are counted where the password is checked (`AuthService.login`, one atomic `$inc`,
 * which also sets the lock when the count reaches LOGIN_LOCKOUT_THRESHOLD).
 */
@Injectable()
export class LoginLockout {
  constructor(
    private readonly clock: Clock,
    private readonly users: UsersRepository,
  ) {}

  /**
   * Refuses a sign-in to a locked account with 423, before any password work. A lock that has
   * expired is cleared with its failure count (a conditional update: one request does it), so this
   * attempt starts a new count. Unknown accounts and accounts without a password pass: the
   * sign-in refuses them exactly like a wrong password, so nothing here tells them apart.
   */
  async refuseIfLocked(login: string): Promise<void> {
    const user = await this.users.findByUsernameOrEmail(login);
    if (!user?.passwordHash || !user.lockedUntil) return;
    const now = this.clock.now();
    if (user.lockedUntil <= now) {
      await this.users.clearExpiredLock(user.id, user.lockedUntil);
      return;
    }
    throw accountLocked(user.lockedUntil, now);
  }
}
