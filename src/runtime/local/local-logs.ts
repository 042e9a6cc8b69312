import type { Clock } from '../../common/clock/clock.js';
import type { LogPage, LogQuery, Unsubscribe } from '../runtime.provider.js';
import { EnvironmentLog, followLog, readLogPage } from './environment-log.js';
import type { EnvironmentPaths } from './environment-paths.js';

/**
 * The environments' logs (`environment.log`): one writer per environment for this process (so
 * lines from the workload, the startup script and runtime events never interleave), and reading
 * and following them for `logs()` and `followLogs()`.
 */
export class LocalLogs {
  private readonly writers = new Map<string, EnvironmentLog>();

  constructor(private readonly clock: Clock) {}

  /** The environment's log writer (created on first use). */
  writer(paths: EnvironmentPaths): EnvironmentLog {
    let log = this.writers.get(paths.id);
    if (!log) {
      log = new EnvironmentLog(paths.log, () => this.clock.now());
      this.writers.set(paths.id, log);
    }
    return log;
  }

  /** Resolves once every line written so far is in the file. */
  async flushed(id: string): Promise<void> {
    await this.writers.get(id)?.flushed();
  }

  /** Forgets the writer of a destroyed environment. */
  forget(id: string): void {
    this.writers.delete(id);
  }

  /** The newest lines, after what this process wrote has reached the file. */
  async page(paths: EnvironmentPaths, query: LogQuery): Promise<LogPage> {
    await this.flushed(paths.id);
    return readLogPage(paths.log, query);
  }

  follow(paths: EnvironmentPaths, onLine: (line: string) => void, backlog: number): Unsubscribe {
    return followLog(paths.log, onLine, backlog);
  }

  async flushAll(): Promise<void> {
    await Promise.all([...this.writers.values()].map((log) => log.flushed()));
  }
}
