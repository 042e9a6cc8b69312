import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Model } from 'mongoose';
import { leanMapper } from '../database/lean-mapper.js';
import { SessionRecord } from './schemas/session.schema.js';

export interface Session {
  id: string;
  userId: string;
  currentJtiDigest: string;
  previousJtiDigest: string | null;
  rotatedAt: Date | null;
  createdAt: Date;
  lastUsedAt: Date;
  expiresAt: Date;
  revokedAt: Date | null;
  revokeReason: string | null;
  userAgent: string | null;
  ip: string | null;
}

function toSession(record: SessionRecord): Session {
  return {
    id: record._id,
    userId: record.user_id,
    currentJtiDigest: record.current_jti_digest,
    previousJtiDigest: record.previous_jti_digest ?? null,
    rotatedAt: record.rotated_at ?? null,
    createdAt: record.created_at,
    lastUsedAt: record.last_used_at,
    expiresAt: record.expires_at,
    revokedAt: record.revoked_at ?? null,
    revokeReason: record.revoke_reason ?? null,
    userAgent: record.user_agent ?? null,
    ip: record.ip ?? null,
  };
}

const asSession = leanMapper(toSession);

/** Refresh-token families. Every state change is one conditional single-document update. */
@Injectable()
export class SessionsRepository {
  constructor(@InjectModel(SessionRecord.name) private readonly sessions: Model<SessionRecord>) {}

  async create(input: {
    id: string;
    userId: string;
    jtiDigest: string;
    now: Date;
    expiresAt: Date;
    userAgent: string | null;
    ip: string | null;
  }): Promise<Session> {
    const created = await this.sessions.create({
      _id: input.id,
      user_id: input.userId,
      current_jti_digest: input.jtiDigest,
      created_at: input.now,
      last_used_at: input.now,
      expires_at: input.expiresAt,
      user_agent: input.userAgent,
      ip: input.ip,
    });
    return toSession(created.toObject());
  }

  async findById(id: string): Promise<Session | null> {
    return asSession.one(this.sessions.findById(id));
  }

  /** Moves the family from `presented` to `next` if `presented` is still current. Exactly one caller wins. */
  async rotate(id: string, presented: string, next: string, now: Date, expiresAt: Date): Promise<Session | null> {
    return asSession.one(
      this.sessions.findOneAndUpdate(
        { _id: id, current_jti_digest: presented, revoked_at: null, expires_at: { $gt: now } },
        { $set: { current_jti_digest: next, previous_jti_digest: presented, rotated_at: now, last_used_at: now, expires_at: expiresAt } },
        { returnDocument: 'after' },
      ),
    );
  }

  /**
   * The grace retry: `presented` was rotated away moments ago and the client never saw the answer.
   * Issues `next` as the new current token, keeping `presented` as the previous one.
   */
  async rotateFromPrevious(
    id: string,
    presented: string,
    current: string,
    next: string,
    now: Date,
    expiresAt: Date,
  ): Promise<Session | null> {
    return asSession.one(
      this.sessions.findOneAndUpdate(
        { _id: id, previous_jti_digest: presented, current_jti_digest: current, revoked_at: null },
        { $set: { current_jti_digest: next, last_used_at: now, expires_at: expiresAt } },
        { returnDocument: 'after' },
      ),
    );
  }

  async revoke(id: string, now: Date, reason: string): Promise<void> {
    await this.sessions.updateOne({ _id: id, revoked_at: null }, { $set: { revoked_at: now, revoke_reason: reason } }).exec();
  }

  async revokeAllForUser(userId: string, now: Date, reason: string, exceptSessionId?: string): Promise<number> {
    const filter = exceptSessionId
      ? { user_id: userId, revoked_at: null, _id: { $ne: exceptSessionId } }
      : { user_id: userId, revoked_at: null };
    const result = await this.sessions.updateMany(filter, { $set: { revoked_at: now, revoke_reason: reason } }).exec();
    return result.modifiedCount;
  }

  async deleteAllForUser(userId: string): Promise<void> {
    await this.sessions.deleteMany({ user_id: userId }).exec();
  }

  /** Scheduled clean-up: sessions that expired, or were revoked, before `before`. */
  async purge(before: Date): Promise<number> {
    const result = await this.sessions
      .deleteMany({ $or: [{ expires_at: { $lt: before } }, { revoked_at: { $ne: null, $lt: before } }] })
      .exec();
    return result.deletedCount;
  }
}
