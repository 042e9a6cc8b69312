import { ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  InjectThrottlerOptions,
  InjectThrottlerStorage,
  ThrottlerGuard,
  ThrottlerLimitDetail,
  type ThrottlerModuleOptions,
  type ThrottlerStorage,
} from '@nestjs/throttler';
import type { Request, Response } from 'express';
import { RATE_LIMIT_POLICIES, RateLimitPolicy } from './rate-limit.decorator.js';
import { SharedThrottlerStorage } from './shared-throttler-storage.js';

/**
 * The global guard: the default limit per client IP (Express resolves `req.ip` through the trusted
 * proxies only), plus any `@RateLimit` policies of the route. Every 429 carries `Retry-After`.
 * Counters live in `SharedThrottlerStorage` (Redis when configured), which is also where a
 * policy's `whenSharedStateDown` applies.
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storage: ThrottlerStorage,
    reflector: Reflector,
    private readonly counters: SharedThrottlerStorage,
  ) {
    super(options, storage, reflector);
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    await super.canActivate(context);
    const policies = this.reflector.getAllAndOverride<RateLimitPolicy[] | undefined>(RATE_LIMIT_POLICIES, [
      context.getHandler(),
      context.getClass(),
    ]);
    for (const policy of policies ?? []) await this.applyPolicy(context, policy);
    return true;
  }

  private async applyPolicy(context: ExecutionContext, policy: RateLimitPolicy): Promise<void> {
    const req = context.switchToHttp().getRequest<Request>();
    const key = policy.key === 'ip' ? req.ip : policy.key(req);
    if (key === undefined || key === '') return;
    // What ThrottlerGuard.handleRequest does for a throttler without headers, with the policy's own outage rule.
    const ttl = policy.ttlSeconds * 1000;
    const tracker = key.toLowerCase();
    const counterKey = this.generateKey(context, tracker, policy.name);
    const blockDuration = (policy.blockSeconds ?? policy.ttlSeconds) * 1000;
    const record = await this.counters.increment(
      counterKey,
      ttl,
      policy.limit,
      blockDuration,
      policy.name,
      policy.whenSharedStateDown ?? 'refuse',
    );
    if (record.isBlocked) await this.throwThrottlingException(context, { limit: policy.limit, ttl, key: counterKey, tracker, ...record });
  }

  protected override async throwThrottlingException(context: ExecutionContext, detail: ThrottlerLimitDetail): Promise<void> {
    const res = context.switchToHttp().getResponse<Response>();
    res.setHeader('Retry-After', String(Math.max(1, detail.timeToBlockExpire)));
    await super.throwThrottlingException(context, detail);
  }
}
