import type { IncomingMessage } from 'node:http';
import { Inject, Injectable } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { normalizeIp } from '@nestjs/throttler';
import proxyaddr from 'proxy-addr';
import { httpConfig } from '../../config/namespaces/http.config.js';
import type { UpgradeRefusal } from '../websocket/routing-ws-adapter.js';
import { GLOBAL_THROTTLER, SharedThrottlerStorage } from './shared-throttler-storage.js';

/**
 * The global budget per client IP for WebSocket upgrades (the terminal and the logs), which never
 * reach the HTTP guards: `RoutingWsAdapter` asks here before it upgrades. An upgrade counts as one
 * request of the same budget as HTTP (`global:<ip>`, RATE_LIMIT_MAX per RATE_LIMIT_TTL_SECONDS,
 * shared by the replicas through Redis), so a client cannot reconnect in a loop to get around it.
 * Over the budget, the upgrade is answered `429` with `Retry-After`, and no WebSocket is opened.
 *
 * The client IP is Express's: the TCP peer, or `X-Forwarded-For` through TRUSTED_PROXIES only
 * (proxy-addr, as Express computes `req.ip`), IPv6 grouped by /64 like the HTTP guard.
 */
@Injectable()
export class UpgradeRateLimit {
  private readonly trust: (address: string, hop: number) => boolean;

  constructor(
    @Inject(httpConfig.KEY) private readonly http: ConfigType<typeof httpConfig>,
    private readonly counters: SharedThrottlerStorage,
  ) {
    this.trust = http.trustedProxies.length > 0 ? proxyaddr.compile(http.trustedProxies) : () => false;
  }

  /** The client address the budget is counted for. */
  clientIp(request: IncomingMessage): string {
    return normalizeIp(proxyaddr(request, this.trust));
  }

  /** Counts the upgrade; null when it may go on, else the answer that refuses it. */
  async admit(request: IncomingMessage): Promise<UpgradeRefusal | null> {
    const ttl = this.http.rateLimitTtlMs;
    const record = await this.counters.increment(`global:${this.clientIp(request)}`, ttl, this.http.rateLimitMax, ttl, GLOBAL_THROTTLER);
    if (!record.isBlocked) return null;
    const seconds = Math.max(1, record.timeToBlockExpire);
    return {
      status: 429,
      headers: { 'Retry-After': String(seconds) },
      body: { detail: `Too many requests; try again in ${seconds} s`, code: 'rate_limited' },
    };
  }
}
