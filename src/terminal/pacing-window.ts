/**
 * The window of one client paced by its `received` reports: how much output it may have sent but
 * unreported before it is behind (fan-out.ts). It starts at TERMINAL_CLIENT_WINDOW_BYTES and adapts
 * to the client's link by the delay of its reports (docs/terminal.md, "Received: flow control by
 * the client's position"):
 *
 * - every report is timed against when the output it covers was sent: the **report delay** (the
 *   round trip, the client's report interval and whatever queue the link and the sockets hold);
 * - the smallest delay seen on the connection is the link without a queue; the **queue** is the
 *   smoothed delay above it;
 * - once per smoothed delay (so each change is seen before the next) the window is decided:
 *   when the queue passes its target (output piles up in front of a slow link) it shrinks by a
 *   fifth; otherwise, if the client's unreported output reached half the window since the last
 *   decision (the window, not the program, limits it), it grows: by half until it first shrinks
 *   (a fast link's rate is found within a few round trips), then by an eighth;
 * - reports of what was sent before the window was kept (a resume) or before a jump to the
 *   current screen time nothing: their send is not the one they cover.
 *
 * A fast link with a long round trip thus gets the window its rate needs (the backlog keeps
 * flowing, nothing is skipped), and a slow link keeps little queued (a Ctrl-C's prompt is not stuck
 * behind a flood). Jitter and the report interval count as queue too: on a link where they alone
 * pass the target the window only shrinks, to its floor, the safe direction.
 */
export class PacingWindow {
  private size: number;
  private readonly floor: number;
  private readonly cap: number;
  /** What was sent and when, oldest first from `head`: [end offset, time in ms] pairs, flattened. */
  private sends: number[] = [];
  private head = 0;
  /** The furthest offset reported (or jumped to): a report that goes no further times nothing. */
  private reportedEnd = 0;
  /** The smallest report delay seen on this connection (ms). */
  private minDelay = Number.POSITIVE_INFINITY;
  /** The report delay, smoothed (ms); null before the first. */
  private smoothed: number | null = null;
  /** The most output sent but unreported at any send since the last decision. */
  private peakUnreported = 0;
  /** When the window was last decided: once per smoothed delay, so each change is seen before the next. */
  private decidedAt = Number.NEGATIVE_INFINITY;
  /** Until the window first shrinks it grows by half at each decision (it finds a fast link's rate within a few round trips), then by an eighth. */
  private probing = true;

  /**
   * @param initialBytes TERMINAL_CLIENT_WINDOW_BYTES, from which the floor and the cap follow
   * @param sentEnd the end of what was sent to the client before its window was kept (untimed: reports up to it time nothing)
   * @param startBytes the window to start with: the initial one, or what the same client had on its last connection
   */
  constructor(initialBytes: number, sentEnd: number, startBytes = initialBytes) {
    this.floor = Math.min(initialBytes, Math.max(MIN_FLOOR_BYTES, Math.floor(initialBytes / 2)));
    this.cap = initialBytes * GROWTH_LIMIT;
    this.size = Math.min(this.cap, Math.max(this.floor, startBytes));
    this.reportedEnd = sentEnd;
  }

  /** The window now, in bytes. */
  get bytes(): number {
    return this.size;
  }

  /** The report delay, smoothed, and its smallest (ms): null before the first report timed. */
  get delays(): { smoothed: number; min: number } | null {
    return this.smoothed === null ? null : { smoothed: this.smoothed, min: this.minDelay };
  }

  /** Output up to `end` was sent at `now`, leaving `unreported` bytes sent but not reported. */
  sent(end: number, unreported: number, now: number): void {
    this.peakUnreported = Math.max(this.peakUnreported, unreported);
    const last = this.sends.length - 2;
    // Sends within a few milliseconds are one for timing (bounds the list by time, not by frames).
    if (last >= this.head && now - this.sends[last + 1] < COALESCE_MS) {
      this.sends[last] = end;
      return;
    }
    this.sends.push(end, now);
  }

  /** The client reported output up to `offset` at `now`: the delay is measured and the window adapts. */
  reported(offset: number, now: number): void {
    if (offset <= this.reportedEnd) return;
    this.reportedEnd = offset;
    let sentAt: number | null = null;
    while (this.head < this.sends.length) {
      const end = this.sends[this.head];
      if (end >= offset) {
        // The send that carried the last byte reported; it stays if it carried more.
        sentAt = this.sends[this.head + 1];
        if (end === offset) this.head += 2;
        break;
      }
      this.head += 2;
    }
    this.compact();
    if (sentAt !== null) this.adapt(Math.max(0, now - sentAt), now);
  }

  /**
   * The client jumped to the current screen at `offset`: what was in flight no longer times
   * anything, and nor do its reports of it (they go no further than `offset`).
   */
  restart(offset: number): void {
    this.reportedEnd = Math.max(this.reportedEnd, offset);
    this.sends = [];
    this.head = 0;
    this.peakUnreported = 0;
  }

  private adapt(delay: number, now: number): void {
    this.minDelay = Math.min(this.minDelay, delay);
    this.smoothed = this.smoothed === null ? delay : this.smoothed + (delay - this.smoothed) * SMOOTHING;
    // Decided once per smoothed delay, on what was sent since the last decision.
    if (now - this.decidedAt < this.smoothed) return;
    this.decidedAt = now;
    const limited = this.peakUnreported >= this.size / 2;
    this.peakUnreported = 0;
    if (this.smoothed - this.minDelay > QUEUE_TARGET_MS) {
      this.size = Math.max(this.floor, Math.floor(this.size * SHRINK_FACTOR));
      this.probing = false;
    } else if (limited) {
      const step = this.probing ? this.size / 2 : Math.max(MIN_GROWTH_BYTES, this.size / 8);
      this.size = Math.min(this.cap, Math.floor(this.size + step));
    }
  }

  private compact(): void {
    if (this.head === this.sends.length) {
      this.sends = [];
      this.head = 0;
    } else if (this.head >= 1024) {
      this.sends = this.sends.slice(this.head);
      this.head = 0;
    }
  }
}

/** Queue tolerated before the window shrinks (ms). */
export const QUEUE_TARGET_MS = 150;
/** The window moves between max(16 KiB, half its initial size) (never above the initial size) and GROWTH_LIMIT times its initial size. */
export const GROWTH_LIMIT = 8;
const MIN_FLOOR_BYTES = 16 * 1024;
const MIN_GROWTH_BYTES = 4 * 1024;
const SHRINK_FACTOR = 0.8;
/** Weight of a new report delay in the smoothed one. */
const SMOOTHING = 0.25;
const COALESCE_MS = 5;
