import { Injectable, Logger } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Model, Types } from 'mongoose';
import { Clock } from '../common/clock/clock.js';
import { AuditEventRecord } from './schemas.js';

export const AUDIT_ACTIONS = [
  'auth.register',
  'auth.login',
  'auth.login_failed',
  'auth.lockout',
  'auth.google_login',
  'auth.google_linked',
  'auth.logout',
  'auth.refresh_reuse_detected',
  'auth.password_changed',
  'auth.password_reset_requested',
  'auth.password_reset',
  'auth.email_verified',
  'user.deleted',
  'admin.user_updated',
  'admin.user_created',
  'admin.template_created',
  'admin.template_updated',
  'admin.template_deleted',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditEntry {
  action: AuditAction;
  actorId?: string | null;
  actorUsername?: string | null;
  targetId?: string | null;
  target?: string | null;
  ip?: string | null;
  details?: Record<string, unknown>;
}

export interface AuditEvent {
  id: string;
  action: string;
  actorId: string | null;
  actorUsername: string | null;
  targetId: string | null;
  target: string | null;
  ip: string | null;
  details: Record<string, unknown>;
  at: Date;
}

/**
 * The audit log. Recording never fails the action being audited: a write error is logged.
 * Entries never hold passwords, tokens or codes.
 */
@Injectable()
export class AuditService {
  private readonly logger = new Logger('Audit');

  constructor(
    @InjectModel(AuditEventRecord.name) private readonly events: Model<AuditEventRecord>,
    private readonly clock: Clock,
  ) {}

  async record(entry: AuditEntry): Promise<void> {
    try {
      await this.events.create({
        action: entry.action,
        actor_id: entry.actorId ?? null,
        actor_username: entry.actorUsername ?? null,
        target_id: entry.targetId ?? null,
        target: entry.target ?? null,
        ip: entry.ip ?? null,
        details: entry.details ?? {},
        at: this.clock.now(),
      });
    } catch (error) {
      this.logger.error(`Could not record audit event ${entry.action}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  async list(
    filter: { action?: string; actorId?: string; targetId?: string },
    page: number,
    pageSize: number,
  ): Promise<{ items: AuditEvent[]; total: number }> {
    const query: Record<string, string> = {};
    if (filter.action) query.action = filter.action;
    if (filter.actorId) query.actor_id = filter.actorId;
    if (filter.targetId) query.target_id = filter.targetId;
    const [records, total] = await Promise.all([
      this.events
        .find(query)
        .sort({ at: -1, _id: -1 })
        .skip((page - 1) * pageSize)
        .limit(pageSize)
        .lean<(AuditEventRecord & { _id: Types.ObjectId })[]>()
        .exec(),
      this.events.countDocuments(query).exec(),
    ]);
    return {
      total,
      items: records.map((r) => ({
        id: r._id.toHexString(),
        action: r.action,
        actorId: r.actor_id,
        actorUsername: r.actor_username,
        targetId: r.target_id,
        target: r.target,
        ip: r.ip,
        details: r.details ?? {},
        at: r.at,
      })),
    };
  }
}
