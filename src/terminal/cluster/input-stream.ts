import { setTimeout as delay } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { ClusterTiming } from './cluster-parts.js';
import { fieldMap, RawEntry, stringEntryOf } from './stream-entries.js';
import type { ReadStream, StreamReader } from './stream-reader.js';
import type { TerminalKeys } from './terminal-scripts.js';

/**
 * What a follower's clients send the owner: keystrokes (with, from clients that use them, whose
 * they are, their seq and whether more parts follow: input-writer.ts), a size, a redraw request,
 * a request to read the modes again (a client that wants them joined).
 */
export type InputMessage =
  | { type: 'input'; data: string; writer?: string; seq?: number; more?: boolean }
  | { type: 'resize'; cols: number; rows: number }
  | { type: 'repaint' }
  | { type: 'modes' };

const INPUT_MAXLEN = 10_000;
const READ_COUNT = 512;

/**
 * The environment's input stream (`term:{<id>}:in`): followers append their clients' messages
 * (one connection per replica keeps each replica's in order); the owner applies each entry, then
 * deletes it, so that a new owner applies exactly what its predecessor had not. Entries wait at
 * most `inputKeepMs` for an owner.
 */
export class InputStream {
  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
    private readonly keys: TerminalKeys,
    private readonly timing: ClusterTiming,
  ) {}

  /** Appends one message for the owner. Redis unreachable: it is lost, as on a dropped connection. */
  forward(message: InputMessage): void {
    this.redis
      .multi()
      .xadd(this.keys.input, 'MAXLEN', '~', INPUT_MAXLEN, '*', ...encodeInput(message))
      .pexpire(this.keys.input, this.timing.inputKeepMs)
      .exec()
      .catch(() => undefined);
  }

  /**
   * The owner's reading, from the oldest entry still there, while `active`: first what waited when
   * it started, read at once (then `caughtUp` is told: nothing waits for the owner's own clients
   * longer than that), then through the replica's StreamReader. Returns what stops it.
   */
  consume(reader: StreamReader, owner: InputOwner): () => void {
    let last = '0-0';
    let stopped = false;
    const active = (): boolean => !stopped && owner.active();
    const apply = (entries: RawEntry[]): void => {
      for (const [id, fields] of entries) {
        last = id;
        const message = decodeInput(fields);
        if (message) owner.apply(message);
      }
      if (entries.length > 0) this.redis.xdel(this.keys.input, ...entries.map(([id]) => id)).catch(() => undefined);
    };
    const read: ReadStream = {
      key: this.keyPrefix + this.keys.input,
      after: () => (active() ? last : null),
      entries: (list) => {
        if (active()) apply(list.map(stringEntryOf));
      },
      // Redis went away for long: the owner keeps its tmux client and reads again once it can.
      lost: () => void delay(1_000).then(() => active() && reader.add(read)),
    };
    void (async () => {
      for (;;) {
        let page: RawEntry[];
        try {
          page = await this.redis.xrange(this.keys.input, last === '0-0' ? '-' : `(${last}`, '+', 'COUNT', READ_COUNT);
        } catch {
          if (!active()) return;
          await delay(200);
          continue;
        }
        if (!active()) return;
        apply(page);
        if (page.length < READ_COUNT) break;
      }
      owner.caughtUp?.();
      reader.add(read);
    })();
    return () => {
      stopped = true;
      reader.remove(read);
    };
  }
}

/** The owner applying the input stream (cluster-owner.ts). */
export interface InputOwner {
  active: () => boolean;
  apply: (message: InputMessage) => void;
  caughtUp?: () => void;
}

export function encodeInput(message: InputMessage): string[] {
  switch (message.type) {
    case 'input': {
      const fields = ['t', 'i', 'd', message.data];
      if (message.writer !== undefined) fields.push('k', message.writer);
      if (message.seq !== undefined) fields.push('s', String(message.seq));
      if (message.more) fields.push('m', '1');
      return fields;
    }
    case 'resize':
      return ['t', 'r', 'c', String(message.cols), 'r', String(message.rows)];
    case 'repaint':
      return ['t', 'p'];
    case 'modes':
      return ['t', 'm'];
  }
}

/** An entry's message, or null for one this version does not know (a newer replica's). */
export function decodeInput(fields: string[]): InputMessage | null {
  const map = fieldMap(fields);
  switch (map.get('t') ?? '') {
    case 'i': {
      const message: InputMessage = { type: 'input', data: map.get('d') ?? '' };
      const writer = map.get('k');
      const seq = Number(map.get('s'));
      if (writer) message.writer = writer;
      if (Number.isSafeInteger(seq) && seq > 0) message.seq = seq;
      if (map.get('m') === '1') message.more = true;
      return message;
    }
    case 'r': {
      const cols = Number(map.get('c'));
      const rows = Number(map.get('r'));
      return Number.isInteger(cols) && Number.isInteger(rows) && cols > 0 && rows > 0 ? { type: 'resize', cols, rows } : null;
    }
    case 'p':
      return { type: 'repaint' };
    case 'm':
      return { type: 'modes' };
    default:
      return null;
  }
}
