import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { type HttpConfig, httpConfig } from '../../config/namespaces/http.config.js';
import { RateLimitGuard } from './rate-limit.guard.js';

@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      inject: [httpConfig.KEY],
      useFactory: (http: HttpConfig) => ({
        // One budget per client across all routes (the library's default key is per route).
        throttlers: [
          { name: 'default', ttl: http.rateLimitTtlMs, limit: http.rateLimitMax, generateKey: (_context, tracker) => `global:${tracker}` },
        ],
      }),
    }),
  ],
  providers: [{ provide: APP_GUARD, useClass: RateLimitGuard }],
})
export class RateLimitModule {}
