import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { BeforeApplicationShutdown, Logger } from '@nestjs/common';
import type { SharedState } from '../shared-state/shared-state.js';

/** What a replica hears of another's events: the event's name and its payload (JSON). */
export type ReplicaReceiver = (name: string, payload: unknown) => void;

/**
 * How domain events travel between the replicas (`DomainEvents` uses it; docs/scaling.md). Two
 * implementations, chosen by the configuration: `SingleProcessBus` without Redis (nothing to
 * send, nothing missed), `RedisReplicaBus` with it.
 */
export abstract class ReplicaBus {
  /**
   * Sends an event to the other replicas. Never rejects: an event Redis cannot take now waits in
   * an outbox and goes when it can (unless older than `maxAgeMs` by then).
   */
  abstract publish(name: string, payload: unknown, options?: { maxAgeMs?: number }): Promise<void>;

  /** Where events of the other replicas go (one receiver: DomainEvents). */
  abstract listen(receive: ReplicaReceiver): void;

  /** True while this replica hears every event the others emit (one process: always). */
  abstract get inSync(): boolean;

  /**
   * Changes whenever `inSync` does: what was learnt in one generation (a cached session, say) may
   * have been invalidated by an event missed before the next one.
   */
  abstract get generation(): number;

  /** Told when the replica is in sync again after a gap: whatever it holds was possibly revoked meanwhile. */
  abstract onResync(listener: () => void): void;
}

/** One process: every event is emitted here, so there is nothing to send and nothing to miss. */
export class SingleProcessBus extends ReplicaBus {
  async publish(): Promise<void> {}

  listen(): void {}

  get inSync(): boolean {
    return true;
  }

  get generation(): number {
    return 0;
  }

  onResync(): void {}
}

/** The wire format of an event on the channel. `origin` tells each replica its own events apart. */
interface Envelope {
  v: 1;
  origin: string;
  name: string;
  payload: unknown;
}

interface Queued {
  message: string;
  name: string;
  queuedAt: number;
  maxAgeMs: number | undefined;
}

export const OUTBOX_LIMIT = 1_000;

/**
 * Domain events over Redis publish/subscribe, on one channel (`<REDIS_KEY_PREFIX>events`):
 *
 * - every event is published with this process's `origin`; the copy Redis sends back to this very
 *   process is dropped, so no handler runs twice on one replica;
 * - `inSync` is the subscription's state (`SharedState.subscribed`): while it is down, events of
 *   the others are missed, so the caches that rely on them must not be trusted, and when it is back
 *   the resync listeners re-check what this replica holds;
 * - an event that cannot be published (Redis down) waits in an outbox, in order, and is sent when
 *   the connection is back, or at shutdown if it comes back within 2 s; at most 1,000 wait (the
 *   oldest are dropped, loudly).
 */
export class RedisReplicaBus extends ReplicaBus implements BeforeApplicationShutdown {
  private readonly logger = new Logger('ReplicaBus');
  readonly origin = randomUUID();
  private readonly channel: string;
  private receive: ReplicaReceiver = () => undefined;
  private readonly resyncListeners: (() => void)[] = [];
  private readonly outbox: Queued[] = [];
  private flushing: Promise<void> | null = null;
  private live = false;
  private gen = 0;
  private everLive = false;

  constructor(private readonly shared: SharedState) {
    super();
    this.channel = shared.channel('events');
    shared.subscribe(this.channel, (message) => this.onMessage(message));
    shared.onSubscribedChange((subscribed) => this.setLive(subscribed));
    shared.onAvailable(() => void this.flush());
  }

  get inSync(): boolean {
    return this.live;
  }

  get generation(): number {
    return this.gen;
  }

  /** Events waiting for Redis. */
  get pending(): number {
    return this.outbox.length;
  }

  listen(receive: ReplicaReceiver): void {
    this.receive = receive;
  }

  onResync(listener: () => void): void {
    this.resyncListeners.push(listener);
  }

  async publish(name: string, payload: unknown, options: { maxAgeMs?: number } = {}): Promise<void> {
    const envelope: Envelope = { v: 1, origin: this.origin, name, payload };
    const message = JSON.stringify(envelope);
    if (this.outbox.length === 0 && this.shared.available) {
      try {
        await this.shared.publish(this.channel, message);
        return;
      } catch (error) {
        this.logger.warn(`Could not publish ${name} (${error instanceof Error ? error.message : String(error)}); it waits for Redis`);
      }
    } else {
      this.logger.warn(`Redis is unavailable: ${name} waits for it to reach the other replicas`);
    }
    this.outbox.push({ message, name, queuedAt: Date.now(), maxAgeMs: options.maxAgeMs });
    if (this.outbox.length > OUTBOX_LIMIT) {
      const dropped = this.outbox.splice(0, this.outbox.length - OUTBOX_LIMIT);
      this.logger.error(`${dropped.length} event(s) dropped while Redis is unavailable (${dropped.map((q) => q.name).join(', ')})`);
    }
    void this.flush();
  }

  async beforeApplicationShutdown(): Promise<void> {
    // A short-lived process (the CLI) may have emitted before its connection was up: give it 2 s.
    for (let waited = 0; this.outbox.length > 0 && waited < 2_000; waited += 50) {
      await this.flush();
      if (this.outbox.length > 0) await delay(50);
    }
    if (this.outbox.length > 0) this.logger.error(`${this.outbox.length} event(s) never reached the other replicas (Redis unavailable)`);
  }

  /** Sends what waits, oldest first, until the outbox is empty or Redis fails again. */
  private flush(): Promise<void> {
    this.flushing ??= (async () => {
      while (this.outbox.length > 0 && this.shared.available) {
        const next = this.outbox[0];
        if (next.maxAgeMs !== undefined && Date.now() - next.queuedAt > next.maxAgeMs) {
          this.outbox.shift();
          continue;
        }
        try {
          await this.shared.publish(this.channel, next.message);
          this.outbox.shift();
        } catch {
          return;
        }
      }
    })().finally(() => (this.flushing = null));
    return this.flushing;
  }

  private onMessage(message: string): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(message) as Envelope;
    } catch {
      this.logger.warn('A message on the events channel is not JSON; ignored');
      return;
    }
    if (envelope?.v !== 1 || typeof envelope.name !== 'string' || typeof envelope.origin !== 'string') {
      this.logger.warn('A message on the events channel is not an event of this version; ignored');
      return;
    }
    if (envelope.origin === this.origin) return;
    this.receive(envelope.name, envelope.payload);
  }

  private setLive(live: boolean): void {
    if (this.live === live) return;
    this.live = live;
    this.gen += 1;
    if (!live) {
      this.logger.warn('Events of the other replicas cannot be heard: sessions and users are read from the database until they can');
      return;
    }
    if (this.everLive) this.logger.log('Events of the other replicas are heard again');
    this.everLive = true;
    for (const listener of this.resyncListeners) listener();
  }
}
