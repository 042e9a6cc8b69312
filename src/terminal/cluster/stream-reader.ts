import { setTimeout as delay } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { errorText } from './cluster-parts.js';

/** An entry as XREAD of Buffers returns it: its id and its fields, names and values alternating. */
export type BufferEntry = [id: Buffer, fields: Buffer[]];

/** One stream read through the replica's StreamReader. */
export interface ReadStream {
  /** The stream's whole key (the key prefix included: the reading connection has none). */
  readonly key: string;
  /** The id to read after; null while it wants no entries (its session has not read what it got). */
  after(): string | null;
  /** Entries read, oldest first, at most `count` of them. */
  entries(list: BufferEntry[]): void;
  /** Redis could not be read for the outage grace: the stream is no longer read (it may be added again). */
  lost(error: unknown): void;
}

export interface StreamReaderOptions {
  /** A connected connection of its own (no key prefix); called again after it failed. */
  connect(): Promise<Redis>;
  /** The shared command connection (keys prefixed), for the wake-ups. */
  redis: Redis;
  /** The wake-up stream's key (unprefixed), one per replica. */
  wakeKey: string;
  keyPrefix: string;
  blockMs: number;
  outageGraceMs: number;
  /** Entries read at most per stream per XREAD. */
  count: number;
}

/**
 * Every stream the replica reads without owning it (the output of the terminals it follows, the
 * input of those it owns), read by one blocking XREAD over all of them on one connection
 * (docs/terminal.md, "Several replicas"): a connection per stream cost about 140 KiB each, and
 * 200 terminals meant 200 of them. XREAD answers as soon as any of its streams has entries, so a
 * stream waits no longer than it would on a connection of its own.
 *
 * A stream that joins, or that wants entries again, while the XREAD blocks, wakes it with an entry
 * in the replica's wake-up stream, which every XREAD reads too (only stream commands: no CLIENT
 * UNBLOCK, which managed Redis services may refuse).
 */
export class StreamReader {
  private readonly logger = new Logger('TerminalCluster');
  private readonly streams = new Set<ReadStream>();
  private connection: Redis | null = null;
  private running = false;
  private closed = false;
  /** The XREAD in flight reads exactly these streams (null when none is in flight). */
  private reading: Set<ReadStream> | null = null;
  private woken = false;
  private idle: (() => void) | null = null;
  private wakeId = '0-0';
  private readonly wakeKey: string;

  constructor(private readonly options: StreamReaderOptions) {
    this.wakeKey = options.keyPrefix + options.wakeKey;
  }

  /** Reads `stream` from its `after()` on. */
  add(stream: ReadStream): void {
    if (this.closed) return;
    this.streams.add(stream);
    this.wake(stream);
    if (!this.running) void this.run();
  }

  remove(stream: ReadStream): void {
    this.streams.delete(stream);
  }

  /** `stream` wants entries again (its `after()` is no longer null): the XREAD in flight is answered at once. */
  wake(stream: ReadStream): void {
    if (this.reading?.has(stream)) return;
    this.woken = true;
    const idle = this.idle;
    this.idle = null;
    if (idle) {
      idle();
      return;
    }
    if (this.reading === null) return;
    this.options.redis
      .multi()
      .xadd(this.options.wakeKey, 'MAXLEN', '1', '*', 'w', '1')
      .pexpire(this.options.wakeKey, 60_000)
      .exec()
      .catch(() => undefined);
  }

  close(): void {
    this.closed = true;
    this.streams.clear();
    this.idle?.();
    this.connection?.disconnect();
    this.connection = null;
  }

  private async run(): Promise<void> {
    this.running = true;
    let failingSince: number | null = null;
    try {
      while (!this.closed && this.streams.size > 0) {
        this.woken = false;
        const wanted = [...this.streams].flatMap((stream) => {
          const after = stream.after();
          return after === null ? [] : [{ stream, after }];
        });
        if (wanted.length === 0) {
          if (!this.woken) await new Promise<void>((resolve) => (this.idle = resolve));
          continue;
        }
        let reply: unknown;
        try {
          this.connection ??= await this.options.connect();
          this.reading = new Set(wanted.map(({ stream }) => stream));
          const keys = [this.wakeKey, ...wanted.map(({ stream }) => stream.key)];
          const ids = [this.wakeId, ...wanted.map(({ after }) => after)];
          // Woken while it connected: it reads without blocking.
          const block = this.woken ? 1 : this.options.blockMs;
          reply = await this.connection.xreadBuffer('COUNT', this.options.count, 'BLOCK', block, 'STREAMS', ...keys, ...ids);
          failingSince = null;
        } catch (error) {
          this.reading = null;
          if (this.closed) return;
          this.connection?.disconnect();
          this.connection = null;
          failingSince ??= Date.now();
          if (Date.now() - failingSince > this.options.outageGraceMs) {
            failingSince = null;
            this.loseAll(error);
          }
          await delay(200);
          continue;
        }
        this.reading = null;
        this.dispatch(reply, wanted);
      }
    } finally {
      this.running = false;
      this.reading = null;
    }
  }

  /**
   * Hands each stream its entries. A stream removed meanwhile gets none, and so does one that no
   * longer reads after the id this XREAD read after (it went on another way while the XREAD was in
   * flight, as a takeover reads what is left of the stream): its next XREAD reads from where it is.
   */
  private dispatch(reply: unknown, wanted: { stream: ReadStream; after: string }[]): void {
    if (!Array.isArray(reply)) return;
    const byKey = new Map(wanted.map((read) => [read.stream.key, read]));
    for (const item of reply as [Buffer, BufferEntry[]][]) {
      const [key, entries] = item;
      const name = key.toString('utf8');
      if (name === this.wakeKey) {
        const last = entries.at(-1);
        if (last) this.wakeId = last[0].toString('utf8');
        continue;
      }
      const read = byKey.get(name);
      if (!read || entries.length === 0 || !this.streams.has(read.stream) || read.stream.after() !== read.after) continue;
      read.stream.entries(entries);
    }
  }

  private loseAll(error: unknown): void {
    const lost = [...this.streams];
    this.streams.clear();
    if (lost.length > 0) this.logger.warn(`The terminal streams of this replica cannot be read (${errorText(error)})`);
    for (const stream of lost) stream.lost(error);
  }
}
