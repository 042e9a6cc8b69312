import type { ApiClient } from '../api/client.js';
import { describeError } from '../api/http.js';
import type { Environment } from '../api/types.js';

/**
 * Where the console learns the caller's environments and their status. Every view reads them
 * through this one interface: today it polls `GET /environments`; a live status WebSocket will
 * replace `PollingEnvironmentsSource` without the views changing (docs/console.md).
 */
export interface EnvironmentsSnapshot {
  /** null until the first answer. */
  environments: Environment[] | null;
  /** Why the last update failed, or null. */
  error: string | null;
  /** When the data was asked for. */
  updatedAt: Date | null;
}

export interface EnvironmentsSource {
  /** Calls `listener` with the current snapshot at once, then on every change. Returns the unsubscribe function. */
  subscribe(listener: (snapshot: EnvironmentsSnapshot) => void): () => void;
  /** Ask for fresh data now (after an action of this client). */
  refresh(): Promise<void>;
  /** Records an environment this client just received (the answer of an action), before the next update. */
  upsert(environment: Environment): void;
  /**
   * Resolves once the environment's status is `running` in data asked for after this call (or
   * rejects when it is deleted or `signal` aborts).
   */
  untilRunning(id: string, signal: AbortSignal): Promise<Environment>;
}

/** Polls every `intervalMs` while someone listens and the page is visible. */
export class PollingEnvironmentsSource implements EnvironmentsSource {
  private snapshot: EnvironmentsSnapshot = { environments: null, error: null, updatedAt: null };
  private readonly listeners = new Set<(snapshot: EnvironmentsSnapshot) => void>();
  private timer: number | null = null;
  private inFlight: Promise<void> | null = null;

  constructor(
    private readonly api: ApiClient,
    private readonly intervalMs = 3000,
  ) {
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && this.listeners.size > 0) void this.refresh();
    });
  }

  subscribe(listener: (snapshot: EnvironmentsSnapshot) => void): () => void {
    this.listeners.add(listener);
    listener(this.snapshot);
    if (this.listeners.size === 1) void this.refresh();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stopTimer();
    };
  }

  refresh(): Promise<void> {
    this.inFlight ??= this.poll().finally(() => {
      this.inFlight = null;
      this.schedule();
    });
    return this.inFlight;
  }

  upsert(environment: Environment): void {
    const current = this.snapshot.environments ?? [];
    const index = current.findIndex((candidate) => candidate.id === environment.id);
    const environments = index === -1 ? [environment, ...current] : current.map((candidate, i) => (i === index ? environment : candidate));
    this.publish({ ...this.snapshot, environments });
  }

  untilRunning(id: string, signal: AbortSignal): Promise<Environment> {
    return new Promise((resolve, reject) => {
      let done = false;
      let unsubscribe: (() => void) | null = null;
      const finish = (): void => {
        done = true;
        signal.removeEventListener('abort', onAbort);
        // subscribe() calls back synchronously, before `unsubscribe` is known: defer.
        queueMicrotask(() => unsubscribe?.());
      };
      const onAbort = (): void => {
        finish();
        reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort);
      const since = Date.now();
      unsubscribe = this.subscribe((snapshot) => {
        if (done || !snapshot.updatedAt || snapshot.updatedAt.getTime() < since) return;
        const environment = snapshot.environments?.find((candidate) => candidate.id === id);
        if (environment?.status === 'running') {
          finish();
          resolve(environment);
        } else if (environment?.status === 'terminated' || (snapshot.environments && !environment)) {
          finish();
          reject(new Error('The environment was deleted'));
        }
      });
    });
  }

  private async poll(): Promise<void> {
    // Stamped with when it was asked for, so that a waiter can tell answers older than its question.
    const askedAt = new Date();
    try {
      const environments = await this.api.environments();
      this.publish({ environments, error: null, updatedAt: askedAt });
    } catch (error) {
      this.publish({ ...this.snapshot, error: describeError(error) });
    }
  }

  private schedule(): void {
    this.stopTimer();
    if (this.listeners.size === 0) return;
    this.timer = window.setTimeout(() => {
      this.timer = null;
      if (document.visibilityState === 'hidden') this.schedule();
      else void this.refresh();
    }, this.intervalMs);
  }

  private stopTimer(): void {
    if (this.timer !== null) window.clearTimeout(this.timer);
    this.timer = null;
  }

  private publish(snapshot: EnvironmentsSnapshot): void {
    this.snapshot = snapshot;
    for (const listener of [...this.listeners]) listener(snapshot);
  }
}
