import { Logger } from '@nestjs/common';
import type { UpstreamHistory } from '../terminal-session.js';
import { errorText, UpstreamCore } from './cluster-parts.js';
import {
  asBytesEntry,
  BytesEntry,
  bytesEntryOf,
  parseBytesEntry,
  parseEntry,
  readEnds,
  readNewest,
  readSnapshot,
  skipTo,
} from './stream-entries.js';
import type { BufferEntry, ReadStream } from './stream-reader.js';

/** What a follower's reading needs of its ClusterUpstream. */
export interface FollowerHost extends UpstreamCore {
  /** True while the upstream follows (neither owner, nor taking over, nor ended). */
  following(): boolean;
  /** The stream goes on at `offset` without bytes before it: tells the session, or moves its starting point. */
  skipped(offset: number): void;
}

/**
 * The follower side of a ClusterUpstream (docs/terminal.md, "Several replicas"): reads the output
 * stream into its session (through the replica's StreamReader), goes on after bytes it finds
 * missing (a gap, or a backlog trimmed while its session did not read) and tells its session, and,
 * when the upstream takes over a vacant lease, reads what is left of the stream.
 */
export class FollowerReader {
  private readonly logger = new Logger('TerminalCluster');
  /** Its session has not read what it got: no more until it does. */
  private paused = false;
  private resuming = false;
  private readonly read: ReadStream;

  constructor(private readonly host: FollowerHost) {
    this.read = {
      key: host.parts.keyPrefix + host.keys.output,
      after: () => (this.paused || !this.host.following() ? null : this.host.at.lastId),
      entries: (list) => this.received(list),
      lost: (error) => {
        this.logger.warn(`The terminal stream of ${this.host.spec.id} cannot be read (${errorText(error)}); its clients reconnect`);
        this.host.finish({ code: null, signal: 'shared state unavailable' });
      },
    };
  }

  /** Starts following: the owner's session name and the stream's history; null when the owner has not written its name yet. */
  async follow(): Promise<{ sessionName: string; history: UpstreamHistory } | null> {
    const { parts, keys, at, sequenced } = this.host;
    const snapshot = await readSnapshot(parts.redis, keys, '0-0');
    if (snapshot.name === null) return null;
    const history = at.startFrom(snapshot);
    sequenced.joined(await parts.redis.hget(keys.meta, 'modes'));
    parts.streams.add(this.read);
    return { sessionName: snapshot.name, history };
  }

  /**
   * The session reads again (Duplex `read`): a reading paused for it goes on. When the stream no
   * longer holds what follows (trimmed meanwhile), the backlog would only be drawn over, so this
   * replica goes on from its newest entry.
   */
  wake(): void {
    if (!this.paused || this.resuming) return;
    this.resuming = true;
    const { parts, keys, at } = this.host;
    void readEnds(parts.redis, keys.output)
      .then(({ first, last }) => {
        const skip = this.paused && this.host.following() ? skipTo(at.end, first, last) : null;
        if (skip) {
          at.lastId = skip.lastId;
          this.resync(skip.end, 'it was trimmed while every client here was behind');
        }
      })
      // Redis unreachable: the reading finds out (and waits for it, or gives up after the outage grace).
      .catch(() => undefined)
      .finally(() => {
        this.resuming = false;
        this.paused = false;
        parts.streams.wake(this.read);
      });
  }

  /** Stops reading. */
  stop(): void {
    this.host.parts.streams.remove(this.read);
  }

  /**
   * Taking over a vacant lease: stops following and reads what is left of the stream after the
   * last entry read, going on after bytes that are gone. False when the session ended with it.
   */
  async catchUp(): Promise<boolean> {
    this.stop();
    const { parts, keys, at } = this.host;
    const snapshot = await readSnapshot(parts.redis, keys, at.lastId);
    for (const raw of snapshot.entries) if (!this.deliver(asBytesEntry(raw))) return false;
    if (snapshot.end !== null && snapshot.end > at.end) this.resync(snapshot.end, 'its last entries are gone');
    return true;
  }

  /** Follows again from the last entry read (a takeover that failed): true once it reads. */
  restart(): Promise<boolean> {
    if (!this.host.following()) return Promise.resolve(false);
    this.host.parts.streams.add(this.read);
    return Promise.resolve(true);
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

  /** Entries the StreamReader read: to the session, until it holds as much as it buffers (then the reading pauses). */
  private received(list: BufferEntry[]): void {
    for (const raw of list) {
      if (!this.deliver(bytesEntryOf(raw))) {
        this.stop();
        return;
      }
    }
    const { stream } = this.host;
    if (stream.readableLength >= stream.readableHighWaterMark) this.paused = true;
  }

  /** Hands one entry of the stream to the session; false when the session ends with it. */
  private deliver(read: BytesEntry): boolean {
    const { at, sequenced, stream } = this.host;
    const entry = parseBytesEntry(read);
    at.lastId = read.id;
    if (entry === null) {
      sequenced.tell(read.fields, at.end);
      return true;
    }
    if (entry.kind === 'exit') {
      this.host.finish({ code: entry.code, signal: null });
      return false;
    }
    if (entry.start !== at.end) this.resync(entry.start, 'trimmed before this replica read them, or never written');
    sequenced.tell(read.fields, entry.start);
    at.end += entry.bytes.length;
    stream.push(entry.bytes);
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
