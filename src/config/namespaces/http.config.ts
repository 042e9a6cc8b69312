import { defineNamespace, list } from './define-namespace.js';

/** HTTP: CORS_ORIGINS, TRUSTED_PROXIES and the global rate limit (RATE_LIMIT_TTL_SECONDS, RATE_LIMIT_MAX). */
export interface HttpConfig {
  /** Exact origins allowed by CORS; empty disables CORS headers entirely; ['*'] allows any origin. */
  readonly corsOrigins: string[];
  /** Express `trust proxy` values: addresses/CIDRs/keywords whose X-Forwarded-For is honoured. */
  readonly trustedProxies: string[];
  readonly rateLimitTtlMs: number;
  readonly rateLimitMax: number;
}

export const httpConfig = defineNamespace('http', (env): HttpConfig => ({
  corsOrigins: list(env.CORS_ORIGINS),
  trustedProxies: list(env.TRUSTED_PROXIES),
  rateLimitTtlMs: (env.RATE_LIMIT_TTL_SECONDS ?? 60) * 1000,
  rateLimitMax: env.RATE_LIMIT_MAX ?? 600,
}));
