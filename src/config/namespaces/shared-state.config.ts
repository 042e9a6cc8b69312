import { defineNamespace } from './define-namespace.js';

/** State shared by the replicas: REDIS_URL, REDIS_KEY_PREFIX (docs/scaling.md). */
export interface SharedStateConfig {
  /** The Redis every replica shares; null: one process, everything in its memory. */
  readonly redisUrl: string | null;
  /** Prepended to every key and channel this installation uses in Redis. */
  readonly keyPrefix: string;
}

export const sharedStateConfig = defineNamespace('sharedState', (env): SharedStateConfig => ({
  redisUrl: env.REDIS_URL ?? null,
  keyPrefix: env.REDIS_KEY_PREFIX ?? 'devpocket:',
}));
