import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import type { Redis } from 'ioredis';
import { SharedState } from '../../common/shared-state/shared-state.js';
import { terminalConfig } from '../../config/namespaces/terminal.config.js';
import { EnvironmentSpec, RuntimeProvider, TerminalSize } from '../../runtime/runtime.provider.js';
import type { SessionUpstream } from '../terminal-session.js';
import { TerminalMetrics } from '../terminal-metrics.js';
import type { ClusterParts, ClusterTiming } from './cluster-parts.js';
import { ClusterUpstream } from './cluster-upstream.js';
import { StreamReader } from './stream-reader.js';
import { Admission, TerminalKeys, TerminalScripts } from './terminal-scripts.js';

/** The lease, stream and heartbeat timings (docs/terminal.md, "Several replicas"). */
export const CLUSTER_TIMING: ClusterTiming = {
  leaseMs: 5_000,
  renewMs: 1_000,
  keepMs: 24 * 60 * 60 * 1000,
  inputKeepMs: 30_000,
  outageGraceMs: 10_000,
  ownerWaitMs: 5_000,
};
/** A replica's heartbeat key lives this long: its connection counts stop counting this long after it died. */
const HEARTBEAT_TTL_MS = 5_000;
const HEARTBEAT_MS = 1_000;
const COUNTS_KEEP_MS = 24 * 60 * 60 * 1000;
/** A lease command that has not answered within this long counts as failed (the lease has 4 s to spare). */
const LEASE_COMMAND_TIMEOUT_MS = 2_000;
/** Entries one XREAD reads at most per stream, and how long it blocks. */
const READ_COUNT = 512;
const READ_BLOCK_MS = 2_000;

/**
 * The terminal across replicas, with `REDIS_URL` (`enabled`): opens each environment's shared
 * upstream (ClusterUpstream) and counts the connection limits per environment and per user over
 * every live replica. Without Redis it is never used: the hub keeps today's single-process code.
 *
 * Counts: each replica writes its own absolute counts (a field per replica in one hash per
 * environment and per user) and keeps a heartbeat key; admission sums the fields of replicas whose
 * heartbeat lives, so a dead replica's connections stop counting within 5 s. While Redis cannot be
 * reached, admission counts this replica's connections only, and the counts are written again
 * when it is back.
 */
