import type { OnApplicationShutdown } from '@nestjs/common';
import {
  RuntimeProvider,
  type EnvironmentSpec,
  type ExecOptions,
  type ExecSession,
  type LogPage,
  type LogQuery,
  type RuntimeMetrics,
  type RuntimeReadiness,
  type PreviewTarget,
  type RuntimeStatus,
  type StorageRefusal,
  type TerminalAttachment,
  type TerminalSize,
  type Unsubscribe,
} from './runtime.provider.js';
import type { Template } from '../templates/template.js';
import { outcomeOf, type RuntimeInstrumentation } from './runtime-instrumentation.js';

/**
 * The runtime the application uses: the configured one, each operation timed into
 * `devpocket_runtime_operation_duration_seconds` (runtime-instrumentation.ts). A decorator, so the
 * runtimes themselves stay free of metrics; everything else passes through, the application's
 * shutdown included.
 */
export class InstrumentedRuntime extends RuntimeProvider implements OnApplicationShutdown {
  readonly kind: RuntimeProvider['kind'];

  constructor(
    readonly inner: RuntimeProvider,
    private readonly instrumentation: RuntimeInstrumentation,
  ) {
    super();
    this.kind = inner.kind;
  }

  provision(spec: EnvironmentSpec): Promise<void> {
    return this.timed('provision', () => this.inner.provision(spec));
  }

  start(spec: EnvironmentSpec): Promise<void> {
    return this.timed('start', () => this.inner.start(spec));
  }

  stop(spec: EnvironmentSpec): Promise<void> {
    return this.timed('stop', () => this.inner.stop(spec));
  }

  destroy(spec: EnvironmentSpec): Promise<void> {
    return this.timed('destroy', () => this.inner.destroy(spec));
  }

  status(spec: EnvironmentSpec): Promise<RuntimeStatus> {
    return this.timed('status', () => this.inner.status(spec));
  }

  watch(listener: (environmentId: string, status: RuntimeStatus) => void): Unsubscribe {
    return this.inner.watch(listener);
  }

  exec(spec: EnvironmentSpec, argv: string[], options: ExecOptions): Promise<ExecSession> {
    return this.timed('exec', () => this.inner.exec(spec, argv, options));
  }

  attachTerminal(spec: EnvironmentSpec, size: TerminalSize): Promise<TerminalAttachment> {
    return this.timed('attach', () => this.inner.attachTerminal(spec, size));
  }

  logs(spec: EnvironmentSpec, query: LogQuery): Promise<LogPage> {
    return this.timed('logs', () => this.inner.logs(spec, query));
  }

  followLogs(spec: EnvironmentSpec, onLine: (line: string) => void, backlog?: number): Unsubscribe {
    return this.inner.followLogs(spec, onLine, backlog);
  }

  metrics(spec: EnvironmentSpec): Promise<RuntimeMetrics> {
    return this.timed('metrics', () => this.inner.metrics(spec));
  }

  list(): Promise<string[]> {
    return this.inner.list();
  }

  ready(timeoutMs: number): Promise<RuntimeReadiness> {
    return this.inner.ready(timeoutMs);
  }

  templateRefusal(template: Template): string | null {
    return this.inner.templateRefusal(template);
  }

  previewTarget(spec: EnvironmentSpec, port: number): Promise<PreviewTarget | null> {
    return this.inner.previewTarget(spec, port);
  }

  override checkStorage(spec: EnvironmentSpec, storage: string): Promise<StorageRefusal | null> {
    return this.inner.checkStorage(spec, storage);
  }

  override listUnclaimed(): Promise<string[]> {
    return this.inner.listUnclaimed();
  }

  override adopt(spec: EnvironmentSpec): Promise<void> {
    return this.inner.adopt(spec);
  }

  async onApplicationShutdown(signal?: string): Promise<void> {
    await (this.inner as Partial<OnApplicationShutdown>).onApplicationShutdown?.(signal);
  }

  private async timed<T>(operation: string, run: () => Promise<T>): Promise<T> {
    const stop = this.instrumentation.operations.startTimer({ runtime: this.kind, operation });
    try {
      const result = await run();
      stop({ outcome: 'ok' });
      return result;
    } catch (error) {
      stop({ outcome: outcomeOf(error) });
      throw error;
    }
  }
}
