import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Model } from 'mongoose';
import { leanMapper } from '../database/lean-mapper.js';
import { CodePurpose, OneTimeCodeRecord } from './schemas/one-time-code.schema.js';

export interface OneTimeCode {
  userId: string;
  purpose: CodePurpose;
  digest: string;
  expiresAt: Date;
  failedAttempts: number;
  consumedAt: Date | null;
  sentAt: Date;
  sendsInWindow: number;
  windowStartedAt: Date;
}

const idOf = (purpose: CodePurpose, userId: string): string => `${purpose}:${userId}`;

function toCode(record: OneTimeCodeRecord): OneTimeCode {
  return {
    userId: record.user_id,
    purpose: record.purpose,
    digest: record.digest,
    expiresAt: record.expires_at,
    failedAttempts: record.failed_attempts,
    consumedAt: record.consumed_at ?? null,
    sentAt: record.sent_at,
    sendsInWindow: record.sends_in_window,
    windowStartedAt: record.window_started_at,
  };
}

const asCode = leanMapper(toCode);

@Injectable()
export class OneTimeCodesRepository {
  constructor(@InjectModel(OneTimeCodeRecord.name) private readonly codes: Model<OneTimeCodeRecord>) {}

  async find(purpose: CodePurpose, userId: string): Promise<OneTimeCode | null> {
    return asCode.one(this.codes.findById(idOf(purpose, userId)));
  }

  async findByDigest(purpose: CodePurpose, digest: string): Promise<OneTimeCode | null> {
    return asCode.one(this.codes.findOne({ purpose, digest }));
  }

  /** Replaces the user's code for this purpose; the send counters carry the throttle state. */
  async put(input: {
    userId: string;
    purpose: CodePurpose;
    digest: string;
    expiresAt: Date;
    sentAt: Date;
    sendsInWindow: number;
    windowStartedAt: Date;
  }): Promise<void> {
    await this.codes
      .replaceOne(
        { _id: idOf(input.purpose, input.userId) },
        {
          _id: idOf(input.purpose, input.userId),
          user_id: input.userId,
          purpose: input.purpose,
          digest: input.digest,
          expires_at: input.expiresAt,
          failed_attempts: 0,
          consumed_at: null,
          sent_at: input.sentAt,
          sends_in_window: input.sendsInWindow,
          window_started_at: input.windowStartedAt,
        },
        { upsert: true },
      )
      .exec();
  }

  /** Counts a wrong attempt atomically and returns the new count. */
  async recordFailure(purpose: CodePurpose, userId: string): Promise<number> {
    const updated = await asCode.one(
      this.codes.findOneAndUpdate(
        { _id: idOf(purpose, userId), consumed_at: null },
        { $inc: { failed_attempts: 1 } },
        { returnDocument: 'after' },
      ),
    );
    return updated?.failedAttempts ?? Number.POSITIVE_INFINITY;
  }

  /** Marks the code used if it still is the same unused code. Exactly one caller wins. */
  async consume(purpose: CodePurpose, userId: string, digest: string, now: Date): Promise<boolean> {
    const result = await this.codes
      .updateOne({ _id: idOf(purpose, userId), digest, consumed_at: null, expires_at: { $gt: now } }, { $set: { consumed_at: now } })
      .exec();
    return result.modifiedCount === 1;
  }

  async deleteAllForUser(userId: string): Promise<void> {
    await this.codes.deleteMany({ user_id: userId }).exec();
  }

  async purge(before: Date): Promise<number> {
    const result = await this.codes.deleteMany({ expires_at: { $lt: before } }).exec();
    return result.deletedCount;
  }
}
