/**
 * The flaky link's model, in virtual time (milliseconds on any clock the caller keeps): when each
 * packet of a byte stream is delivered at the other end. No timers and no sockets here; the relay
 * (./relay.ts) asks and then delivers at those times.
 *
 * A stream is cut into packets: each read of the proxy's, cut again at every multiple of
 * segmentBytes of the stream (so a keystroke is a packet of its own, and bulk data packets of at most
 * segmentBytes). Per direction, each packet goes through a token bucket (bandwidth), then a one-way
 * delay with jitter, then maybe a loss, which TCP turns into a stall of a retransmission timeout.
 * Bytes are never reordered within a stream: a packet is delivered no earlier than the one before
 * it, so jitter and stalls hold back what follows (head-of-line blocking, as in a TCP receiver).
 *
 * A packet's fate (its jitter, whether it is lost) is a function of the seed, the connection's
 * number, the direction and the packet's first byte's offset in the stream, never of the order in
 * which fates are asked for: the same seed and the same reads give the same decisions, and packets
 * at multiples of segmentBytes keep their fates even when the operating system groups a bulk
 * transfer's bytes into reads differently.
 */
import { deriveSeed, randomAt } from './prng.js';

/** One direction of the link. */
export interface DirectionParams {
  /** One-way delay added to every packet, in ms. */
  delayMs: number;
  /** Each packet's delay is delayMs ± up to jitterMs (uniform), never below 0. */
  jitterMs: number;
  /** Bandwidth in bytes per second (a token bucket); 0 means unlimited. */
  bytesPerSecond: number;
  /** The bucket's depth in bytes; 0 means the default, max(segmentBytes, 10 ms of bandwidth). */
  burstBytes: number;
  /** Probability that a packet is lost, 0 to 1: it and everything after it wait lossStallMs more. */
  loss: number;
}

/** The whole link, both directions. */
export interface LinkParams {
  /** Client to server. */
  up: DirectionParams;
  /** Server to client. */
  down: DirectionParams;
  /** The stall of a lost packet; 0 means max(200 ms, 2 × the round trip's base delay). */
  lossStallMs: number;
  /** The largest packet, in bytes (an MSS): reads are cut at every multiple of it in the stream. */
  segmentBytes: number;
  /** Bytes a direction of a connection holds (queued here and unread by the receiver) before the sender is paused. */
  windowBytes: number;
}

/** A change of parameters: what is given replaces the current value, the rest stays. */
export interface LinkSettings {
  up?: Partial<DirectionParams>;
  down?: Partial<DirectionParams>;
  lossStallMs?: number;
  segmentBytes?: number;
  windowBytes?: number;
}

export type DirectionName = 'up' | 'down';

const PERFECT: DirectionParams = { delayMs: 0, jitterMs: 0, bytesPerSecond: 0, burstBytes: 0, loss: 0 };

export const DEFAULT_LINK: LinkParams = {
  up: PERFECT,
  down: PERFECT,
  lossStallMs: 0,
  segmentBytes: 1400,
  windowBytes: 256 * 1024,
};

/** `current` with `change` applied; throws on a value out of range. */
export function applySettings(current: LinkParams, change: LinkSettings): LinkParams {
  const next: LinkParams = {
    ...current,
    ...definedOnly({ lossStallMs: change.lossStallMs, segmentBytes: change.segmentBytes, windowBytes: change.windowBytes }),
    up: { ...current.up, ...definedOnly(change.up ?? {}) },
    down: { ...current.down, ...definedOnly(change.down ?? {}) },
  };
  for (const [name, value] of Object.entries({
    lossStallMs: next.lossStallMs,
    segmentBytes: next.segmentBytes,
    windowBytes: next.windowBytes,
  }))
    nonNegative(name, value);
  if (next.segmentBytes < 1) throw new Error(`flaky link: segmentBytes must be at least 1, got ${next.segmentBytes}`);
  if (next.windowBytes < 1) throw new Error(`flaky link: windowBytes must be at least 1, got ${next.windowBytes}`);
  for (const direction of ['up', 'down'] as const) {
    for (const [name, value] of Object.entries(next[direction])) nonNegative(`${direction}.${name}`, value);
    if (next[direction].loss > 1) throw new Error(`flaky link: ${direction}.loss must be at most 1, got ${next[direction].loss}`);
  }
  return next;
}

function definedOnly<T extends object>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined)) as Partial<T>;
}

function nonNegative(name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    throw new Error(`flaky link: ${name} must be a finite number ≥ 0, got ${String(value)}`);
}

