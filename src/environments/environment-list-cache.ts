import { Injectable, OnModuleInit } from '@nestjs/common';
import { type DeepReadonly, deepFreeze } from '../common/cache/deep-freeze.js';
import { type CacheCounts, LoadingCache } from '../common/cache/loading-cache.js';
import { DomainEvents } from '../common/events/domain-events.js';
import type { Environment } from './environment.js';
import { EnvironmentsRepository } from './environments.repository.js';

/** An environment as the list cache serves it: one frozen copy shared by every caller. */
export type ListedEnvironment = DeepReadonly<Environment>;

/**
 * A list is served at most this long whatever events say: a safety net for writes no event told
 * of (another installation's tools on the same database), not the mechanism.
 */
const TTL_MS = 30_000;
/** Users whose lists are kept; the least recently listed goes first. About 3 KB per user with 5 environments. */
const MAX_ENTRIES = 5_000;

/**
 * Each user's environments, newest first, as `GET /api/v1/environments` lists them, kept in this
 * process so that listing needs no database read once the list was read (the read, a FerretDB
 * `find`, cost several times the whole rest of the request). Every write of an environment record
 * is announced by `EnvironmentsRepository` (`environment.written`, with its owner), which drops
 * that owner's list here on every replica (`{ everyReplica: true }`); while those events cannot be
 * trusted (Redis configured but its subscription down) every list is read from the database, and
 * what was read before such a gap is never served after it (`LoadingCache`, `DomainEvents.inSync`).
 *
 * What it serves is frozen (deeply) once when loaded: callers map it, never change it.
 */
@Injectable()
export class EnvironmentListCache implements OnModuleInit {
  private readonly cache: LoadingCache<string, readonly ListedEnvironment[]>;

  constructor(
    private readonly events: DomainEvents,
    private readonly repository: EnvironmentsRepository,
  ) {
    this.cache = new LoadingCache({
      maxEntries: MAX_ENTRIES,
      ttlMs: TTL_MS,
      trust: events.cacheTrust,
    });
  }

  onModuleInit(): void {
    this.events.on('environment.written', ({ userId }) => this.cache.invalidate(userId), { everyReplica: true });
  }

  /** The user's environments, newest first (terminated ones until purged), as `EnvironmentsRepository.listForUser`. */
  async listForUser(userId: string): Promise<readonly ListedEnvironment[]> {
    const list = await this.cache.get(userId, async (key) => deepFreeze(await this.repository.listForUser(key)));
    // Never null: a list is stored even when empty, and a loader's null is not produced here.
    return list ?? [];
  }

  /** What the cache did since the process started. */
  get counts(): CacheCounts {
    return { ...this.cache.counts };
  }
}
