import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { type HttpConfig, httpConfig } from '../../config/namespaces/http.config.js';
import { RateLimitGuard } from './rate-limit.guard.js';
import { GLOBAL_THROTTLER, SharedThrottlerStorage } from './shared-throttler-storage.js';
import { UpgradeRateLimit } from './upgrade-rate-limit.js';

/** The counters (in memory, or in Redis shared by the replicas): one instance for the guard, the throttler and the upgrades. */
@Module({ providers: [SharedThrottlerStorage], exports: [SharedThrottlerStorage] })
export class RateLimitStorageModule {}

@Module({
  imports: [
    RateLimitStorageModule,
    ThrottlerModule.forRootAsync({
      imports: [RateLimitStorageModule],
      inject: [httpConfig.KEY, SharedThrottlerStorage],
      useFactory: (http: HttpConfig, storage: SharedThrottlerStorage) => ({
        // One budget per client across all routes (the library's default key is per route).
        throttlers: [
          {
            name: GLOBAL_THROTTLER,
            ttl: http.rateLimitTtlMs,
            limit: http.rateLimitMax,
            generateKey: (_context, tracker) => `global:${tracker}`,
          },
        ],
        storage,
      }),
    }),
  ],
  providers: [{ provide: APP_GUARD, useClass: RateLimitGuard }, UpgradeRateLimit],
  exports: [UpgradeRateLimit],
})
export class RateLimitModule {}