/** The stall of a lost packet under these parameters. */
export function lossStallMs(params: LinkParams): number {
  return params.lossStallMs > 0 ? params.lossStallMs : Math.max(200, 2 * (params.up.delayMs + params.down.delayMs));
}

/** A token bucket in virtual time: when may `bytes` leave, given what left before. */
export class TokenBucket {
  private rate = 0;
  private burst = 0;
  private tokens = 0;
  /** The time `tokens` was computed for: the last departure (possibly in the future). */
  private at = -Infinity;

  /** New rate (bytes/s, 0 = unlimited) and depth; what is in the bucket stays, up to the new depth. */
  configure(bytesPerSecond: number, burstBytes: number): void {
    if (this.rate === 0) this.at = -Infinity; // from unlimited: a full bucket
    this.rate = bytesPerSecond;
    this.burst = burstBytes;
    this.tokens = Math.min(this.tokens, burstBytes);
  }

  /** The departure time of `bytes` (at most the depth) offered at `now`, and the bucket charged for them. */
  departure(now: number, bytes: number): number {
    if (this.rate <= 0) return now;
    const start = Math.max(now, this.at);
    this.tokens = Math.min(this.burst, this.tokens + ((start - this.at) * this.rate) / 1000);
    const waitMs = (Math.max(0, bytes - this.tokens) * 1000) / this.rate;
    this.tokens += (waitMs * this.rate) / 1000 - bytes;
    this.at = start + waitMs;
    return this.at;
  }
}

/** One direction of the link, shared by every connection (one bucket: the device's link). */
export class LinkDirection {
  readonly bucket = new TokenBucket();
  params: DirectionParams = PERFECT;
  segmentBytes = DEFAULT_LINK.segmentBytes;
  stallMs = 200;

  constructor(readonly name: DirectionName) {}

  configure(link: LinkParams): void {
    this.params = link[this.name];
    this.segmentBytes = link.segmentBytes;
    this.stallMs = lossStallMs(link);
    const rate = this.params.bytesPerSecond;
    const burst = this.params.burstBytes > 0 ? this.params.burstBytes : rate / 100;
    this.bucket.configure(rate, Math.max(burst, this.segmentBytes));
  }
}

/** A packet: bytes [offset, offset + length) of the stream, within one read and one segment. */
export interface Packet {
  offset: number;
  length: number;
}

/** When a packet is delivered, and why. */
export interface Timing {
  deliverAt: number;
  /** The packet was lost: it (and what follows) waited a stall more. */
  lost: boolean;
}

/** One direction of one connection: its offsets, its seed, and the last delivery time (order is kept). */
export class StreamSchedule {
  private offset = 0;
  private last = -Infinity;
  private readonly seed: number;

  constructor(
    private readonly direction: LinkDirection,
    seed: number,
    connection: number,
  ) {
    this.seed = deriveSeed(seed, connection, direction.name === 'up' ? 0 : 1);
  }

  /** The packets of a read of `length` bytes: the next bytes of the stream, cut at multiples of segmentBytes. */
  split(length: number): Packet[] {
    const size = this.direction.segmentBytes;
    const packets: Packet[] = [];
    while (length > 0) {
      const take = Math.min(length, size - (this.offset % size));
      packets.push({ offset: this.offset, length: take });
      this.offset += take;
      length -= take;
    }
    return packets;
  }

  /** When `packet`, offered to the link at `now`, reaches the other end (never before the previous packet). */
  time(now: number, packet: Packet): Timing {
    const { params, stallMs } = this.direction;
    const jitter = (2 * randomAt(this.seed, 2 * packet.offset) - 1) * params.jitterMs;
    const lost = randomAt(this.seed, 2 * packet.offset + 1) < params.loss;
    const departs = this.direction.bucket.departure(now, packet.length);
    const arrives = departs + Math.max(0, params.delayMs + jitter) + (lost ? stallMs : 0);
    this.last = Math.max(this.last, arrives);
    return { deliverAt: this.last, lost };
  }

  /**
   * A packet timed for `deliverAt` but held by an outage (a blackhole) that ended at `now`: lost
   * meanwhile and sent again, it arrives no earlier than a one-way delay after the end (order kept).
   */
  afterOutage(now: number, deliverAt: number): number {
    this.last = Math.max(this.last, deliverAt, now + this.direction.params.delayMs);
    return this.last;
  }

  /** The time the last packet timed so far is delivered (-Infinity before any). */
  get lastDelivery(): number {
    return this.last;
  }
}
