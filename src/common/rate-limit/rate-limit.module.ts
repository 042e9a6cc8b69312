import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { HttpConfig } from '../../config/configuration.js';
import { RateLimitGuard } from './rate-limit.guard.js';

@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      inject: [HttpConfig],
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
