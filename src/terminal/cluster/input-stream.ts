import { setTimeout as delay } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { ClusterTiming } from './cluster-upstream.js';
import { fieldMap, readAfter, RawEntry } from './stream-entries.js';
import type { TerminalKeys } from './terminal-scripts.js';

/** What a follower's clients send the owner: keystrokes, a size, a redraw request. */
export type InputMessage = { type: 'input'; data: string } | { type: 'resize'; cols: number; rows: number } | { type: 'repaint' };

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

  /** The owner's loop on its blocking connection: every entry, from the oldest still there, while `active`. */
  async consume(reader: Redis, owner: { active: () => boolean; apply: (message: InputMessage) => void }): Promise<void> {
    let last = '0-0';
    while (owner.active()) {
      let entries: RawEntry[];
      try {
        entries = await readAfter(reader, this.keyPrefix + this.keys.input, last, this.timing.blockMs, READ_COUNT);
      } catch {
        if (!owner.active()) return;
        await delay(200);
        continue;
      }
      if (entries.length === 0 || !owner.active()) continue;
      for (const [id, fields] of entries) {
        last = id;
        const message = decodeInput(fields);
        if (message) owner.apply(message);
      }
      this.redis.xdel(this.keys.input, ...entries.map(([id]) => id)).catch(() => undefined);
    }
  }
}

export function encodeInput(message: InputMessage): string[] {
  switch (message.type) {
    case 'input':
      return ['t', 'i', 'd', message.data];
    case 'resize':
      return ['t', 'r', 'c', String(message.cols), 'r', String(message.rows)];
    case 'repaint':
      return ['t', 'p'];
  }
}

/** An entry's message, or null for one this version does not know (a newer replica's). */
export function decodeInput(fields: string[]): InputMessage | null {
  const map = fieldMap(fields);
  switch (map.get('t') ?? '') {
    case 'i':
      return { type: 'input', data: map.get('d') ?? '' };
    case 'r': {
      const cols = Number(map.get('c'));
      const rows = Number(map.get('r'));
      return Number.isInteger(cols) && Number.isInteger(rows) && cols > 0 && rows > 0 ? { type: 'resize', cols, rows } : null;
    }
    case 'p':
      return { type: 'repaint' };
    default:
      return null;
  }
}
