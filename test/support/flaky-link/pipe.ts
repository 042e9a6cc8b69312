/**
 * One direction of one proxied connection: what the source socket sends is cut into packets, timed
 * by the link model (./link-model.ts) and written to the destination socket when its time comes, in
 * order. The source is paused while more than a window is queued (here, and unread by the
 * destination), so a sender faster than the link feels TCP's flow control instead of filling memory.
 * A blackhole holds everything (nothing delivered, nothing closed); the end of the stream (FIN) is
 * queued after the data, and delivered in its turn.
 */
import type { Socket } from 'node:net';

import type { LinkParams, Packet, StreamSchedule } from './link-model.js';

/**
 * A packet as it was taken and delivered: `delayMs` is what the link imposed on it, from when it
 * could have left (taken from the source, or the end of a blackhole that held it) until it was
 * written to the destination (jitter, bandwidth, a loss's stall, order, and the timer's lateness).
 */
export interface PacketTrace {
  /** Its first byte's position in this direction of the connection. */
  offset: number;
  length: number;
  /** When it was read from the source (ms, on the pipe's clock). */
  takenAt: number;
  deliveredAt: number;
  delayMs: number;
  lost: boolean;
}

type Item =
  | { packet: Packet; data: Buffer; deliverAt: number | null; takenAt: number; eligibleAt: number; lost: boolean }
  | { end: true; deliverAt: number | null };

export interface PipeEvents {
  /** Bytes written to the destination. */
  delivered(bytes: number): void;
  /** A packet was lost (and stalls what follows). */
  lost(): void;
  /** A packet was written to the destination (the proxy keeps the first few of each connection). */
  traced?(packet: PacketTrace, data: Buffer): void;
}

export class Pipe {
  private readonly queue: Item[] = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | null = null;
  private held: boolean;
  private stopped = false;

  constructor(
    private readonly source: Socket,
    private readonly destination: Socket,
    private readonly schedule: StreamSchedule,
    private readonly link: () => LinkParams,
    private readonly now: () => number,
    private readonly events: PipeEvents,
    held: boolean,
  ) {
    this.held = held;
    source.on('data', (chunk: Buffer) => this.accept(chunk));
    source.once('end', () => this.enqueue([{ end: true, deliverAt: this.held ? null : this.endTime() }]));
    destination.on('drain', () => this.flowControl());
  }

  /** Bytes taken from the source and not yet written to the destination. */
  get queued(): number {
    return this.queuedBytes;
  }

  /** A blackhole begins: nothing more is delivered until release(). */
  hold(): void {
    this.held = true;
    this.clearTimer();
  }

  /** The blackhole ends: what was held goes on, no earlier than a one-way delay from now. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    const now = this.now();
    for (const item of this.queue) {
      if ('end' in item) {
        item.deliverAt = this.endTime();
        continue;
      }
      // It could have left no earlier than now: what the link imposes on it counts from here.
      item.eligibleAt = now;
      if (item.deliverAt === null) [item.deliverAt, item.lost] = this.timed(now, item.packet);
      else item.deliverAt = this.schedule.afterOutage(now, item.deliverAt);
    }
    this.pump();
  }

  /** Drops what is queued and stops (the connection is gone). */
  stop(): void {
    this.stopped = true;
    this.clearTimer();
    this.queue.length = 0;
    this.queuedBytes = 0;
  }

  private accept(chunk: Buffer): void {
    if (this.stopped) return;
    const now = this.now();
    let at = 0;
    const items = this.schedule.split(chunk.length).map((packet): Item => {
      const data = chunk.subarray(at, at + packet.length);
      at += packet.length;
      const [deliverAt, lost] = this.held ? [null, false] : this.timed(now, packet);
      return { packet, data, deliverAt, takenAt: now, eligibleAt: now, lost };
    });
    this.queuedBytes += chunk.length;
    this.enqueue(items);
    this.flowControl();
  }

  private timed(now: number, packet: Packet): [number, boolean] {
    const { deliverAt, lost } = this.schedule.time(now, packet);
    if (lost) this.events.lost();
    return [deliverAt, lost];
  }

  private enqueue(items: Item[]): void {
    if (this.stopped) return;
    for (const item of items) this.queue.push(item);
    if (this.timer === null) this.pump(); // else the head's timer comes first (times only grow)
  }

  /** The end of the stream goes after the last packet. */
  private endTime(): number {
    return Math.max(this.now(), this.schedule.lastDelivery);
  }

  private pump(): void {
    this.clearTimer();
    if (this.held || this.stopped) return;
    const now = this.now();
    this.destination.cork(); // the packets due now leave in one write
    while (this.queue.length > 0) {
      const head = this.queue[0];
      if (head.deliverAt === null || head.deliverAt > now) break;
      this.queue.shift();
      if (!('end' in head)) this.queuedBytes -= head.packet.length;
      if (this.destination.destroyed) continue;
      if ('end' in head) {
        this.destination.end();
      } else {
        this.destination.write(head.data);
        this.events.delivered(head.packet.length);
        this.events.traced?.(
          {
            offset: head.packet.offset,
            length: head.packet.length,
            takenAt: head.takenAt,
            deliveredAt: now,
            delayMs: now - head.eligibleAt,
            lost: head.lost,
          },
          head.data,
        );
      }
    }
    this.destination.uncork();
    const next = this.queue[0]?.deliverAt;
    if (next != null) this.timer = setTimeout(() => this.pump(), Math.max(1, Math.ceil(next - now)));
    this.flowControl();
  }

  /** Pauses the source over the window, resumes it under. */
  private flowControl(): void {
    if (this.stopped || this.source.destroyed) return;
    const inFlight = this.queuedBytes + this.destination.writableLength;
    if (inFlight > this.link().windowBytes) this.source.pause();
    else if (this.source.isPaused()) this.source.resume();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
