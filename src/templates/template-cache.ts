import { Injectable, OnModuleInit } from '@nestjs/common';
import { deepFreeze } from '../common/cache/deep-freeze.js';
import { LoadingCache } from '../common/cache/loading-cache.js';
import { DomainEvents } from '../common/events/domain-events.js';
import type { Template } from './template.js';
import { TemplatesRepository } from './templates.repository.js';

/** A template copy is served at most this long whatever events say: a safety net for writes no event told of. */
const TTL_MS = 60_000;
const MAX_ENTRIES = 1_000;

/**
 * Templates by id, kept in this process for the reads that happen on every request (the
 * environment list reads each environment's template ports). Every write of a stored template
 * (`TemplatesRepository.replace` / `softDelete`, from the admin API or a replica's loader) emits
 * `template.changed`, which invalidates it here on every replica; while those events cannot be
 * trusted (Redis configured but unreachable) every read goes to the database (`LoadingCache`).
 */
@Injectable()
export class TemplateCache implements OnModuleInit {
  private readonly cache: LoadingCache<string, Template>;

  constructor(
    private readonly events: DomainEvents,
    private readonly repository: TemplatesRepository,
  ) {
    this.cache = new LoadingCache({
      maxEntries: MAX_ENTRIES,
      ttlMs: TTL_MS,
      trust: events.cacheTrust,
    });
  }

  onModuleInit(): void {
    this.events.on('template.changed', ({ templateId }) => this.cache.invalidate(templateId), { everyReplica: true });
  }

  /**
   * Any template by id, deleted ones included, as `TemplatesService.findById`. Shared by every
   * caller, so frozen (deeply) once when loaded rather than copied on every read: a caller that
   * tried to change it would throw instead of changing what others are served.
   */
  findById(id: string): Promise<Template | null> {
    return this.cache.get(id, async (key) => {
      const template = await this.repository.findById(key);
      return template && deepFreeze(template);
    });
  }
}
