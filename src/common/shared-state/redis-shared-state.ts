import { setTimeout as delay } from 'node:timers/promises';
import { Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { Redis, type RedisOptions } from 'ioredis';
import type { SharedStateConfig } from '../../config/namespaces/shared-state.config.js';
import { type DedicatedConnectionOptions, SharedState } from './shared-state.js';

export interface RedisSharedStateOptions {
  /** How often the subscription connection is pinged: a connection that stopped answering is replaced. Default 2 s. */
  heartbeatMs?: number;
  /** How long initialisation waits for the first connection before the application goes on without it. Default 2 s. */
  connectWaitMs?: number;
}

const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * Redis through ioredis, on two connections: one for commands (rate-limit counters, publishing,
 * pings) and one subscribed to the channels (a subscribed connection takes no other commands).
 *
 * - **Nothing waits for Redis.** Commands are never queued while the connection is down
 *   (`enableOfflineQueue: false`, no retries per request) and time out after 1 s: callers decide at
 *   once what an outage means for them.
 * - **Reconnection is the client's**, every 100 ms growing to 1 s, forever; the process never
 *   restarts for Redis.
 * - **The subscription is ours**: after every reconnection the channels are subscribed again, and
 *   only once Redis confirmed it is `subscribed` true again. A ping every 2 s on that connection
 *   finds one that stopped answering without closing (a network partition), which is then replaced.
 * - Boot waits at most 2 s for the first connection, so a replica normally starts in sync; without
 *   Redis it starts anyway (and is not ready, see `/health/ready`).
 */
export class RedisSharedState extends SharedState implements OnModuleInit, OnApplicationShutdown {
  readonly enabled = true;
  private readonly logger = new Logger('SharedState');
  private readonly commands: Redis;
  private readonly subscriber: Redis;
  private readonly channels = new Map<string, (message: string) => void>();
  private readonly subscribedListeners: ((subscribed: boolean) => void)[] = [];
  private readonly availableListeners: (() => void)[] = [];
  private live = false;
  private version = 'Redis';
  /** The last outage reported, so that a reconnecting loop logs once, not at every attempt. */
  private outage: string | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private closing = false;
  private readonly common: RedisOptions;

  constructor(
    private readonly config: SharedStateConfig,
    private readonly options: RedisSharedStateOptions = {},
  ) {
    super();
    if (!config.redisUrl) throw new Error('RedisSharedState needs REDIS_URL');
    this.common = {
      lazyConnect: true,
      connectTimeout: 2_000,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (attempt: number) => Math.min(100 * attempt, 1_000),
    };
    this.commands = new Redis(config.redisUrl, {
      ...this.common,
      keyPrefix: config.keyPrefix,
      commandTimeout: 1_000,
      connectionName: 'devpocket',
    });
    this.subscriber = new Redis(config.redisUrl, {
      ...this.common,
      autoResubscribe: false,
      commandTimeout: 2_000,
      connectionName: 'devpocket-events',
    });

    this.commands.on('ready', () => {
      this.recovered();
      void this.readVersion();
      for (const listener of this.availableListeners) listener();
    });
    this.commands.on('error', (error: Error) => this.lost(error));
    this.commands.on('close', () => this.lost(new Error('the connection closed')));
    this.subscriber.on('ready', () => void this.subscribeAll());
    this.subscriber.on('error', (error: Error) => this.lost(error));
    this.subscriber.on('close', () => this.setLive(false));
    this.subscriber.on('message', (channel: string, message: string) => this.channels.get(channel)?.(message));
  }

  get available(): boolean {
    return this.commands.status === 'ready';
  }

  get client(): Redis {
    return this.commands;
  }

  override get keyPrefix(): string {
    return this.config.keyPrefix;
  }

  override dedicatedConnection(name: string, options: DedicatedConnectionOptions = {}): Redis {
    return new Redis(this.config.redisUrl ?? '', {
      ...this.common,
      connectionName: `devpocket-${name}`,
      ...(options.prefixed ? { keyPrefix: this.config.keyPrefix } : {}),
      ...(options.commandTimeoutMs ? { commandTimeout: options.commandTimeoutMs } : {}),
    });
  }

  channel(name: string): string {
    return `${this.config.keyPrefix}${name}`;
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.commands.publish(channel, message);
  }

  subscribe(channel: string, onMessage: (message: string) => void): void {
    this.channels.set(channel, onMessage);
    if (this.subscriber.status === 'ready') void this.subscribeAll();
  }

  get subscribed(): boolean {
    return this.live;
  }

  onSubscribedChange(listener: (subscribed: boolean) => void): void {
    this.subscribedListeners.push(listener);
  }

  onAvailable(listener: () => void): void {
    this.availableListeners.push(listener);
  }

  async ping(timeoutMs: number): Promise<string> {
    if (!this.available) throw new Error(`not connected (${this.outage ?? this.commands.status})`);
    const controller = new AbortController();
    try {
      await Promise.race([
        this.commands.ping(),
        delay(timeoutMs, null, { signal: controller.signal }).then(() => {
          throw new Error(`no answer within ${timeoutMs / 1000} s`);
        }),
      ]);
    } finally {
      controller.abort();
    }
    return this.version;
  }

  async onModuleInit(): Promise<void> {
    const first = Promise.allSettled([this.commands.connect(), this.subscriber.connect()]);
    const ready = new Promise<void>((resolve) => {
      if (this.live || this.channels.size === 0) return resolve();
      this.onSubscribedChange((subscribed) => subscribed && resolve());
    });
    const wait = this.options.connectWaitMs ?? 2_000;
    const controller = new AbortController();
    await Promise.race([first.then(() => ready), delay(wait, null, { signal: controller.signal }).catch(() => undefined)]);
    controller.abort();
    this.heartbeat = setInterval(() => void this.beat(), this.options.heartbeatMs ?? 2_000);
    this.heartbeat.unref();
  }

  onApplicationShutdown(): void {
    this.closing = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.setLive(false);
    this.commands.disconnect();
    this.subscriber.disconnect();
  }

  private async subscribeAll(): Promise<void> {
    const channels = [...this.channels.keys()];
    try {
      if (channels.length > 0) await this.subscriber.subscribe(...channels);
      this.recovered();
      this.setLive(true);
    } catch (error) {
      this.lost(error);
      // A half-subscribed connection would miss messages in silence: start over on a fresh one.
      this.subscriber.disconnect(true);
    }
  }

  /** A subscription that stopped answering (no close, no error: a partition) is replaced. */
  private async beat(): Promise<void> {
    if (!this.live || this.closing) return;
    try {
      await this.subscriber.ping();
    } catch (error) {
      if (!this.live || this.closing) return;
      this.lost(new Error(`the subscription did not answer a ping: ${errorText(error)}`));
      this.setLive(false);
      this.subscriber.disconnect(true);
    }
  }

  private async readVersion(): Promise<void> {
    try {
      const info = await this.commands.info('server');
      const version = /^redis_version:(\S+)/m.exec(info)?.[1];
      if (version) this.version = `Redis ${version}`;
    } catch {
      // The version is only shown by /health/ready.
    }
  }

  private setLive(live: boolean): void {
    if (this.live === live) return;
    this.live = live;
    for (const listener of this.subscribedListeners) listener(live);
  }

  private lost(error: unknown): void {
    if (this.closing) return;
    const reason = errorText(error) || 'connection failed';
    if (this.outage !== null) return;
    this.outage = reason;
    this.logger.warn(`Redis cannot be reached (${reason}); reconnecting. Until it is back: see docs/operations.md#redis-outage`);
  }

  private recovered(): void {
    if (this.outage === null || this.closing) return;
    if (!this.available || this.subscriber.status !== 'ready') return;
    this.outage = null;
    this.logger.log('Redis is reachable again');
  }
}
