import { Global, Module } from '@nestjs/common';
import { Clock } from '../common/clock/clock.js';
import { type AppConfig, appConfig } from '../config/namespaces/app.config.js';
import { type RuntimeConfig, runtimeConfig } from '../config/namespaces/runtime.config.js';
import { KubernetesRuntime } from './kubernetes/kubernetes-runtime.js';
import { LocalRuntime } from './local/local-runtime.js';
import { RuntimeProvider } from './runtime.provider.js';

/** Builds the runtime RUNTIME selects. */
export function createRuntime(config: RuntimeConfig, app: AppConfig, clock: Clock): RuntimeProvider {
  switch (config.kind) {
    case 'local':
      return new LocalRuntime(config, app, clock);
    case 'kubernetes':
      return new KubernetesRuntime(config.kubernetes);
  }
}

/**
 * Provides `RuntimeProvider` everywhere: where environments run. The implementation is chosen
 * from configuration (RUNTIME); see docs/runtime.md.
 */
@Global()
@Module({
  providers: [{ provide: RuntimeProvider, inject: [runtimeConfig.KEY, appConfig.KEY, Clock], useFactory: createRuntime }],
  exports: [RuntimeProvider],
})
export class RuntimeModule {}
