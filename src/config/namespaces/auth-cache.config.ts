import { defineNamespace } from './define-namespace.js';

/** The sessions and users authenticated requests reuse: AUTH_CACHE_TTL_SECONDS, AUTH_CACHE_MAX_ENTRIES (docs/scaling.md). */
export interface AuthCacheConfig {
  /** How long an entry may be served, whatever events say (a safety net); 0 turns the cache off. */
  readonly ttlMs: number;
  /** Entries kept per cache (sessions, users); the least recently used go first. */
  readonly maxEntries: number;
}

export const authCacheConfig = defineNamespace('authCache', (env): AuthCacheConfig => ({
  ttlMs: (env.AUTH_CACHE_TTL_SECONDS ?? 30) * 1000,
  maxEntries: env.AUTH_CACHE_MAX_ENTRIES ?? 10_000,
}));
