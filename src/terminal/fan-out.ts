import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';
import type { ReplayBudget, SendQueueBudget, SendQueueMember } from './memory-budget.js';
import type { AckBook } from './input/ack-book.js';
import { PacingWindow } from './pacing-window.js';
import { ReplayBuffer } from './replay-buffer.js';
import { encode, TerminalClient, TerminalClients } from './terminal-clients.js';
import { TerminalMetrics } from './terminal-metrics.js';

/** A client whose socket holds more than this is behind; below LOW it has caught up. */
export const HIGH_WATER_BYTES = 1024 * 1024;
export const LOW_WATER_BYTES = 256 * 1024;
/** Output is coalesced into frames of at most this many characters. */
const MAX_FRAME_CHARS = 256 * 1024;
/** While a client paced by its `received` reports is live, frames are at most this many characters. */
const PACED_FRAME_CHARS = 16 * 1024;
/** A chunk this small, arriving when nothing waits to be sent, is sent at once (typing latency). */
const IMMEDIATE_FLUSH_CHARS = 512;
const DRAIN_CHECK_MS = 20;
/** Windows of clients gone kept per session, for when they reconnect (as many as the input ledger's client_ids). */
const REMEMBERED_WINDOWS = 1000;

export interface FanOutParts {
  clients: TerminalClients;
  buffer: ReplayBuffer;
  metrics: TerminalMetrics;
  /** The upstream's output stream, to pause and resume; null while there is none. */
  upstream: () => Readable | null;
  /** A cut-over client has drained: bring it back to the current screen. */
  caughtUp: (client: TerminalClient) => void;
  /** The process's bounds on queued output and on replay data, shared by every session (memory-budget.ts). */
  sendBudget?: SendQueueBudget;
  replayBudget?: ReplayBudget;
  /** Which input was written before each frame's first byte (the `ack` of clients that send seqs). */
  acks?: AckBook;
  /** The initial window of a client that reports `received` (TERMINAL_CLIENT_WINDOW_BYTES); it then adapts (pacing-window.ts). */
  windowBytes?: number;
}

/** A client that reports `received` starts with this window: behind when this much of what it was sent is unreported. */
export const DEFAULT_WINDOW_BYTES = 32 * 1024;

const isHighSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdbff;

/**
 * The upstream's output to every client: decoded (UTF-8 across chunks), coalesced into frames,
 * recorded in the replay buffer, encoded once and sent to every live client, the active one first.
 * A client that falls behind while others keep up is cut over (it gets nothing until it drains,
 * then `caughtUp`); when every client is behind, the upstream is paused instead, and resumed as
 * soon as one drains or none is left. Memory stays bounded either way: per client by HIGH_WATER_BYTES,
 * and over the whole process by the send-queue budget, which may cut over the clients with the
 * largest queues of any session to make room for a frame (memory-budget.ts).
 */
export class OutputFanOut {
  private readonly decoder = new StringDecoder('utf8');
  private pendingText = '';
  /** UTF-8 length of `pendingText`. */
  private pendingBytes = 0;
  private flushScheduled = false;
  private upstreamPaused = false;
  private drainTimer: NodeJS.Timeout | null = null;
  /** The window each client_id had when its connection ended (at most REMEMBERED_WINDOWS). */
  private readonly lastWindows = new Map<string, number>();

  private readonly member: SendQueueMember = {
    clients: () => this.parts.clients,
    cutOver: (client) => this.cutOver(client),
  };

  constructor(private readonly parts: FanOutParts) {
    parts.sendBudget?.join(this.member);
    parts.replayBudget?.track(parts.buffer);
  }

  /** The offset just after the output read so far (recorded or waiting to be sent): what is read next comes after it. */
  get mark(): number {
    return this.parts.buffer.end + this.pendingBytes;
  }

  /** True while the upstream is paused because every live client is behind. */
  get paused(): boolean {
    return this.upstreamPaused;
  }

