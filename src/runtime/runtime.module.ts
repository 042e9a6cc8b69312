import { Global, Module } from '@nestjs/common';
import { Clock } from '../common/clock/clock.js';
import { type AppConfig, appConfig } from '../config/namespaces/app.config.js';
import { type RuntimeConfig, runtimeConfig } from '../config/namespaces/runtime.config.js';
import { Installation } from '../settings/installation.js';
import { SettingsModule } from '../settings/settings.module.js';
import { InstrumentedRuntime } from './instrumented-runtime.js';
import type { KubernetesRuntimeOptions } from './kubernetes/kubernetes-runtime.js';
import { LocalRuntime, type LocalRuntimeOptions } from './local/local-runtime.js';
import { RuntimeInstrumentation } from './runtime-instrumentation.js';
import { RuntimeProvider } from './runtime.provider.js';

/** The runtimes' tuning beyond configuration (intervals, paths): their defaults in production; a test may pass others. */
export interface RuntimeOptions {
  local?: LocalRuntimeOptions;
  kubernetes?: KubernetesRuntimeOptions;
}

/** What createRuntime is given, in order (a test that binds the runtime with other options injects the same). */
export const RUNTIME_DEPENDENCIES = [runtimeConfig.KEY, appConfig.KEY, Clock, RuntimeInstrumentation, Installation];

/**
 * Builds the runtime RUNTIME selects, its operations and (Kubernetes) API requests measured; the
 * Kubernetes runtime labels, lists and watches its objects as `installation`'s. The Kubernetes
 * runtime (and `@kubernetes/client-node`, about 40 MiB of generated API once loaded) is only loaded
 * when it is the one selected.
 */
export async function createRuntime(
  config: RuntimeConfig,
  app: AppConfig,
  clock: Clock,
  instrumentation: RuntimeInstrumentation,
  installation: Installation,
  options: RuntimeOptions = {},
): Promise<RuntimeProvider> {
  switch (config.kind) {
    case 'local':
      return new InstrumentedRuntime(new LocalRuntime(config, app, clock, options.local), instrumentation);
    case 'kubernetes': {
      const [{ KubernetesApi }, { KubernetesRuntime }] = await Promise.all([
        import('./kubernetes/kubernetes-api.js'),
        import('./kubernetes/kubernetes-runtime.js'),
      ]);
      const api = new KubernetesApi(config.kubernetes, undefined, {}, instrumentation.kubernetesObserver());
      const kubernetes = new KubernetesRuntime(config.kubernetes, api, { ...options.kubernetes, installationId: installation.id });
      return new InstrumentedRuntime(kubernetes, instrumentation);
    }
  }
}

/**
 * Provides `RuntimeProvider` everywhere: where environments run. The implementation is chosen
 * from configuration (RUNTIME); see docs/runtime.md.
 */
@Global()
@Module({
  imports: [SettingsModule],
  providers: [
    RuntimeInstrumentation,
    {
      provide: RuntimeProvider,
      inject: RUNTIME_DEPENDENCIES,
      useFactory: (
        config: RuntimeConfig,
        app: AppConfig,
        clock: Clock,
        instrumentation: RuntimeInstrumentation,
        installation: Installation,
      ) => createRuntime(config, app, clock, instrumentation, installation),
    },
  ],
  exports: [RuntimeProvider, RuntimeInstrumentation],
})
export class RuntimeModule {}
