import type { LogPage, LogQuery } from './runtime.provider.js';

/**
 * Environment logs, whichever runtime keeps them: lines prefixed with an ISO timestamp, split from
 * byte streams, and cut to a page (`lines`, `since`, `total`) the same way everywhere.
 */

/** Longest line kept in the log; longer output is cut (with a marker) so one line cannot grow without bound. */
export const MAX_LOG_LINE_CHARS = 8192;

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z) /;

export function clip(line: string): string {
  return line.length > MAX_LOG_LINE_CHARS ? `${line.slice(0, MAX_LOG_LINE_CHARS)} [… line cut]` : line;
}

/** Splits a byte stream into lines (UTF-8), holding back an unfinished last line until `end()`. */
export class LineSplitter {
  private pending = '';
  private readonly decoder = new TextDecoder('utf-8');

  constructor(private readonly onLine: (line: string) => void) {}

  write(chunk: Buffer): void {
    this.pending += this.decoder.decode(chunk, { stream: true });
    let newline = this.pending.indexOf('\n');
    while (newline !== -1) {
      this.onLine(this.pending.slice(0, newline).replace(/\r$/, ''));
      this.pending = this.pending.slice(newline + 1);
      newline = this.pending.indexOf('\n');
    }
    if (this.pending.length > MAX_LOG_LINE_CHARS * 4) {
      this.onLine(this.pending);
      this.pending = '';
    }
  }

  end(): void {
    this.pending += this.decoder.decode();
    if (this.pending !== '') this.onLine(this.pending);
    this.pending = '';
  }
}

/** The time a log line was written, from its prefix; null for a line without one. */
export function lineTime(line: string): number | null {
  const match = TIMESTAMP.exec(line);
  if (!match?.[1]) return null;
  const time = Date.parse(match[1]);
  return Number.isNaN(time) ? null : time;
}

/**
 * Cuts a log, line by line, to a page: the newest `query.lines` lines (optionally only those
 * written at or after `query.since`) in O(page size) memory. A line without a timestamp belongs
 * to the time of the line before it.
 */
export class LogPager {
  private readonly wanted: number;
  private readonly since: number | null;
  private readonly ring: string[];
  private total = 0;
  private current: number | null = null;

  constructor(query: LogQuery) {
    this.wanted = Math.max(0, Math.floor(query.lines));
    this.since = query.since?.getTime() ?? null;
    this.ring = new Array<string>(this.wanted);
  }

  add(line: string): void {
    this.current = lineTime(line) ?? this.current;
    if (this.since !== null && (this.current === null || this.current < this.since)) return;
    if (this.wanted > 0) this.ring[this.total % this.wanted] = clip(line);
    this.total += 1;
  }

  page(): LogPage {
    const kept = Math.min(this.total, this.wanted);
    const lines: string[] = [];
    for (let i = this.total - kept; i < this.total; i += 1) lines.push(this.ring[i % this.wanted] ?? '');
    return { lines, total: this.total };
  }
}
