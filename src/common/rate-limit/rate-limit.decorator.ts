import { SetMetadata } from '@nestjs/common';
import type { Request } from 'express';

/** How requests are grouped for a limit: by client IP, or by a key taken from the request (e.g. the account). */
export type RateLimitKey = 'ip' | ((req: Request) => string | undefined);

/**
 * What a limit does while Redis, which holds the counters every replica shares, cannot be reached
 * (REDIS_URL set; docs/operations.md#redis-outage):
 * - `refuse`: the request answers 503 `shared_state_unavailable`. For limits that are a security
 *   control (sign-in, sign-up, passwords, mail): counted per replica, they would silently allow
 *   as many attempts again per replica;
 * - `count-locally`: counted in this process's memory until Redis is back, each replica on its own.
 */
export type SharedStateOutage = 'refuse' | 'count-locally';

export interface RateLimitPolicy {
  /** Unique per route; appears in logs and keeps counters apart. */
  name: string;
  limit: number;
  ttlSeconds: number;
  /** How long a caller stays blocked once over the limit; defaults to ttlSeconds. */
  blockSeconds?: number;
  key: RateLimitKey;
  /** While Redis is unreachable: `refuse` (the default, 503) or `count-locally`. */
  whenSharedStateDown?: SharedStateOutage;
}

export const RATE_LIMIT_POLICIES = Symbol('rate-limit-policies');

/**
 * Adds stricter limits to a route on top of the global default, e.g.
 * `@RateLimit({ name: 'login-ip', limit: 20, ttlSeconds: 60, key: 'ip' },
 *             { name: 'login-account', limit: 10, ttlSeconds: 900, key: (req) => req.body?.username_or_email })`.
 * A policy whose key function returns undefined does not apply to that request.
 */
export const RateLimit = (...policies: RateLimitPolicy[]): MethodDecorator & ClassDecorator => SetMetadata(RATE_LIMIT_POLICIES, policies);
