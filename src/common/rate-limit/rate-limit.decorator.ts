import { SetMetadata } from '@nestjs/common';
import type { Request } from 'express';

/** How requests are grouped for a limit: by client IP, or by a key taken from the request (e.g. the account). */
export type RateLimitKey = 'ip' | ((req: Request) => string | undefined);

export interface RateLimitPolicy {
  /** Unique per route; appears in logs and keeps counters apart. */
  name: string;
  limit: number;
  ttlSeconds: number;
  /** How long a caller stays blocked once over the limit; defaults to ttlSeconds. */
  blockSeconds?: number;
  key: RateLimitKey;
}

export const RATE_LIMIT_POLICIES = Symbol('rate-limit-policies');

/**
 * Adds stricter limits to a route on top of the global default, e.g.
 * `@RateLimit({ name: 'login-ip', limit: 20, ttlSeconds: 60, key: 'ip' },
 *             { name: 'login-account', limit: 10, ttlSeconds: 900, key: (req) => req.body?.username_or_email })`.
 * A policy whose key function returns undefined does not apply to that request.
 */
export const RateLimit = (...policies: RateLimitPolicy[]): MethodDecorator & ClassDecorator => SetMetadata(RATE_LIMIT_POLICIES, policies);
