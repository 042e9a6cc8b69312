import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Model, Types } from 'mongoose';
import { isDuplicateKeyError } from '../common/errors/database-errors.js';
import { DomainEvents } from '../common/events/domain-events.js';
import { leanMapper } from '../database/lean-mapper.js';
import { parseObjectId } from '../database/object-id.js';
import type { PlanName } from './plans.js';
import { UserRecord } from './schemas/user.schema.js';
import { normalizeEmail, normalizeUsername, Role, User } from './user.js';

export interface NewUser {
  username: string;
  email: string;
  passwordHash: string | null;
  fullName?: string | null;
  avatarUrl?: string | null;
  isVerified?: boolean;
  role?: Role;
  plan?: PlanName;
}

export interface ProfileChanges {
  fullName?: string | null;
  avatarUrl?: string | null;
  preferredRegion?: string | null;
}

export interface AdminChanges {
  plan?: PlanName;
  role?: Role;
  isActive?: boolean;
}

export interface Page<T> {
  items: T[];
  total: number;
  page: number;
  pageSize: number;
}

/** Which unique field a duplicate-key error was about. */
export type DuplicateField = 'username' | 'email';

export class DuplicateUserError extends Error {
  constructor(readonly field: DuplicateField) {
    super(`duplicate ${field}`);
  }
}

type LeanUser = UserRecord & { _id: Types.ObjectId };

function toUser(record: LeanUser): User {
  return {
    id: record._id.toHexString(),
    username: record.username,
    email: record.email,
    passwordHash: record.password_hash ?? null,
    fullName: record.full_name ?? null,
    avatarUrl: record.avatar_url ?? null,
    preferredRegion: record.preferred_region ?? null,
    isActive: record.is_active,
    isVerified: record.is_verified,
    role: record.role,
    plan: record.subscription_plan,
    failedLoginCount: record.failed_login_count ?? 0,
    lockedUntil: record.locked_until ?? null,
    lastLogin: record.last_login ?? null,
    deletionRequestedAt: record.deletion_requested_at ?? null,
    createdAt: record.created_at,
    updatedAt: record.updated_at,
  };
}

const asUser = leanMapper(toUser);

function duplicateField(error: unknown): DuplicateField {
  const text = `${JSON.stringify((error as { keyPattern?: unknown }).keyPattern ?? {})} ${(error as Error).message}`;
  return text.includes('username') ? 'username' : 'email';
}

const escapeRegex = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Persistence of accounts. Everything it returns is a plain `User`. Every write of an existing
 * record is announced (`user.changed`, on every replica) once it is stored, here, where no write
 * path can forget it: copies of the user held elsewhere (`PrincipalCache`) are dropped.
 */
@Injectable()
export class UsersRepository {
  constructor(
    @InjectModel(UserRecord.name) private readonly users: Model<UserRecord>,
    private readonly events: DomainEvents,
  ) {}

  /** Tells every replica that copies of this user are stale. */
  private async changed<T>(userId: string, result: T): Promise<T> {
    if (result !== null) await this.events.emit('user.changed', { userId });
    return result;
  }

  async create(input: NewUser): Promise<User> {
    try {
      const created = await this.users.create({
        username: input.username,
        username_normalized: normalizeUsername(input.username),
        email: normalizeEmail(input.email),
        password_hash: input.passwordHash,
        full_name: input.fullName ?? null,
        avatar_url: input.avatarUrl ?? null,
        is_verified: input.isVerified ?? false,
        role: input.role ?? 'user',
        subscription_plan: input.plan ?? 'free',
      });
      return toUser(created.toObject<LeanUser>());
    } catch (error) {
      if (isDuplicateKeyError(error)) throw new DuplicateUserError(duplicateField(error));
      throw error;
    }
  }

  async findById(id: string): Promise<User | null> {
    return asUser.byId(id, (_id) => this.users.findById(_id));
  }

  async findByEmail(email: string): Promise<User | null> {
    return asUser.one(this.users.findOne({ email: normalizeEmail(email) }));
  }

  async findByUsername(username: string): Promise<User | null> {
    return asUser.one(this.users.findOne({ username_normalized: normalizeUsername(username) }));
  }

  /** Usernames cannot contain `@`, so the presence of one decides which field is meant. */
  async findByUsernameOrEmail(login: string): Promise<User | null> {
    return login.includes('@') ? this.findByEmail(login) : this.findByUsername(login);
  }

