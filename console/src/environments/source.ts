import type { ApiClient } from '../api/client.js';
import { describeError } from '../api/http.js';
import type { Environment } from '../api/types.js';

/**
 * Where the console learns the caller's environments and their status. Every view reads them
 * through this one interface; `LiveEnvironmentsSource` (live-source.ts) fills it from the status
 * WebSocket (docs/console.md).
 */
export interface EnvironmentsSnapshot {
  /** null until the first answer. */
  environments: Environment[] | null;
  /** Why the last update failed, or null. */
  error: string | null;
  /** When the data was asked for. */
  updatedAt: Date | null;
  /** True while changes arrive as they happen (the status socket is open); false while it reconnects. */
  live: boolean;
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

/**
 * The list and its listeners, shared by every source: `publish` a new snapshot, `upsert` one
 * environment, `untilRunning`. A source says how it gets its data, and when its data is current
 * (`isCurrent`).
 */
export abstract class EnvironmentsStore implements EnvironmentsSource {
  protected snapshot: EnvironmentsSnapshot = { environments: null, error: null, updatedAt: null, live: false };
  private readonly listeners = new Set<(snapshot: EnvironmentsSnapshot) => void>();

  abstract refresh(): Promise<void>;
  /** The first listener arrived. */
  protected abstract activate(): void;
  /** The last listener left. */
  protected abstract deactivate(): void;
  /** Whether the snapshot shows the state as of `since` (ms) or later. */
  protected abstract isCurrent(since: number): boolean;

  protected get listening(): boolean {
    return this.listeners.size > 0;
  }

  subscribe(listener: (snapshot: EnvironmentsSnapshot) => void): () => void {
    this.listeners.add(listener);
    listener(this.snapshot);
    if (this.listeners.size === 1) this.activate();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.deactivate();
    };
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
        if (done || !this.isCurrent(since)) return;
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

  protected publish(snapshot: EnvironmentsSnapshot): void {
    this.snapshot = snapshot;
    for (const listener of [...this.listeners]) listener(snapshot);
  }

  /** One `GET /environments`, published; a failure is published as the snapshot's error. */
  protected async fetchOnce(api: ApiClient): Promise<void> {
    // Stamped with when it was asked for, so that a waiter can tell answers older than its question.
    const askedAt = new Date();
    try {
      const environments = await api.environments();
      this.publish({ ...this.snapshot, environments, error: null, updatedAt: askedAt });
    } catch (error) {
      this.publish({ ...this.snapshot, error: describeError(error) });
    }
  }
}
