import { BeforeApplicationShutdown, Global, Inject, Injectable, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { appConfig } from '../../config/namespaces/app.config.js';

type Cleanup = () => Promise<void>;

/**
 * Graceful shutdown, driven by Nest's shutdown hooks (`enableShutdownHooks`): on SIGTERM/SIGINT
 * the HTTP server stops accepting, in-flight requests finish, modules close their resources, then
 * the cleanups registered here run (e.g. stopping the embedded database). A watchdog ends the
 * process if all that takes longer than SHUTDOWN_TIMEOUT_MS.
 */
@Injectable()
export class ProcessLifecycle implements BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('Shutdown');
  private readonly cleanups: Cleanup[] = [];
  private stopping = false;

  constructor(@Inject(appConfig.KEY) private readonly config: ConfigType<typeof appConfig>) {}

  /** Runs after every module has shut down, last registered first. */
  onShutdown(cleanup: Cleanup): void {
    this.cleanups.unshift(cleanup);
  }

  /** True once shutdown has begun, so expected disconnections are not reported as faults. */
  get isShuttingDown(): boolean {
    return this.stopping;
  }

  beforeApplicationShutdown(signal?: string): void {
    this.stopping = true;
    if (signal === undefined) return;
    this.logger.log(`${signal} received: finishing in-flight requests, then stopping`);
    setTimeout(() => {
      this.logger.error(`Shutdown took longer than ${this.config.shutdownTimeoutMs} ms; exiting now`);
      process.exit(1);
    }, this.config.shutdownTimeoutMs).unref();
  }

  async onApplicationShutdown(): Promise<void> {
    for (const cleanup of this.cleanups) {
      try {
        await cleanup();
      } catch (error) {
        this.logger.error(`Cleanup failed during shutdown: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    this.logger.log('Stopped');
  }
}

@Global()
@Module({ providers: [ProcessLifecycle], exports: [ProcessLifecycle] })
export class LifecycleModule {}
