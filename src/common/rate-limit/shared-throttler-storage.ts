import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import { type ThrottlerStorage, ThrottlerStorageService } from '@nestjs/throttler';
import { AppError } from '../errors/app-error.js';
import { CommonError } from '../errors/error-code.js';
import { SharedState } from '../shared-state/shared-state.js';
import type { SharedStateOutage } from './rate-limit.decorator.js';

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/** The name of the global budget per client IP (the throttler `default` of RateLimitModule). */
export const GLOBAL_THROTTLER = 'default';

/** Seconds a refused request is told to wait (as for the database, `Retry-After: 5`). */
const RETRY_AFTER_SECONDS = 5;

/**
 * Where every rate-limit counter lives (the `ThrottlerStorage` of RateLimitModule, for the HTTP
 * guard and the WebSocket upgrades alike):
 *
 * - **without Redis**, in this process's memory: @nestjs/throttler's own storage, as before;
 * - **with Redis**, in Redis, shared by every replica: `@nest-lab/throttler-storage-redis`, one
 *   Lua script per hit (count, expiry and block in one atomic step), on the `SharedState`
 *   connection (keys under REDIS_KEY_PREFIX). A limit reached through one replica holds on all.
 *
 * While Redis cannot be reached (the connection is down, or a call fails or takes over 1 s), each
 * limit does what its `whenSharedStateDown` says: the global budget per IP counts locally (the
 * API keeps serving, each replica enforcing the budget on its own), a `@RateLimit` policy refuses
 * with 503 `shared_state_unavailable` unless it says `count-locally`. Local counts start afresh
 * and are dropped when Redis is back (docs/operations.md#redis-outage).
 */
@Injectable()
export class SharedThrottlerStorage implements ThrottlerStorage, OnApplicationShutdown {
  private readonly logger = new Logger('RateLimit');
  private readonly local = new ThrottlerStorageService();
  private readonly shared: ThrottlerStorageRedisService | null;
  private failing = false;

  constructor(private readonly state: SharedState) {
    this.shared = state.client ? new ThrottlerStorageRedisService(state.client) : null;
  }

  /**
   * Counts one hit of `key`. `whenDown` applies only while Redis is unreachable; the guard passes a
   * policy's own, and @nestjs/throttler, which calls with five arguments, means the global budget.
   */
  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
    whenDown: SharedStateOutage = throttlerName === GLOBAL_THROTTLER ? 'count-locally' : 'refuse',
  ): Promise<ThrottlerStorageRecord> {
    if (!this.shared) return this.local.increment(key, ttl, limit, blockDuration, throttlerName);
    if (this.state.available) {
      try {
        const record = await this.shared.increment(key, ttl, limit, blockDuration, throttlerName);
        this.failing = false;
        return record;
      } catch (error) {
        this.report(error);
      }
    } else {
      this.report(new Error('the connection is down'));
    }
    if (whenDown === 'count-locally') return this.local.increment(key, ttl, limit, blockDuration, throttlerName);
    throw new AppError(
      CommonError.SharedStateUnavailable,
      `This limit is shared by every server through Redis, which cannot be reached; try again in ${RETRY_AFTER_SECONDS} s`,
      { headers: { 'Retry-After': String(RETRY_AFTER_SECONDS) } },
    );
  }

  onApplicationShutdown(): void {
    this.local.onApplicationShutdown();
  }

  private report(error: unknown): void {
    if (this.failing) return;
    this.failing = true;
    this.logger.warn(
      `Rate-limit counters cannot reach Redis (${error instanceof Error ? error.message : String(error)}): ` +
        'the global budget counts in this process, routes with their own limits answer 503 until it is back',
    );
  }
}
