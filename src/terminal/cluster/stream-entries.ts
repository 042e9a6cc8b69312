import type { Redis } from 'ioredis';
import type { UpstreamHistory } from '../terminal-session.js';
import type { BufferEntry } from './stream-reader.js';
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

/** The offset an entry's id carries (null when it is not one of ours). */
function idOffset(id: string): number | null {
  const at = Number(id.slice(0, id.indexOf('-')));
  return Number.isSafeInteger(at) ? at : null;
}

export function parseEntry([id, fields]: RawEntry): StreamEntry | null {
  const at = idOffset(id);
  if (at === null) return null;
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
 * An output-stream entry read as bytes: the output's bytes stay the Buffer Redis's reply came in,
 * with no string between Redis and the session (a follower reads every byte of every terminal it
 * follows: a string and a copy per entry were most of its garbage). Its other fields are strings,
 * the output's value among them left empty (`bytes` holds it).
 */
export interface BytesEntry {
  id: string;
  fields: string[];
  bytes: Buffer | null;
}

/** What a BytesEntry is: output (its first byte's offset and its bytes), the tmux client's exit, or neither. */
export type ParsedBytes = { kind: 'output'; start: number; bytes: Buffer } | { kind: 'exit'; code: number } | null;

export function parseBytesEntry({ id, fields, bytes }: BytesEntry): ParsedBytes {
  const at = idOffset(id);
  if (at === null) return null;
  if (fields[0] === 'd' && bytes !== null) return { kind: 'output', start: at, bytes };
  if (fields[0] === 'x' && typeof fields[1] === 'string') return { kind: 'exit', code: Number(fields[1]) };
  return null;
}

/** An entry read as strings (XRANGE), as a BytesEntry. */
export function asBytesEntry([id, fields]: RawEntry): BytesEntry {
  if (fields[0] !== 'd' || typeof fields[1] !== 'string') return { id, fields, bytes: null };
  return { id, fields: ['d', '', ...fields.slice(2)], bytes: Buffer.from(fields[1], 'utf8') };
}

/** An entry of XREAD's Buffers (stream-reader.ts) as a BytesEntry: only the output's bytes stay a Buffer. */
export function bytesEntryOf([id, values]: BufferEntry): BytesEntry {
  const fields: string[] = [];
  let bytes: Buffer | null = null;
  for (let i = 0; i + 1 < values.length; i += 2) {
    const name = values[i].toString('utf8');
    if (name === 'd' && i === 0) {
      bytes = values[i + 1];
      fields.push(name, '');
    } else fields.push(name, values[i + 1].toString('utf8'));
  }
  return { id: id.toString('utf8'), fields, bytes };
}

/** An entry of XREAD's Buffers as strings (RawEntry). */
export const stringEntryOf = ([id, values]: BufferEntry): RawEntry => [id.toString('utf8'), values.map((value) => value.toString('utf8'))];

/** The offset just after an output entry's bytes. */
export const entryEnd = (entry: { start: number; data: string }): number => entry.start + Buffer.byteLength(entry.data, 'utf8');

/** The stream's oldest and newest entries (null when it is empty), read at one instant (MULTI). `key` as `reader` names it (its prefix is added). */
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
