import { ExecutionContext, Injectable } from '@nestjs/common';
import { ThrottlerGuard, ThrottlerLimitDetail } from '@nestjs/throttler';
import type { Request, Response } from 'express';
import { RATE_LIMIT_POLICIES, RateLimitPolicy } from './rate-limit.decorator.js';

/**
 * The global guard: the default limit per client IP (Express resolves `req.ip` through the trusted
 * proxies only), plus any `@RateLimit` policies of the route. Every 429 carries `Retry-After`.
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
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
    const ttl = policy.ttlSeconds * 1000;
    await this.handleRequest({
      context,
      limit: policy.limit,
      ttl,
      blockDuration: (policy.blockSeconds ?? policy.ttlSeconds) * 1000,
      throttler: { name: policy.name, limit: policy.limit, ttl, setHeaders: false },
      getTracker: () => key.toLowerCase(),
      generateKey: (ctx, tracker, name) => this.generateKey(ctx, tracker, name),
    });
  }

  protected override async throwThrottlingException(context: ExecutionContext, detail: ThrottlerLimitDetail): Promise<void> {
    const res = context.switchToHttp().getResponse<Response>();
    res.setHeader('Retry-After', String(Math.max(1, detail.timeToBlockExpire)));
    await super.throwThrottlingException(context, detail);
  }
}
