import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Model } from 'mongoose';
import { Clock } from '../../common/clock/clock.js';
import { GoogleWebHandoffRecord } from './schemas/google-web-handoff.schema.js';

/** How long the console has to collect a sign-in after Google sent the browser back. */
export const HANDOFF_TTL_MS = 60_000;

const CODE_PATTERN = /^[A-Za-z0-9_-]{43}$/;

const derive = (label: string, code: string): Buffer => createHash('sha256').update(`${label}:${code}`).digest();

/**
 * One-time codes that hand a finished browser sign-in to the console: the callback `put`s the
 * sign-in answer and puts the code in the redirect's fragment (never sent to a server, so never in
 * a request log); the console `take`s it with a POST, once, within a minute. Kept in MongoDB so any
 * replica can answer the POST.
 */
@Injectable()
export class GoogleWebHandoffs {
  constructor(
    @InjectModel(GoogleWebHandoffRecord.name) private readonly handoffs: Model<GoogleWebHandoffRecord>,
    private readonly clock: Clock,
  ) {}

  /** Stores `answer` and returns the code (32 random bytes, base64url) that collects it. */
  async put(answer: unknown): Promise<string> {
    const now = this.clock.now();
    const code = randomBytes(32).toString('base64url');
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', derive('key', code), iv);
    const ciphertext = Buffer.concat([cipher.update(JSON.stringify(answer), 'utf8'), cipher.final()]);
    const sealed = [iv, cipher.getAuthTag(), ciphertext].map((part) => part.toString('base64url')).join('.');
    // Expired, uncollected hand-offs go here rather than in a sweeper: they are rare and small.
    await this.handoffs.deleteMany({ expires_at: { $lt: now } }).exec();
    await this.handoffs.create({
      _id: derive('id', code).toString('base64url'),
      sealed,
      expires_at: new Date(now.getTime() + HANDOFF_TTL_MS),
    });
    return code;
  }

  /** The stored answer, removed as it is read; null for an unknown, used or expired code. */
  async take(code: string): Promise<unknown> {
    if (!CODE_PATTERN.test(code)) return null;
    const record = await this.handoffs
      .findOneAndDelete({ _id: derive('id', code).toString('base64url'), expires_at: { $gt: this.clock.now() } })
      .lean()
      .exec();
    if (!record) return null;
    const [iv, tag, ciphertext] = record.sealed.split('.').map((part) => Buffer.from(part, 'base64url'));
    if (!iv || !tag || !ciphertext) return null;
    const decipher = createDecipheriv('aes-256-gcm', derive('key', code), iv);
    decipher.setAuthTag(tag);
    return JSON.parse(Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8')) as unknown;
  }
}
