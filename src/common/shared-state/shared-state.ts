import type { Redis } from 'ioredis';

/** A dedicated connection's options: with the installation's key prefix, and a command timeout (none by default). */
export interface DedicatedConnectionOptions {
  prefixed?: boolean;
  commandTimeoutMs?: number;
}

/**
 * The state the replicas share (docs/scaling.md): a Redis when `REDIS_URL` is set, nothing
 * otherwise. One provider for the connections, their health and publish/subscribe; what is shared
 * through it (rate-limit counters, domain events) is decided by its users:
 *
 * - `ThrottlerStorage` (`common/rate-limit/shared-throttler-storage.ts`) counts on `client`;
 * - `ReplicaBus` (`common/events/replica-bus.ts`) publishes and subscribes domain events;
 * - `/health/ready` asks `ping` (`common/health/shared-state-health.ts`).
 *
 * Bound by `SharedStateModule`: `RedisSharedState` with `REDIS_URL`, else `NoSharedState`.
 */
export abstract class SharedState {
  /** True when the replicas share state through Redis (REDIS_URL is set). */
  abstract readonly enabled: boolean;

  /** Commands can be sent now (the connection is up and answered its handshake). */
  abstract get available(): boolean;

  /**
   * The command connection, its keys prefixed with REDIS_KEY_PREFIX; null without Redis. Commands
   * fail at once while the connection is down (they are never queued) and after 1 s without an answer.
   */
  abstract get client(): Redis | null;

  /** REDIS_KEY_PREFIX ('' without Redis): for keys a Lua script builds itself, and for connections without a prefix. */
  get keyPrefix(): string {
    return '';
  }

  /**
   * A connection of its own, for blocking commands (XREAD BLOCK) that would hold up every other
   * command on the shared one, or for commands that must not wait behind them (the terminal's
   * leases): no key prefix unless `prefixed` (callers pass whole keys), no command timeout unless
   * given, never queued while down. The caller connects it (`connect()`) and ends it (`disconnect()`).
   * Throws without Redis.
   */
  dedicatedConnection(name: string, _options?: DedicatedConnectionOptions): Redis {
    throw new Error(`No Redis is configured (REDIS_URL) for the connection ${name}`);
  }

  /** A channel name of this installation (REDIS_KEY_PREFIX + name; channels are not keys, so not prefixed by the client). */
  abstract channel(name: string): string;

  /** Publishes one message; rejects when Redis cannot take it now. */
  abstract publish(channel: string, message: string): Promise<void>;

  /**
   * Delivers every message of `channel` to `onMessage`, from now on and after every reconnection.
   * Channels are best registered before the application initialises (providers' constructors).
   */
  abstract subscribe(channel: string, onMessage: (message: string) => void): void;

  /** True while every channel is subscribed on a connection that answers: no message can be missed. */
  abstract get subscribed(): boolean;

  /** Told whenever `subscribed` changes. */
  abstract onSubscribedChange(listener: (subscribed: boolean) => void): void;

  /** Told whenever the command connection becomes available (again). */
  abstract onAvailable(listener: () => void): void;

  /** One round trip; resolves with what answered (e.g. `Redis 7.0.15`), rejects after `timeoutMs` or on any failure. */
  abstract ping(timeoutMs: number): Promise<string>;
}

/** Without REDIS_URL: one process, nothing shared. Its users keep their state in memory. */
export class NoSharedState extends SharedState {
  readonly enabled = false;

  get available(): boolean {
    return false;
  }

  get client(): null {
    return null;
  }

  channel(name: string): string {
    return name;
  }

  publish(): Promise<void> {
    return Promise.reject(new Error('No Redis is configured (REDIS_URL)'));
  }

  subscribe(): void {}

  get subscribed(): boolean {
    return false;
  }

  onSubscribedChange(): void {}

  onAvailable(): void {}

  ping(): Promise<string> {
    return Promise.reject(new Error('No Redis is configured (REDIS_URL)'));
  }
}
