import { Global, Logger, Module } from '@nestjs/common';
import { type SharedStateConfig, sharedStateConfig } from '../../config/namespaces/shared-state.config.js';
import { RedisSharedState } from './redis-shared-state.js';
import { NoSharedState, SharedState } from './shared-state.js';

/** Binds `SharedState` from the configuration: Redis with `REDIS_URL`, nothing shared without. Global. */
@Global()
@Module({
  providers: [
    {
      provide: SharedState,
      inject: [sharedStateConfig.KEY],
      useFactory: (config: SharedStateConfig): SharedState => {
        if (config.redisUrl) return new RedisSharedState(config);
        new Logger('SharedState').log(
          'REDIS_URL is not set: rate limits, events and caches stay in this process (run one replica; see docs/scaling.md)',
        );
        return new NoSharedState();
      },
    },
  ],
  exports: [SharedState],
})
export class SharedStateModule {}
