import type { Redis } from 'ioredis';
import type { UpstreamHistory } from '../terminal-session.js';
import type { TerminalKeys } from './terminal-scripts.js';

/**
 * The per-environment output stream's entries. Every entry's id carries its position:
 *
 * - output: id `<offset of its first byte>-1`, field `d` = the bytes (always whole UTF-8: the owner
 *   decodes the tmux client's output before it writes, as the fan-out would);
 * - the tmux client exited with a code (the shell ended): id `<end offset>-0`, field `x` = the code.
 *
 * So ids grow with the offsets, `MINID` trims the stream by bytes, and a new owner's first output
 * (`<end>-1`) always sorts after whatever its predecessor wrote last.
 */
export type StreamEntry = { kind: 'output'; id: string; start: number; data: string } | { kind: 'exit'; id: string; code: number };

export type RawEntry = [id: string, fields: string[]];

export const outputId = (start: number): string => `${start}-1`;
export const exitId = (end: number): string => `${end}-0`;
export const minId = (offset: number): string => `${Math.max(0, offset)}-0`;

export function parseEntry([id, fields]: RawEntry): StreamEntry | null {
  const at = Number(id.slice(0, id.indexOf('-')));
  if (!Number.isSafeInteger(at)) return null;
  if (fields[0] === 'd' && typeof fields[1] === 'string') return { kind: 'output', id, start: at, data: fields[1] };
  if (fields[0] === 'x' && typeof fields[1] === 'string') return { kind: 'exit', id, code: Number(fields[1]) };
  return null;
}

/** The fields of an input entry as a map: `t` (i input, r resize, p repaint), `d`, `c`, `r`. */
export function fieldMap(fields: string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i], fields[i + 1]);
  return map;
}

/**
 * XREAD of one stream after `lastId`, blocking up to `blockMs`: its entries, [] when none came.
 * `key` is whole (the blocking connections have no key prefix).
 */
export async function readAfter(reader: Redis, key: string, lastId: string, blockMs: number, count: number): Promise<RawEntry[]> {
  const reply: unknown = await reader.xread('COUNT', count, 'BLOCK', blockMs, 'STREAMS', key, lastId);
  if (!Array.isArray(reply) || reply.length === 0) return [];
  const first: unknown = reply[0];
  if (!Array.isArray(first) || !Array.isArray(first[1])) return [];
  return first[1] as RawEntry[];
}

/** The offset just after an output entry's bytes. */
export const entryEnd = (entry: { start: number; data: string }): number => entry.start + Buffer.byteLength(entry.data, 'utf8');

/** The stream's oldest and newest entries (null when it is empty), read at one instant (MULTI). `key` is whole. */
export async function readEnds(reader: Redis, key: string): Promise<{ first: RawEntry | null; last: RawEntry | null }> {
  const replies = await reader.multi().xrange(key, '-', '+', 'COUNT', 1).xrevrange(key, '+', '-', 'COUNT', 1).exec();
  if (!replies || replies.some(([error]) => error)) throw new Error('could not read the terminal stream');
  const [first, last] = replies.map(([, value]) => (value as RawEntry[])[0] ?? null);
  return { first, last };
}

/**
 * Where a reader holding every byte before `end` goes on from, given the stream's oldest and
 * newest entries: null while the stream still holds what follows `end` (it reads on); when the
 * oldest entry starts after `end` (those bytes were trimmed), the newest output entry's id and the
 * offset after it, so that it skips a backlog it could not use anyway.
 */
export function skipTo(end: number, first: RawEntry | null, last: RawEntry | null): { lastId: string; end: number } | null {
  const oldest = first && parseEntry(first);
  const newest = last && parseEntry(last);
  if (oldest?.kind !== 'output' || oldest.start <= end || newest?.kind !== 'output') return null;
  return { lastId: newest.id, end: entryEnd(newest) };
}

/** The output stream's newest entry and its end offset as its last writer recorded it, at one instant (MULTI). */
export async function readNewest(redis: Redis, keys: TerminalKeys): Promise<{ last: RawEntry | null; end: number | null }> {
  const replies = await redis.multi().xrevrange(keys.output, '+', '-', 'COUNT', 1).hget(keys.meta, 'end').exec();
  if (!replies || replies.some(([error]) => error)) throw new Error('could not read the terminal stream');
  const [entries, end] = replies.map(([, value]) => value) as [RawEntry[], string | null];
  return { last: entries[0] ?? null, end: end === null ? null : Number(end) };
}

export interface StreamSnapshot {
  entries: RawEntry[];
  /** The stream's end offset, as its last writer recorded it; null before any owner wrote. */
  end: number | null;
  /** The tmux session's name, written by each owner once it attached; null before the first. */
  name: string | null;
}

/** The output stream after `after` ('0-0': all it holds) and its metadata, read at one instant (MULTI). */
export async function readSnapshot(redis: Redis, keys: TerminalKeys, after: string): Promise<StreamSnapshot> {
  const replies = await redis
    .multi()
    .xrange(keys.output, after === '0-0' ? '-' : `(${after}`, '+')
    .hget(keys.meta, 'end')
    .hget(keys.meta, 'name')
    .exec();
  if (!replies || replies.some(([error]) => error)) throw new Error('could not read the terminal stream');
  const [entries, end, name] = replies.map(([, value]) => value) as [RawEntry[], string | null, string | null];
  return { entries, end: end === null ? null : Number(end), name };
}

/**
 * A session's starting point from a snapshot: the contiguous output bytes the stream holds up to
 * its end offset (`history`; none when they do not reach it), and the last entry read. A stream
 * never written starts at the current time in microseconds, as a single process's session does.
 */
export function historyOf(snapshot: StreamSnapshot): { history: UpstreamHistory; lastId: string } {
  const chunks: Buffer[] = [];
  let base: number | null = null;
  let at: number | null = null;
  let lastId = '0-0';
  for (const raw of snapshot.entries) {
    const entry = parseEntry(raw);
    lastId = raw[0];
    if (entry?.kind !== 'output') continue;
    if (at !== entry.start) {
      // Not contiguous (an owner that wrote nothing through an outage): only what follows the gap counts.
      chunks.length = 0;
      base = entry.start;
    }
    const bytes = Buffer.from(entry.data, 'utf8');
    chunks.push(bytes);
    at = entry.start + bytes.length;
  }
  const end = snapshot.end ?? at ?? Date.now() * 1000;
  if (at !== end || base === null) return { history: { base: end, chunks: [] }, lastId };
  return { history: { base, chunks }, lastId };
}
