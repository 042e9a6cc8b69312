import type { Duplex } from 'node:stream';
import type { Redis } from 'ioredis';
import type { EnvironmentSpec, ExitStatus, RuntimeProvider } from '../../runtime/runtime.provider.js';
import type { UpstreamHistory } from '../terminal-session.js';
import type { ClusterInput } from './owner-input.js';
import type { StreamReader } from './stream-reader.js';
import { historyOf, StreamSnapshot } from './stream-entries.js';
import type { TerminalKeys, TerminalScripts } from './terminal-scripts.js';

/** What a ClusterUpstream's owner and follower sides share: its configuration, and its place in the output stream. */

export interface ClusterTiming {
  /** The lease's TTL: how long a dead owner keeps its environment's terminal before another replica takes it. */
  leaseMs: number;
  /** How often the owner renews its lease, and a replica with clients tries to take a vacant one. */
  renewMs: number;
  /** How long the output stream and its metadata outlive their last write. */
  keepMs: number;
  /** How long input waits in its stream for an owner. */
  inputKeepMs: number;
  /** How long a replica that is not the owner keeps its clients while Redis cannot be read. */
  outageGraceMs: number;
  /** How long a replica that is not the owner waits for a new owner's first words (its session name). */
  ownerWaitMs: number;
}

export interface ClusterParts {
  /** The shared command connection (keys prefixed). */
  redis: Redis;
  scripts: TerminalScripts;
  /** The same steps on the leases' own connection: acquire, renew, release and whether a lease is held. */
  leases: TerminalScripts;
  keyPrefix: string;
  /** The replica's one blocking reader of the streams it follows or owns the input of. */
  streams: StreamReader;
  runtime: RuntimeProvider;
  replica: string;
  /** Told when this upstream starts owning the terminal (`took over`: from a predecessor) and when it stops. */
  owning(owns: boolean, tookOver?: boolean): void;
  replayBufferBytes: number;
  timing: ClusterTiming;
  /** Counts resent input the owner dropped (written already). */
  duplicateInput?: () => void;
}

export const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** Where one upstream is in its environment's output stream, as owner (writing) or follower (reading). */
export class StreamPosition {
  /** Offset after the last byte handed to the session (and, as owner, written to the stream). */
  end = 0;
  /** The last output-stream entry read. */
  lastId = '0-0';

  /** The stream's history as the starting point: where it reads on from, and its session's first bytes. */
  startFrom(snapshot: StreamSnapshot): UpstreamHistory {
    const { history, lastId } = historyOf(snapshot);
    this.lastId = lastId;
    this.end = history.base + history.chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    return history;
  }
}

/** What the owner side (cluster-owner.ts) and the follower side (follower-reader.ts) get of their ClusterUpstream. */
export interface UpstreamCore {
  spec: EnvironmentSpec;
  parts: ClusterParts;
  keys: TerminalKeys;
  at: StreamPosition;
  /** The upstream's Duplex: what either side reads of the terminal goes to the session through it. */
  stream: Duplex;
  sequenced: ClusterInput;
  /** Ends the upstream (its clients reconnect, or learn the session's end). */
  finish(status: ExitStatus): void;
}