@Injectable()
export class ClusterTerminals implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('TerminalCluster');
  readonly replica = randomUUID();
  private readonly environmentCounts = new Map<string, number>();
  private readonly userCounts = new Map<string, number>();
  private heartbeat: NodeJS.Timeout | null = null;
  private scriptsOnce: TerminalScripts | null = null;
  /**
   * The leases' own connection: a renewal never waits behind the output stream's writes on the
   * shared connection, which under load can queue for longer than the lease has to spare.
   */
  private leaseConnection: Redis | null = null;
  private leaseScriptsOnce: TerminalScripts | null = null;
  private streamsOnce: StreamReader | null = null;
  private readonly upstreams = new Set<ClusterUpstream>();

  constructor(
    private readonly state: SharedState,
    private readonly runtime: RuntimeProvider,
    @Inject(terminalConfig.KEY) private readonly config: ConfigType<typeof terminalConfig>,
    private readonly metrics: TerminalMetrics,
  ) {}

  get enabled(): boolean {
    return this.state.enabled;
  }

  private get redis(): Redis {
    const client = this.state.client;
    if (!client) throw new Error('No Redis is configured (REDIS_URL)');
    return client;
  }

  private get scripts(): TerminalScripts {
    this.scriptsOnce ??= new TerminalScripts(this.redis, this.state.keyPrefix);
    return this.scriptsOnce;
  }

  /** The replica's one blocking reader of the terminal streams it follows, and of the input streams of those it owns. */
  private get streams(): StreamReader {
    this.streamsOnce ??= new StreamReader({
      connect: async () => {
        const connection = this.state.dedicatedConnection('terminal-read');
        connection.on('error', () => undefined);
        try {
          await connection.connect();
        } catch (error) {
          // Not left to reconnect on its own: the reader tries again with a new one.
          connection.disconnect();
          throw error;
        }
        return connection;
      },
      redis: this.redis,
      wakeKey: TerminalKeys.wake(this.replica),
      keyPrefix: this.state.keyPrefix,
      blockMs: READ_BLOCK_MS,
      outageGraceMs: CLUSTER_TIMING.outageGraceMs,
      count: READ_COUNT,
    });
    return this.streamsOnce;
  }

  private get leaseScripts(): TerminalScripts {
    if (!this.leaseScriptsOnce) {
      const connection = this.state.dedicatedConnection('terminal-lease', { prefixed: true, commandTimeoutMs: LEASE_COMMAND_TIMEOUT_MS });
      connection.on('error', () => undefined);
      void connection.connect().catch(() => undefined);
      this.leaseConnection = connection;
      this.leaseScriptsOnce = new TerminalScripts(connection, this.state.keyPrefix);
    }
    return this.leaseScriptsOnce;
  }

  onModuleInit(): void {
    if (!this.enabled) return;
    void this.leaseScripts;
    this.heartbeat = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
    void this.beat();
    // Counts that could not be written during an outage are written again.
    this.state.onAvailable(() => void this.beat().then(() => this.rewriteCounts()));
  }

  onApplicationShutdown(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    // Open upstreams give their leases up in settle(), which ends the connection after them.
    if (this.upstreams.size === 0) this.leaseConnection?.disconnect();
    if (this.state.available) void this.redis.del(TerminalKeys.replica(this.replica)).catch(() => undefined);
  }

  private async beat(): Promise<void> {
    if (!this.state.available) return;
    await this.redis.set(TerminalKeys.replica(this.replica), '1', 'PX', HEARTBEAT_TTL_MS).catch(() => undefined);
  }

  /**
   * Opens the environment's upstream in this replica: its owner or a follower of it. While Redis
   * cannot be reached, nobody can tell who owns it: the terminal is served as by a single process,
   * with a tmux client of this replica's own and offsets of its own, rather than refused
   * (docs/terminal.md#several-replicas, "When Redis goes away").
   */
  async open(spec: EnvironmentSpec, size: TerminalSize, wanted: () => boolean): Promise<SessionUpstream> {
    try {
      return await this.openShared(spec, size, wanted);
    } catch (error) {
      if (this.state.available) throw error;
      this.logger.warn(`Redis cannot be reached: the terminal of ${spec.id} is served by this replica alone until its clients leave`);
      return this.runtime.attachTerminal(spec, size);
    }
  }

  private async openShared(spec: EnvironmentSpec, size: TerminalSize, wanted: () => boolean): Promise<ClusterUpstream> {
    const parts: ClusterParts = {
      redis: this.redis,
      scripts: this.scripts,
      leases: this.leaseScripts,
      keyPrefix: this.state.keyPrefix,
      streams: this.streams,
      runtime: this.runtime,
      replica: this.replica,
      owning: (owns, tookOver) => {
        if (owns) this.metrics.owned.inc();
        else this.metrics.owned.dec();
        if (owns && tookOver) this.metrics.takeovers.inc();
      },
      replayBufferBytes: this.config.replayBufferBytes,
      timing: CLUSTER_TIMING,
      duplicateInput: () => this.metrics.inputDuplicates.inc(),
    };
    const upstream = await ClusterUpstream.open(spec, size, parts, wanted);
    this.upstreams.add(upstream);
    void upstream.exit.then(() => this.upstreams.delete(upstream));
    return upstream;
  }

  /**
   * At shutdown, once the hub closed its sessions: waits (at most 2 s) until their tmux clients
   * ended and their leases were given up, so that another replica takes over at once rather than
   * when the leases expire.
   */
  async settle(): Promise<void> {
    if (this.upstreams.size > 0) {
      const controller = new AbortController();
      await Promise.race([
        Promise.all([...this.upstreams].map((upstream) => upstream.kill())),
        delay(2_000, null, { signal: controller.signal }).catch(() => undefined),
      ]);
      controller.abort();
    }
    this.leaseConnection?.disconnect();
    this.streamsOnce?.close();
  }

  /** Takes a connection slot for one more client of `userId` on `environmentId`, or says which limit refuses it. */
  async admit(environmentId: string, userId: string): Promise<Admission> {
    // Reserved here first, so that admissions running side by side in this replica count each other.
    const environment = increment(this.environmentCounts, environmentId);
    const user = increment(this.userCounts, userId);
    let verdict: Admission;
    try {
      verdict = await this.scripts.admit(
        { environment: new TerminalKeys(environmentId).clients, user: TerminalKeys.user(userId) },
        this.replica,
        { environment: this.config.maxClientsPerEnvironment, user: this.config.maxConnectionsPerUser },
        { environment, user },
        COUNTS_KEEP_MS,
      );
    } catch {
      // Redis unreachable: this replica's own connections are all it can count.
      verdict =
        environment > this.config.maxClientsPerEnvironment ? 'environment' : user > this.config.maxConnectionsPerUser ? 'user' : 'ok';
    }
    if (verdict !== 'ok') {
      decrement(this.environmentCounts, environmentId);
      decrement(this.userCounts, userId);
    }
    return verdict;
  }

  /** Gives back the slot of a client that left. */
  release(environmentId: string, userId: string): void {
    const environment = decrement(this.environmentCounts, environmentId);
    const user = decrement(this.userCounts, userId);
    if (!this.state.available) return;
    const pipeline = this.redis.pipeline();
    write(pipeline, new TerminalKeys(environmentId).clients, this.replica, environment);
    write(pipeline, TerminalKeys.user(userId), this.replica, user);
    pipeline.exec().catch(() => undefined);
  }

  private rewriteCounts(): void {
    const pipeline = this.redis.pipeline();
    for (const [id, count] of this.environmentCounts) write(pipeline, new TerminalKeys(id).clients, this.replica, count);
    for (const [id, count] of this.userCounts) write(pipeline, TerminalKeys.user(id), this.replica, count);
    pipeline.exec().catch((error: unknown) => this.logger.warn(`Terminal connection counts not written: ${String(error)}`));
  }
}

function increment(counts: Map<string, number>, key: string): number {
  const count = (counts.get(key) ?? 0) + 1;
  counts.set(key, count);
  return count;
}

function decrement(counts: Map<string, number>, key: string): number {
  const count = (counts.get(key) ?? 1) - 1;
  if (count > 0) counts.set(key, count);
  else counts.delete(key);
  return count;
}

function write(pipeline: ReturnType<Redis['pipeline']>, key: string, replica: string, count: number): void {
  if (count > 0) pipeline.hset(key, replica, count);
  else pipeline.hdel(key, replica);
}
