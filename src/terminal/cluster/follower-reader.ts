import { setTimeout as delay } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { UpstreamHistory } from '../terminal-session.js';
import { errorText, UpstreamCore } from './cluster-parts.js';
import { parseEntry, RawEntry, readAfter, readEnds, readNewest, readSnapshot, skipTo, StreamEntry } from './stream-entries.js';

const READ_COUNT = 512;

/** What a follower's reading needs of its ClusterUpstream. */
export interface FollowerHost extends UpstreamCore {
  /** True while the upstream follows (neither owner, nor taking over, nor ended). */
  following(): boolean;
  /** The stream goes on at `offset` without bytes before it: tells the session, or moves its starting point. */
  skipped(offset: number): void;
}

/**
 * The follower side of a ClusterUpstream (docs/terminal.md, "Several replicas"): reads the output
 * stream into its session (XREAD on a connection of its own), goes on after bytes it finds
 * missing (a gap, or a backlog trimmed while its session did not read) and tells its session, and,
 * when the upstream takes over a vacant lease, reads what is left of the stream.
 */
export class FollowerReader {
  private readonly logger = new Logger('TerminalCluster');
  private reader: Redis | null = null;
  private readWanted: (() => void) | null = null;

  constructor(private readonly host: FollowerHost) {}

  /** Starts following: the owner's session name and the stream's history; null when the owner has not written its name yet. */
  async follow(): Promise<{ sessionName: string; history: UpstreamHistory } | null> {
    const { parts, keys, at, sequenced } = this.host;
    const snapshot = await readSnapshot(parts.redis, keys, '0-0');
    if (snapshot.name === null) return null;
    const history = at.startFrom(snapshot);
    sequenced.joined(await parts.redis.hget(keys.meta, 'modes'));
    this.reader = await parts.connect('terminal-follow');
    void this.readOutput(this.reader);
    return { sessionName: snapshot.name, history };
  }

  /** The session reads again (Duplex `read`): a reading paused for it goes on. */
  wake(): void {
    const wanted = this.readWanted;
    this.readWanted = null;
    wanted?.();
  }

  /** Stops reading (its connection closed); `wake` ends a reading paused for the session. */
  stop(): void {
    this.reader?.disconnect();
    this.reader = null;
  }

  /**
   * Taking over a vacant lease: stops following and reads what is left of the stream after the
   * last entry read, going on after bytes that are gone. False when the session ended with it.
   */
  async catchUp(): Promise<boolean> {
    this.stop();
    const { parts, keys, at } = this.host;
    const snapshot = await readSnapshot(parts.redis, keys, at.lastId);
    for (const raw of snapshot.entries) if (!this.deliver(raw)) return false;
    if (snapshot.end !== null && snapshot.end > at.end) this.resync(snapshot.end, 'its last entries are gone');
    return true;
  }

  /** Follows again from the last entry read (a takeover that failed): true once it reads. */
  async restart(): Promise<boolean> {
    const reader = await this.host.parts.connect('terminal-follow');
    if (!this.host.following()) {
      reader.disconnect();
      return false;
    }
    this.reader = reader;
    void this.readOutput(reader);
    return true;
  }

  /**
   * Follows from the stream's newest entry (an owner fenced off by the replica that holds its
   * lease now): what this replica showed after its last accepted write never reached the stream,
   * so its session starts again at the stream's end and redraws. False when the session ended.
   */
  async rejoin(): Promise<boolean> {
    const { parts, keys, at } = this.host;
    const newest = await readNewest(parts.redis, keys);
    const entry = newest.last && parseEntry(newest.last);
    if (entry?.kind === 'exit') {
      this.host.finish({ code: entry.code, signal: null });
      return false;
    }
    if (!this.host.following()) return false;
    at.lastId = newest.last?.[0] ?? at.lastId;
    this.resync(newest.end ?? at.end, 'another replica owns it now');
    return this.restart();
  }

  private async readOutput(reader: Redis): Promise<void> {
    const { parts, keys, at, stream } = this.host;
    const { timing, keyPrefix } = parts;
    const key = keyPrefix + keys.output;
    const reading = (): boolean => this.host.following() && this.reader === reader;
    let failingSince: number | null = null;
    let paused = false;
    while (reading()) {
      let entries: RawEntry[];
      try {
        if (paused) {
          // Back from a pause (every client here was behind): when the stream no longer holds what
          // follows, its backlog would only be drawn over, so this replica goes on from its newest entry.
          const { first, last } = await readEnds(reader, key);
          if (!reading()) return;
          const skip = skipTo(at.end, first, last);
          if (skip) {
            at.lastId = skip.lastId;
            this.resync(skip.end, 'it was trimmed while every client here was behind');
          }
          paused = false;
        }
        entries = await readAfter(reader, key, at.lastId, timing.blockMs, READ_COUNT);
        failingSince = null;
      } catch (error) {
        if (!reading()) return;
        failingSince ??= Date.now();
        if (Date.now() - failingSince > timing.outageGraceMs) {
          this.logger.warn(`The terminal stream of ${this.host.spec.id} cannot be read (${errorText(error)}); its clients reconnect`);
          this.host.finish({ code: null, signal: 'shared state unavailable' });
          return;
        }
        await delay(200);
        continue;
      }
      for (const raw of entries) if (!this.deliver(raw)) return;
      if (stream.readableLength >= stream.readableHighWaterMark) {
        await new Promise<void>((resolve) => (this.readWanted = resolve));
        paused = true;
      }
    }
  }

  /** Hands one entry of the stream to the session; false when the session ends with it. */
  private deliver(raw: RawEntry): boolean {
    const { at, sequenced, stream } = this.host;
    const entry: StreamEntry | null = parseEntry(raw);
    at.lastId = raw[0];
    if (entry === null) {
      sequenced.tell(raw[1], at.end);
      return true;
    }
    if (entry.kind === 'exit') {
      this.host.finish({ code: entry.code, signal: null });
      return false;
    }
    if (entry.start !== at.end) this.resync(entry.start, 'trimmed before this replica read them, or never written');
    sequenced.tell(raw[1], entry.start);
    const bytes = Buffer.from(entry.data, 'utf8');
    at.end += bytes.length;
    stream.push(bytes);
    return true;
  }

  /**
   * The stream goes on at `offset` without the bytes from `at.end` (gone for this replica). What
   * was read before them reaches the session first; then the session starts again at `offset` and
   * redraws its clients (a `reset` each, and a repaint through the owner). Before the session
   * listens, its starting point simply moves there.
   */
  private resync(offset: number, why: string): void {
    const { at, stream } = this.host;
    this.logger.log(
      `The terminal stream of ${this.host.spec.id} went on at ${offset} without the bytes from ${at.end} (${why}); its clients are redrawn`,
    );
    while (stream.readableLength > 0 && stream.read() !== null);
    at.end = offset;
    this.host.skipped(offset);
  }
}