  async existing(username: string, email: string): Promise<{ username: boolean; email: boolean }> {
    const [byName, byEmail] = await Promise.all([
      this.users.exists({ username_normalized: normalizeUsername(username) }).exec(),
      this.users.exists({ email: normalizeEmail(email) }).exec(),
    ]);
    return { username: byName !== null, email: byEmail !== null };
  }

  private async update(id: string, set: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<User | null> {
    return this.changed(
      id,
      await asUser.byId(id, (_id) => this.users.findOneAndUpdate({ _id, ...extra }, { $set: set }, { returnDocument: 'after' })),
    );
  }

  updateProfile(id: string, changes: ProfileChanges): Promise<User | null> {
    const set: Record<string, unknown> = {};
    if (changes.fullName !== undefined) set.full_name = changes.fullName;
    if (changes.avatarUrl !== undefined) set.avatar_url = changes.avatarUrl;
    if (changes.preferredRegion !== undefined) set.preferred_region = changes.preferredRegion;
    return this.update(id, set);
  }

  updateAsAdmin(id: string, changes: AdminChanges): Promise<User | null> {
    const set: Record<string, unknown> = {};
    if (changes.plan !== undefined) set.subscription_plan = changes.plan;
    if (changes.role !== undefined) set.role = changes.role;
    if (changes.isActive !== undefined) set.is_active = changes.isActive;
    return this.update(id, set);
  }

  setPasswordHash(id: string, passwordHash: string): Promise<User | null> {
    return this.update(id, { password_hash: passwordHash, failed_login_count: 0, locked_until: null });
  }

  clearPassword(id: string): Promise<User | null> {
    return this.update(id, { password_hash: null });
  }

  markVerified(id: string): Promise<User | null> {
    return this.update(id, { is_verified: true });
  }

  /**
   * Counts one failed sign-in atomically and locks the account when the count reaches the
   * threshold. Parallel failures are each counted (single-document atomic $inc).
   */
  async recordFailedLogin(id: string, now: Date, threshold: number, lockSeconds: number): Promise<User | null> {
    const counted = await asUser.byId(id, (_id) =>
      this.users.findOneAndUpdate({ _id }, { $inc: { failed_login_count: 1 } }, { returnDocument: 'after' }),
    );
    if (!counted) return null;
    await this.changed(id, counted);
    if (counted.failedLoginCount < threshold || (counted.lockedUntil && counted.lockedUntil > now)) return counted;
    const lockedUntil = new Date(now.getTime() + lockSeconds * 1000);
    const locked = await asUser.byId(id, (_id) =>
      this.users.findOneAndUpdate(
        { _id, $or: [{ locked_until: null }, { locked_until: { $lte: now } }] },
        { $set: { locked_until: lockedUntil } },
        { returnDocument: 'after' },
      ),
    );
    if (locked) return this.changed(id, locked);
    // A parallel failure set the lock first: report the account as it is now.
    return this.findById(id);
  }

  /** Clears an expired lock and its failure count; a no-op if another request already did. */
  async clearExpiredLock(id: string, lockedUntil: Date): Promise<User | null> {
    return this.update(id, { failed_login_count: 0, locked_until: null }, { locked_until: lockedUntil });
  }

  recordSuccessfulLogin(id: string, now: Date): Promise<User | null> {
    return this.update(id, { failed_login_count: 0, locked_until: null, last_login: now });
  }

  requestDeletion(id: string, now: Date): Promise<User | null> {
    return this.update(id, { is_active: false, deletion_requested_at: now });
  }

  async delete(id: string): Promise<void> {
    const _id = parseObjectId(id);
    if (!_id) return;
    await this.users.deleteOne({ _id }).exec();
    await this.changed(id, true);
  }

  async pendingDeletions(before: Date, limit: number): Promise<User[]> {
    return asUser.many(this.users.find({ deletion_requested_at: { $ne: null, $lte: before } }).limit(limit));
  }

  async search(query: string | undefined, page: number, pageSize: number): Promise<Page<User>> {
    const filter = query
      ? {
          $or: [
            { username_normalized: { $regex: escapeRegex(query.toLowerCase()) } },
            { email: { $regex: escapeRegex(query.toLowerCase()) } },
          ],
        }
      : {};
    const [items, total] = await Promise.all([
      asUser.many(
        this.users
          .find(filter)
          .sort({ created_at: -1, _id: -1 })
          .skip((page - 1) * pageSize)
          .limit(pageSize),
      ),
      this.users.countDocuments(filter).exec(),
    ]);
    return { items, total, page, pageSize };
  }

  async countAdmins(): Promise<number> {
    return this.users.countDocuments({ role: 'admin', is_active: true }).exec();
  }
}
