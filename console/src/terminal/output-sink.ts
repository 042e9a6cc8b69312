/**
 * Flow control between the terminal WebSocket and xterm.js, after xterm.js's "flow control" guide
 * (https://xtermjs.org/docs/guides/flowcontrol/): `write` only buffers, and parsing runs in
 * slices of the event loop, so a fast producer can grow xterm.js's buffer without bound (past
 * 50 MB it discards data) and make the page sluggish. Here:
 *
 * - output is handed to xterm.js with a write callback, and the characters handed but not yet
 *   parsed are counted (the watermark). Above HIGH_WATER nothing more is handed; below
 *   LOW_WATER handing resumes. What waits meanwhile stays in this queue, in order;
 * - a browser WebSocket cannot be paused, so when the queue itself passes MAX_QUEUED the sink
 *   gives up on the backlog: it drops it and asks for a redraw (`onOverflow`), the same thing
 *   the server does for a client that falls behind (docs/terminal.md#flow-control). The
 *   connection then reconnects without `resume`, and tmux repaints the current screen;
 * - a `reset` (and the clear before a fresh stream's repaint) waits until xterm.js has parsed
 *   everything handed before it, since `Terminal.reset()` acts at once while writes are deferred.
 *
 * `position` is the stream offset just after the last output accepted here (queued or handed):
 * what a resume asks for. Whatever is accepted is written, across reconnects, so a resume from
 * `position` neither loses nor repeats a character.
 */

/** What the sink drives: xterm.js's Terminal, or a fake in a unit test. */
export interface TerminalTarget {
  write(data: string, parsed: () => void): void;
  reset(): void;
}

export const HIGH_WATER = 256 * 1024;
export const LOW_WATER = 32 * 1024;
export const MAX_QUEUED = 8 * 1024 * 1024;

type Item = { kind: 'write'; data: string } | { kind: 'reset' };

export class OutputSink {
  private readonly queue: Item[] = [];
  private queuedChars = 0;
  /** Characters handed to the target whose write callback has not come yet. */
  private pending = 0;
  private paused = false;
  position: number | null = null;
  /** Resets the target went through (fresh streams, `reset` frames, overflows). */
  resets = 0;

  constructor(
    private readonly target: TerminalTarget,
    private readonly onOverflow: () => void,
  ) {}

  /** An `output` frame. */
  write(data: string, offset: number): void {
    this.position = offset;
    if (data.length === 0) return;
    this.queue.push({ kind: 'write', data });
    this.queuedChars += data.length;
    if (this.queuedChars > MAX_QUEUED) {
      this.queue.length = 0;
      this.queuedChars = 0;
      this.position = null;
      this.onOverflow();
      return;
    }
    this.pump();
  }

  /** A `reset` frame (offset) or a fresh stream (null): clear the terminal once what came before is drawn. */
  reset(offset: number | null): void {
    this.position = offset;
    this.queue.push({ kind: 'reset' });
    this.pump();
  }

  /** Characters waiting here or inside xterm.js. */
  get backlog(): number {
    return this.queuedChars + this.pending;
  }

  private pump(): void {
    if (this.paused && this.pending <= LOW_WATER) this.paused = false;
    while (!this.paused && this.queue.length > 0) {
      const item = this.queue[0];
      if (item.kind === 'reset') {
        if (this.pending > 0) return; // the next write callback pumps again
        this.queue.shift();
        this.resets += 1;
        this.target.reset();
        continue;
      }
      this.queue.shift();
      this.queuedChars -= item.data.length;
      const size = item.data.length;
      this.pending += size;
      this.target.write(item.data, () => {
        this.pending -= size;
        this.pump();
      });
      if (this.pending >= HIGH_WATER) this.paused = true;
    }
  }
}
