import type { ReplayBuffer } from './replay-buffer.js';
import type { TerminalClient } from './terminal-clients.js';

/** A replay buffer over the replay budget is never trimmed below this. */
export const MIN_REPLAY_BYTES = 64 * 1024;

/** A session's clients, as the send-queue budget sees them: it may cut any live one over to 'behind'. */
export interface SendQueueMember {
  clients(): Iterable<TerminalClient>;
  /** Stops sending to `client` until it drains (then it is redrawn), as the per-client limit does. */
  cutOver(client: TerminalClient): void;
}

/**
 * The process's bound on terminal output waiting in sockets: the sum of `bufferedAmount` over every
 * terminal client of every session. Before a frame is sent, `reserve` makes room for it by cutting
 * over the clients with the largest queues first (any session's), so the memory held for slow
 * readers stays under one limit however many connections there are. Nobody live loses a byte: a
 * cut-over client gets nothing more and is redrawn once it has drained.
 *
 * Summing every socket on each frame would cost O(clients) per frame, so the sum is taken at most
 * once per turn of the event loop and the frames reserved since are added to it (an overestimate:
 * sockets only drain in between).
 */
export class SendQueueBudget {
  private readonly members = new Set<SendQueueMember>();
  private total = 0;
  private fresh = false;

  constructor(readonly limit: number) {}

  join(member: SendQueueMember): void {
    this.members.add(member);
  }

  leave(member: SendQueueMember): void {
    this.members.delete(member);
  }

  /** Bytes queued in every member's sockets (as of this turn, plus what was reserved since). */
  queued(): number {
    if (!this.fresh) {
      let total = 0;
      for (const member of this.members) for (const client of member.clients()) total += client.ws.bufferedAmount;
      this.total = total;
      this.fresh = true;
      setImmediate(() => (this.fresh = false));
    }
    return this.total;
  }

  /**
   * Makes room for `bytes` more queued bytes, cutting live clients over largest queue first until
   * they fit (or no live client has anything queued: what is sent then fits in nobody's way).
   */
  reserve(bytes: number): void {
    let total = this.queued();
    if (total + bytes > this.limit) {
      const queues: [SendQueueMember, TerminalClient][] = [];
      for (const member of this.members)
        for (const client of member.clients()) if (client.mode === 'live' && client.ws.bufferedAmount > 0) queues.push([member, client]);
      queues.sort(([, a], [, b]) => b.ws.bufferedAmount - a.ws.bufferedAmount);
      for (const [member, client] of queues) {
        if (total + bytes <= this.limit) break;
        // Its queue stays until it drains, but grows no more: count it as gone, as it soon will be.
        total -= client.ws.bufferedAmount;
        member.cutOver(client);
      }
      this.total = Math.max(total, 0);
    }
    this.total += bytes;
  }
}

/**
 * The process's bound on replay data: the sum of every session's replay buffer. Over it, the
 * largest buffers lose their oldest bytes first, down to a common level (never below
 * MIN_REPLAY_BYTES each), so many sessions share the memory one busy session could take. A client
 * resuming from before what is kept gets a reset and a redraw, as past a buffer's own capacity.
 */
export class ReplayBudget {
  private readonly buffers = new Set<ReplayBuffer>();
  private scheduled = false;

  constructor(readonly limit: number) {}

  track(buffer: ReplayBuffer): void {
    this.buffers.add(buffer);
  }

  untrack(buffer: ReplayBuffer): void {
    this.buffers.delete(buffer);
  }

  /** A tracked buffer grew: the budget is enforced once this turn of the event loop is over. */
  grew(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.enforce();
    });
  }

  /** Total bytes held by the tracked buffers. */
  get size(): number {
    let total = 0;
    for (const buffer of this.buffers) total += buffer.size;
    return total;
  }

  /** Trims the largest buffers until the total fits (or every buffer is down to MIN_REPLAY_BYTES). */
  enforce(): void {
    if (this.size <= this.limit) return;
    const sizes = [...this.buffers].map((buffer) => buffer.size);
    const level = replayLevel(sizes, this.limit);
    for (const buffer of this.buffers) if (buffer.size > level) buffer.trimTo(level);
  }
}

/** The highest level L (at least MIN_REPLAY_BYTES) such that capping every size at L sums to at most `limit`. */
export function replayLevel(sizes: number[], limit: number): number {
  const capped = (level: number): number => sizes.reduce((sum, size) => sum + Math.min(size, level), 0);
  let low = MIN_REPLAY_BYTES;
  let high = Math.max(low, ...sizes);
  if (capped(low) > limit) return low;
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (capped(middle) <= limit) low = middle;
    else high = middle - 1;
  }
  return low;
}
