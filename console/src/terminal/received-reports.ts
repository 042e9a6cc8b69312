/**
 * `{"type":"received","offset":O}` (docs/terminal.md, output flow control by the client's own
 * position): the console tells the server how far it has processed the output stream, at least
 * every REPORT_BYTES of output or REPORT_MS after its last report when there is output it has not
 * reported. The server then sends at most its window beyond that position, and a client that
 * falls behind jumps to the current screen instead of being sent the backlog.
 *
 * While xterm.js is behind (the OutputSink holds more than it should) reports are withheld, so
 * the server stops sending: the page's own slowness paces the output too.
 *
 * Pure: the caller passes the time and sends what `take` returns.
 */

export const REPORT_BYTES = 16 * 1024;
export const REPORT_MS = 100;

export class ReceivedReports {
  private reported: number | null = null;
  private latest: number | null = null;
  private lastReportAt = Number.NEGATIVE_INFINITY;

  /** A new socket: nothing reported on it yet. */
  start(): void {
    this.reported = null;
    this.latest = null;
    this.lastReportAt = Number.NEGATIVE_INFINITY;
  }

  /** The end offset of output (or a `reset`) accepted. */
  output(offset: number): void {
    this.latest = offset;
  }

  private get unreported(): number {
    if (this.latest === null) return 0;
    return this.reported === null ? Number.POSITIVE_INFINITY : this.latest - this.reported;
  }

  /** The offset to report now, or null (nothing to report, not yet, or `processing` is behind). */
  take(now: number, processing: boolean): number | null {
    if (this.latest === null || this.unreported <= 0 || processing) return null;
    if (this.unreported < REPORT_BYTES && now - this.lastReportAt < REPORT_MS) return null;
    this.reported = this.latest;
    this.lastReportAt = now;
    return this.latest;
  }

  /** When to ask `take` again (ms from now), null when nothing is left to report. */
  nextIn(now: number): number | null {
    if (this.latest === null || this.unreported <= 0) return null;
    return Math.max(0, this.lastReportAt + REPORT_MS - now);
  }
}
