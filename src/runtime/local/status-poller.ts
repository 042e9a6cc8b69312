import { Logger } from '@nestjs/common';
import type { Unsubscribe } from '../runtime.provider.js';
import { StatusListener, StatusWatch } from '../status-watch.js';
import type { LocalStatus } from './local-status.js';

/**
 * `watch()` of the local runtime: while anyone listens, polls every environment every
 * `intervalMs` (the quick status: does its tmux server answer?), and looks at once at an
 * environment the runtime itself just changed (`announce`). The first poll records what exists
 * without reporting it; later ones report every change, including new environments.
 */
export class StatusPoller {
  private readonly logger = new Logger('LocalRuntime');
  private readonly watch: StatusWatch;
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  private baselineTaken = false;

  constructor(
    private readonly status: LocalStatus,
    private readonly list: () => Promise<string[]>,
    private readonly intervalMs: number,
  ) {
    this.watch = new StatusWatch(this.logger, { start: () => this.start(), stop: () => this.stop() });
  }

  subscribe(listener: StatusListener): Unsubscribe {
    return this.watch.subscribe(listener);
  }

  /** After an operation: tells the watchers at once instead of at the next poll. */
  announce(id: string): void {
    if (this.watch.listening) void this.observe(id, true).catch(() => undefined);
  }

  close(): void {
    this.watch.close();
  }

  private start(): void {
    if (this.timer !== null) return;
    this.baselineTaken = false;
    this.timer = setInterval(() => void this.poll(), this.intervalMs);
    this.timer.unref();
    void this.poll();
  }

  private stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private observe(id: string, announceNew: boolean): Promise<void> {
    return this.watch.observe(id, () => this.status.of(id, true), announceNew);
  }

  private poll(): Promise<void> {
    if (this.polling) return this.polling;
    this.polling = (async () => {
      try {
        const ids = new Set([...(await this.list()), ...this.watch.seenIds()]);
        for (const id of ids) {
          if (!this.watch.listening) return;
          await this.observe(id, this.baselineTaken);
        }
        this.baselineTaken = true;
      } catch (error) {
        this.logger.warn(`Watching environments failed: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        this.polling = null;
      }
    })();
    return this.polling;
  }
}
