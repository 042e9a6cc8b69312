import { OnApplicationShutdown } from '@nestjs/common';
import { Clock } from '../../common/clock/clock.js';
import type { AppConfig } from '../../config/namespaces/app.config.js';
import type { RuntimeConfig } from '../../config/namespaces/runtime.config.js';
import { KeyedLock } from '../keyed-lock.js';
import {
  assertEnvironmentId,
  EnvironmentSpec,
  ExecOptions,
  ExecSession,
  LogPage,
  LogQuery,
  RuntimeMetrics,
  RuntimeProvider,
  RuntimeReadiness,
  PreviewTarget,
  RuntimeStatus,
  TerminalAttachment,
  TerminalSize,
  Unsubscribe,
} from '../runtime.provider.js';
import type { StatusListener } from '../status-watch.js';
import { listEnvironmentIds } from './environment-paths.js';
import { StateStore } from './environment-state.js';
import { LocalLifecycle } from './lifecycle.js';
import { LocalExec } from './local-exec.js';
import { LocalHost } from './local-host.js';
import { LocalLogs } from './local-logs.js';
import { LocalMetrics } from './local-metrics.js';
import { LocalStatus } from './local-status.js';
import { StartupScript } from './startup-script.js';
import { StatusPoller } from './status-poller.js';
import { TmuxWorkload } from './workload.js';

export interface LocalRuntimeOptions {
  /** How often watch() looks at every environment, in ms (default 3000). */
  watchIntervalMs?: number;
  /** How long provision/start wait for the tmux server to listen, in ms (default 10000). */
  startTimeoutMs?: number;
  /** Where the runtime finds tmux (and bwrap), and the tail of every environment's PATH (default the server's PATH). */
  path?: string;
}

/**
 * The local runtime: each environment is a home directory plus its own tmux server on this host
 * (see docs/runtime.md). This class is the RuntimeProvider: it wires the collaborators below and
 * delegates every operation to the one that owns it.
 *
 * - LocalHost (local-host.ts): host checks, paths, each process's environment, the sandbox
 * - LocalLifecycle (lifecycle.ts): provision, start, stop, destroy, one at a time per environment
 * - TmuxWorkload (workload.ts): the environment's tmux server and session
 * - StartupScript (startup-script.ts): the user-level startup steps, continued when cut short
 * - LocalExec (local-exec.ts): exec sessions and the terminal attachment
 * - LocalStatus (local-status.ts) and StatusPoller (status-poller.ts): status() and watch()
 * - LocalLogs (local-logs.ts), LocalMetrics (local-metrics.ts): logs, followLogs, metrics
 */
export class LocalRuntime extends RuntimeProvider implements OnApplicationShutdown {
  readonly kind = 'local' as const;
  private readonly host: LocalHost;
  private readonly lifecycle: LocalLifecycle;
  private readonly startup: StartupScript;
  private readonly execs: LocalExec;
  private readonly statuses: LocalStatus;
  private readonly watcher: StatusPoller;
  private readonly logFiles: LocalLogs;
  private readonly sampler: LocalMetrics;

  constructor(
    private readonly config: RuntimeConfig,
    app: AppConfig,
    clock: Clock,
    options: LocalRuntimeOptions = {},
  ) {
    super();
    this.host = new LocalHost(config, app, options.path);
    const lock = new KeyedLock();
    const state = new StateStore();
    this.logFiles = new LocalLogs(clock);
    const workload = new TmuxWorkload(this.host, state, this.logFiles, options.startTimeoutMs ?? 10_000);
    this.startup = new StartupScript(this.host, state, this.logFiles);
    this.statuses = new LocalStatus(this.host, state, workload);
    this.execs = new LocalExec(this.host, lock, this.statuses);
    this.lifecycle = new LocalLifecycle({
      host: this.host,
      lock,
      state,
      logs: this.logFiles,
      workload,
      startup: this.startup,
      exec: this.execs,
      clock,
    });
    this.watcher = new StatusPoller(this.statuses, () => this.list(), options.watchIntervalMs ?? 3000);
    this.sampler = new LocalMetrics(clock, this.host.hostPath);
  }

  // ------------------------------------------------------------------------------------------
  // Lifecycle: each operation tells the watchers at once

  async provision(spec: EnvironmentSpec): Promise<void> {
    await this.lifecycle.provision(spec);
    this.watcher.announce(spec.id);
  }

  async start(spec: EnvironmentSpec): Promise<void> {
    await this.lifecycle.start(spec);
    this.watcher.announce(spec.id);
  }

  async stop(spec: EnvironmentSpec): Promise<void> {
    await this.lifecycle.stop(spec);
    this.watcher.announce(spec.id);
  }

  async destroy(spec: EnvironmentSpec): Promise<void> {
    await this.lifecycle.destroy(spec);
    this.sampler.forget(spec.id);
    this.watcher.announce(spec.id);
  }

  // ------------------------------------------------------------------------------------------
  // Status and watch

  async status(spec: EnvironmentSpec): Promise<RuntimeStatus> {
    assertEnvironmentId(spec.id);
    return this.statuses.of(spec.id);
  }

  watch(listener: StatusListener): Unsubscribe {
    return this.watcher.subscribe(listener);
  }

  // ------------------------------------------------------------------------------------------
  // Exec and the terminal

  exec(spec: EnvironmentSpec, argv: string[], options: ExecOptions): Promise<ExecSession> {
    return this.execs.exec(spec, argv, options);
  }

  attachTerminal(spec: EnvironmentSpec, size: TerminalSize): Promise<TerminalAttachment> {
    return this.execs.attachTerminal(spec, size);
  }

  // ------------------------------------------------------------------------------------------
  // Logs, metrics, listing

  async logs(spec: EnvironmentSpec, query: LogQuery): Promise<LogPage> {
    return this.logFiles.page(this.host.paths(spec.id), query);
  }

  followLogs(spec: EnvironmentSpec, onLine: (line: string) => void, backlog = 0): Unsubscribe {
    return this.logFiles.follow(this.host.paths(spec.id), onLine, backlog);
  }

  async metrics(spec: EnvironmentSpec): Promise<RuntimeMetrics> {
    return this.sampler.sample(this.host.paths(spec.id));
  }

  /** Every environment with a directory, orphans included (for the reconciler). */
  list(): Promise<string[]> {
    return listEnvironmentIds(this.config.localRoot);
  }

  /** tmux on PATH runs, and the environments' directory is writable. */
  ready(timeoutMs: number): Promise<RuntimeReadiness> {
    return this.host.ready(timeoutMs);
  }

  /** Every template runs here: on this host nothing runs as root (system steps never run) and images are not used. */
  templateRefusal(): string | null {
    return null;
  }

  /**
   * Environments share this host's network (docs/runtime.md): a port an environment listens on is
   * this host's port, reached on loopback.
   */
  previewTarget(_spec: EnvironmentSpec, port: number): Promise<PreviewTarget | null> {
    return Promise.resolve({ host: '127.0.0.1', port });
  }

  /** Stops watching, ends the exec sessions it started and interrupts startup scripts; tmux servers keep running. */
  async onApplicationShutdown(): Promise<void> {
    this.watcher.close();
    await this.startup.interruptAll();
    await this.execs.killEverything();
    await this.logFiles.flushAll();
  }
}
