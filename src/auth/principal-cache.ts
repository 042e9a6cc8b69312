import { Inject, Injectable, OnModuleInit, Optional } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { Counter } from 'prom-client';
import { type CacheCounts, LoadingCache } from '../common/cache/loading-cache.js';
import { DomainEvents } from '../common/events/domain-events.js';
import { MetricsService } from '../common/metrics/metrics.service.js';
import { authCacheConfig } from '../config/namespaces/auth-cache.config.js';
import type { User } from '../users/user.js';
import { UsersRepository } from '../users/users.repository.js';
import { Session, SessionsRepository } from './sessions.repository.js';

/** What authentication needs of a session: whose it is and whether it ended. */
export type SessionState = Pick<Session, 'id' | 'userId' | 'revokedAt'>;

/**
 * The sessions and users that authenticated requests read, kept in this process so that a request
 * needs no database read once its session and user were read by an earlier one
 * (`AuthService.principalFor`). Revocation stays instant because every change invalidates them,
 * on every replica, through domain events (handlers `{ everyReplica: true }`):
 *
 * | Event | Invalidates |
 * | --- | --- |
 * | `auth.sessions_revoked` (sign-out, password change or reset, reuse, deactivation, Google takeover) | the session(s) |
 * | `user.changed` (every write of a user record: profile, role, plan, active flag, password, sign-in…) | the user |
 * | `user.deactivated` | the user |
 * | `user.deleting` | the user and every session of it |
 *
 * When invalidations cannot be trusted (Redis configured but its subscription is down, until it is
 * back), every read goes to the database (`LoadingCache` with `DomainEvents.inSync`). Entries live
 * at most AUTH_CACHE_TTL_SECONDS (30 s) whatever happens: a safety net for writes made where no
 * event is heard (a CLI without Redis, another installation's tools), not the mechanism.
 */
@Injectable()
export class PrincipalCache implements OnModuleInit {
  private readonly users: LoadingCache<string, User>;
  private readonly sessions: LoadingCache<string, SessionState>;

  constructor(
    @Inject(authCacheConfig.KEY) config: ConfigType<typeof authCacheConfig>,
    private readonly events: DomainEvents,
    private readonly usersRepository: UsersRepository,
    private readonly sessionsRepository: SessionsRepository,
    @Optional() metrics?: MetricsService,
  ) {
    const options = {
      maxEntries: config.maxEntries,
      ttlMs: config.ttlMs,
      trust: events.cacheTrust,
    };
    this.users = new LoadingCache(options);
    this.sessions = new LoadingCache(options);
    if (metrics) this.registerMetrics(metrics);
  }

  onModuleInit(): void {
    const everyReplica = { everyReplica: true };
    this.events.on(
      'auth.sessions_revoked',
      ({ userId, sessionId, exceptSessionId }) => {
        if (sessionId !== undefined) this.sessions.invalidate(sessionId);
        else this.sessions.invalidateWhere((session) => session.userId === userId && session.id !== exceptSessionId);
      },
      everyReplica,
    );
    this.events.on('user.changed', ({ userId }) => this.users.invalidate(userId), everyReplica);
    this.events.on('user.deactivated', ({ userId }) => this.users.invalidate(userId), everyReplica);
    this.events.on(
      'user.deleting',
      ({ userId }) => {
        this.users.invalidate(userId);
        this.sessions.invalidateWhere((session) => session.userId === userId);
      },
      everyReplica,
    );
  }

  /** The user as stored (a copy: callers may not change what others are served). */
  async user(id: string): Promise<User | null> {
    const user = await this.users.get(id, (key) => this.usersRepository.findById(key));
    return user && { ...user };
  }

  async session(id: string): Promise<SessionState | null> {
    return this.sessions.get(id, async (key) => {
      const session = await this.sessionsRepository.findById(key);
      return session && { id: session.id, userId: session.userId, revokedAt: session.revokedAt };
    });
  }

  /** What each cache did since the process started. */
  get counts(): { users: CacheCounts; sessions: CacheCounts } {
    return { users: { ...this.users.counts }, sessions: { ...this.sessions.counts } };
  }

  private registerMetrics(metrics: MetricsService): void {
    const caches = { user: this.users, session: this.sessions };
    const reported = new Map<string, number>();
    new Counter({
      name: 'devpocket_auth_cache_lookups_total',
      help: 'Session and user look-ups of authenticated requests: served from memory (hit), read from the database (miss), or read because invalidations could not be trusted (bypassed)',
      labelNames: ['cache', 'result'] as const,
      registers: [metrics.registry],
      collect() {
        for (const [cache, loading] of Object.entries(caches)) {
          for (const result of ['hit', 'miss', 'bypassed'] as const) {
            const total = loading.counts[result === 'hit' ? 'hits' : result === 'miss' ? 'misses' : 'bypassed'];
            const key = `${cache}/${result}`;
            this.inc({ cache, result }, total - (reported.get(key) ?? 0));
            reported.set(key, total);
          }
        }
      },
    });
  }
}