  /** One chunk of upstream output. */
  write(chunk: Buffer): void {
    const text = this.decoder.write(chunk);
    if (text.length === 0) return;
    this.pendingText += text;
    this.pendingBytes += Buffer.byteLength(text);
    if (this.pendingText.length >= MAX_FRAME_CHARS || (!this.flushScheduled && this.pendingText.length <= IMMEDIATE_FLUSH_CHARS)) {
      // Large batches go at once; so does a small chunk arriving alone (a keystroke's echo), without
      // waiting a turn of the event loop. Chunks that follow in the same turn are coalesced.
      this.flush();
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /**
   * Sends the coalesced output, encoded once for every client: as one frame, or, while a client
   * paced by its own reports is live, in frames of at most PACED_FRAME_CHARS, so that its window
   * (not a flood's large frame) bounds what is in flight to it.
   */
  flush(): void {
    this.flushScheduled = false;
    const text = this.pendingText;
    if (text.length === 0) return;
    this.pendingText = '';
    this.pendingBytes = 0;
    if (text.length <= PACED_FRAME_CHARS || !this.pacedClientLive()) {
      this.sendFrame(text);
      return;
    }
    for (let start = 0; start < text.length; ) {
      let end = Math.min(start + PACED_FRAME_CHARS, text.length);
      // Never between the two halves of a surrogate pair.
      if (end < text.length && isHighSurrogate(text.charCodeAt(end - 1))) end -= 1;
      this.sendFrame(text.slice(start, end));
      start = end;
    }
  }

  /** Whether a live client is paced by its own `received` reports (without building the live list on every flush). */
  private pacedClientLive(): boolean {
    for (const client of this.parts.clients) if (client.mode === 'live' && client.extras.received !== null) return true;
    return false;
  }

  private sendFrame(text: string): void {
    const { clients, buffer, acks } = this.parts;
    const bytes = Buffer.from(text, 'utf8');
    // Input written before this frame's first byte was read is acknowledged on it.
    acks?.advance(buffer.end);
    const offset = buffer.append(bytes);
    this.parts.replayBudget?.grew();
    const frame = encode({ type: 'output', data: text, offset });
    const live = clients.live();
    const slow = live.filter((client) => client.ws.bufferedAmount > HIGH_WATER_BYTES).length;
    const everyoneBehind = live.length > 0 && slow === live.length;
    if (!everyoneBehind) for (const client of live) if (client.ws.bufferedAmount > HIGH_WATER_BYTES) this.cutOver(client);
    // Room in the process's budget; it may cut over the largest queues first (some of these, too).
    const receivers = live.filter((client) => client.mode === 'live');
    this.parts.sendBudget?.reserve(frame.length * receivers.length);
    const windowBytes = this.parts.windowBytes ?? DEFAULT_WINDOW_BYTES;
    for (const client of receivers) {
      if (client.mode !== 'live') continue;
      const { received, sentEnd, writer, pacing } = client.extras;
      // A client paced by its own reports: with a window's worth unreported (this frame included, unless
      // nothing is in flight), it gets no more of the backlog.
      if (received !== null && sentEnd > received && sentEnd - received + bytes.length > (pacing?.bytes ?? windowBytes)) {
        this.cutOver(client);
        continue;
      }
      clients.sendFrame(client, frame, bytes.length, offset, acks?.reachedBy(writer));
    }
    // Everyone is behind: what was read is delivered, and nothing more is read until someone drains.
    if (everyoneBehind) this.pauseUpstream();
  }

  private cutOver(client: TerminalClient): void {
    client.mode = 'behind';
    this.parts.metrics.cutovers.inc();
    this.watchDrain();
  }

  /** A client reported what it received: its window adapts, and it (or another client behind) may have caught up. */
  reported(client: TerminalClient): void {
    const { extras } = client;
    if (extras.received !== null) {
      // A client that reconnects (its client_id) starts with the window its last connection had.
      const last = extras.clientId === null ? undefined : this.lastWindows.get(extras.clientId);
      extras.pacing ??= new PacingWindow(this.parts.windowBytes ?? DEFAULT_WINDOW_BYTES, extras.sentEnd, last);
      extras.pacing.reported(extras.received, Date.now());
    }
    this.progress();
  }

  /** A client behind may have caught up. */
  progress(): void {
    if (this.drainTimer) this.checkDrain();
  }

  /** A client left: a paused upstream may resume; its window is kept for its next connection. */
  clientLeft(client: TerminalClient): void {
    const { clientId, pacing } = client.extras;
    if (clientId !== null && pacing !== null) {
      this.lastWindows.delete(clientId);
      this.lastWindows.set(clientId, pacing.bytes);
      // The oldest first (a Map iterates in insertion order).
      if (this.lastWindows.size > REMEMBERED_WINDOWS) this.lastWindows.delete(this.lastWindows.keys().next().value!);
    }
    if (this.upstreamPaused) this.checkDrain();
  }

  close(): void {
    this.parts.sendBudget?.leave(this.member);
    this.parts.replayBudget?.untrack(this.parts.buffer);
    if (this.drainTimer) clearInterval(this.drainTimer);
    this.drainTimer = null;
  }

  private pauseUpstream(): void {
    const upstream = this.parts.upstream();
    if (this.upstreamPaused || !upstream) return;
    this.upstreamPaused = true;
    upstream.pause();
    this.watchDrain();
  }

  private resumeUpstream(): void {
    if (!this.upstreamPaused) return;
    this.upstreamPaused = false;
    this.parts.upstream()?.resume();
  }

  private watchDrain(): void {
    if (this.drainTimer) return;
    this.drainTimer = setInterval(() => this.checkDrain(), DRAIN_CHECK_MS);
  }

  private checkDrain(): void {
    const { clients } = this.parts;
    const live = [...clients].filter((client) => client.mode === 'live');
    if (this.upstreamPaused && (live.length === 0 || live.some((client) => client.ws.bufferedAmount < LOW_WATER_BYTES)))
      this.resumeUpstream();
    for (const client of clients) if (client.mode === 'behind' && drained(client)) this.parts.caughtUp(client);
    if (!this.upstreamPaused && !clients.anyBehind() && this.drainTimer) {
      clearInterval(this.drainTimer);
      this.drainTimer = null;
    }
  }
}

/** A client behind has caught up: it reported everything it was sent, or (if it never reports) its socket drained. */
const drained = (client: TerminalClient): boolean =>
  client.extras.received !== null ? client.extras.received >= client.extras.sentEnd : client.ws.bufferedAmount < LOW_WATER_BYTES;
