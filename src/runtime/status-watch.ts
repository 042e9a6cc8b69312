import type { Logger } from '@nestjs/common';
import type { RuntimeStatus, Unsubscribe } from './runtime.provider.js';

export type StatusListener = (environmentId: string, status: RuntimeStatus) => void;

/** What a runtime plugs into a StatusWatch: its source of changes (a poller, a pod watch). */
export interface StatusSource {
  /** The first listener arrived: start noticing changes. */
  start(): void;
  /** The last listener left, or the watch was closed: stop. */
  stop(): void;
}

export interface StatusWatchOptions {
  /**
   * Whether an environment with no status on record is reported when it turns out `absent`. The
   * local runtime reports `absent` only for an environment it saw before (false, the default);
   * the Kubernetes runtime also for a pod event about objects already gone (true).
   */
  reportUnseenAbsent?: boolean;
}

/**
 * The watcher plumbing every runtime shares behind `RuntimeProvider.watch()`: the listeners, the
 * last status reported for each environment, and observations that run one at a time, so a slow
 * read never reports an older status after a newer one. Listeners hear only real changes; one
 * that throws is logged and the others still hear. The runtime decides when to look (its source)
 * and how to read a status; the watch decides whether that is news.
 */
export class StatusWatch {
  private readonly listeners = new Set<StatusListener>();
  /** The last status reported (JSON) per environment; absent environments are forgotten. */
  private readonly lastSeen = new Map<string, string>();
  private observing: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly reportUnseenAbsent: boolean;

  constructor(
    private readonly logger: Logger,
    private readonly source: StatusSource,
    options: StatusWatchOptions = {},
  ) {
    this.reportUnseenAbsent = options.reportUnseenAbsent ?? false;
  }

  /** Adds a listener; the first one starts the source (unless the watch is closed). */
  subscribe(listener: StatusListener): Unsubscribe {
    const first = this.listeners.size === 0;
    this.listeners.add(listener);
    if (first && !this.closed) this.source.start();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.halt();
    };
  }

  /** True while anyone listens: sources stop looking, and observations are skipped, otherwise. */
  get listening(): boolean {
    return this.listeners.size > 0;
  }

  /** Environments with a status on record (seen, not absent): a source looks at them again after a gap. */
  seenIds(): string[] {
    return [...this.lastSeen.keys()];
  }

  /**
   * Reads one environment's status (after every observation queued before) and tells the
   * listeners when it differs from the last one reported. `read` may answer null: nothing to
   * report (e.g. it could not be read). An environment with no status on record is reported only
   * when `announceNew` (after an operation, or once the source has a baseline of what existed).
   * The returned promise rejects when `read` does; the queue goes on either way.
   */
  observe(id: string, read: () => Promise<RuntimeStatus | null>, announceNew: boolean): Promise<void> {
    const next = this.observing.then(async () => {
      if (this.listeners.size === 0) return;
      const status = await read();
      if (status === null) return;
      const key = JSON.stringify(status);
      const previous = this.lastSeen.get(id);
      if (status.state === 'absent') this.lastSeen.delete(id);
      else this.lastSeen.set(id, key);
      if (previous === key) return;
      if (previous === undefined && (!announceNew || (status.state === 'absent' && !this.reportUnseenAbsent))) return;
      for (const listener of [...this.listeners]) {
        try {
          listener(id, status);
        } catch (error) {
          this.logger.error(`A runtime watcher failed: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    });
    this.observing = next.catch(() => undefined);
    return next;
  }

  /** Drops every listener and stops the source for good (application shutdown). */
  close(): void {
    this.closed = true;
    this.listeners.clear();
    this.halt();
  }

  private halt(): void {
    this.source.stop();
    this.lastSeen.clear();
  }
}
