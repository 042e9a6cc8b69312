import { WebSocket } from 'ws';
import { WsCloseCode } from '../common/websocket/close-codes.js';
import type { PacingWindow } from './pacing-window.js';
import { ClientMessage, ServerMessage } from './protocol.js';
import { TerminalMetrics } from './terminal-metrics.js';

/** Input budget per client: a sustained rate and a burst (a paste). */
export const INPUT_BYTES_PER_SECOND = 256 * 1024;
export const INPUT_BURST_BYTES = 1024 * 1024;
/** Malformed frames, oversized input and floods tolerated before the client is closed. */
export const MAX_VIOLATIONS = 10;

export interface TerminalClient {
  readonly id: number;
  readonly ws: WebSocket;
  readonly userId: string;
  /** The sign-in session whose access token opened this connection. */
  readonly sessionId: string;
  cols: number | null;
  rows: number | null;
  /** connecting: before welcome; pending: waiting for a first resume; live; behind: cut over, waiting to drain. */
  mode: 'connecting' | 'pending' | 'live' | 'behind';
  queue: ClientMessage[];
  violations: number;
  inputTokens: number;
  inputRefilledAt: number;
  firstMessageTimer: NodeJS.Timeout | null;
  /** The low-latency additions (docs/terminal.md, "Low-latency additions"); see newClientState. */
  readonly extras: ClientExtras;
}

/** A client's state for the optional low-latency additions. */
export interface ClientExtras {
  /** The `client_id` query parameter, or null. */
  readonly clientId: string | null;
  /** Whose input this client's is: its client_id, or a key of this connection (input-writer.ts). */
  readonly writer: string;
  /** The last seq of this client written when it was greeted (welcome `input.seq`). */
  welcomeSeq: number;
  /** The highest seq this connection sent (seqs at or below it are dropped when it has no client_id). */
  lastSeq: number;
  /** The highest ack sent to this client; null until it sent a seq (only then do its frames carry `ack`). */
  ackSent: number | null;
  ackTimer: NodeJS.Timeout | null;
  /** The end offset of the last output sent to this client. */
  sentEnd: number;
  /** The end offset of the output the client reported received; null until it sent `received`. */
  received: number | null;
  /** The window of a client paced by `received` (pacing-window.ts); null until its first report. */
  pacing: PacingWindow | null;
}

/** The extras of a new connection: `clientId` from its query, `connectionKey` naming it among every replica's connections. */
export function newClientExtras(clientId: string | null, connectionKey: string): ClientExtras {
  return {
    clientId,
    writer: clientId ?? `~${connectionKey}`,
    welcomeSeq: 0,
    lastSeq: 0,
    ackSent: null,
    ackTimer: null,
    sentEnd: 0,
    received: null,
    pacing: null,
  };
}

/** True for a client that uses the additions: it gets `modes` messages (old clients never do). */
export const usesAdditions = (client: TerminalClient): boolean =>
  client.extras.clientId !== null || client.extras.ackSent !== null || client.extras.received !== null;

export const encode = (message: ServerMessage): Buffer => Buffer.from(JSON.stringify(message));

/** An encoded `output` frame (a JSON object) with `"ack":N` added as its last member. */
export const withAck = (frame: Buffer, ack: number): Buffer =>
  Buffer.concat([frame.subarray(0, frame.length - 1), Buffer.from(`,"ack":${ack}}`)]);

/**
 * The clients of one terminal session: who is connected (counted in `terminal_clients`), which
 * one was active last, sending to them, and each one's budgets: input rate (a token bucket) and
 * protocol violations (the 10th closes that client only, 4008).
 */
export class TerminalClients implements Iterable<TerminalClient> {
  private readonly members = new Set<TerminalClient>();
  /** The client that typed or resized last: its size is the session's, and it gets each frame first (its echo is what someone waits for). */
  active: TerminalClient | null = null;

  constructor(private readonly metrics: TerminalMetrics) {}

  get size(): number {
    return this.members.size;
  }

  [Symbol.iterator](): Iterator<TerminalClient> {
    return this.members[Symbol.iterator]();
  }

  add(client: TerminalClient): void {
    this.members.add(client);
    this.metrics.clients.inc();
  }

  /** Forgets a client (and its first-message timer); false when it was not here. */
  remove(client: TerminalClient): boolean {
    if (!this.members.delete(client)) return false;
    if (this.active === client) this.active = null;
    this.metrics.clients.dec();
    if (client.firstMessageTimer) clearTimeout(client.firstMessageTimer);
    if (client.extras.ackTimer) clearTimeout(client.extras.ackTimer);
    return true;
  }

  /** The clients receiving live output, the active one first. */
  live(): TerminalClient[] {
    const live: TerminalClient[] = [];
    for (const client of this.members) {
      if (client.mode !== 'live') continue;
      if (client === this.active) live.unshift(client);
      else live.push(client);
    }
    return live;
  }

  /** True when some client was cut over and waits to drain. */
  anyBehind(): boolean {
    for (const client of this.members) if (client.mode === 'behind') return true;
    return false;
  }

  send(client: TerminalClient, message: ServerMessage): void {
    if (client.ws.readyState === WebSocket.OPEN) client.ws.send(encode(message), { binary: false });
  }

  /**
   * Sends an encoded output frame carrying `bytes` bytes of the stream up to `end` (counted in
   * `terminal_output_bytes_total`); to a client that sent a seq, with its `ack` (withAck).
   */
  sendFrame(client: TerminalClient, frame: Buffer, bytes: number, end: number, ack?: number): void {
    if (client.ws.readyState !== WebSocket.OPEN) return;
    const { extras } = client;
    if (extras.ackSent !== null && ack !== undefined) {
      extras.ackSent = Math.max(extras.ackSent, ack);
      client.ws.send(withAck(frame, extras.ackSent), { binary: false });
    } else {
      client.ws.send(frame, { binary: false });
    }
    extras.sentEnd = end;
    extras.pacing?.sent(end, end - (extras.received ?? end), Date.now());
    this.metrics.bytesOut.inc(bytes);
  }

  /**
   * Takes `data` from the client's input budget (refilled at INPUT_BYTES_PER_SECOND up to
   * INPUT_BURST_BYTES): its UTF-8 length, or null, with a violation, when the budget is short.
   */
  spendInput(client: TerminalClient, data: string): number | null {
    const now = Date.now();
    client.inputTokens = Math.min(INPUT_BURST_BYTES, client.inputTokens + ((now - client.inputRefilledAt) / 1000) * INPUT_BYTES_PER_SECOND);
    client.inputRefilledAt = now;
    const bytes = Buffer.byteLength(data);
    if (bytes > client.inputTokens) {
      this.violation(client, 'Input is arriving too fast; some was dropped');
      return null;
    }
    client.inputTokens -= bytes;
    return bytes;
  }

  /** Counts a protocol violation; repeated abuse closes this client only. */
  violation(client: TerminalClient, message: string): void {
    client.violations += 1;
    this.send(client, { type: 'error', message });
    if (client.violations >= MAX_VIOLATIONS) {
      this.metrics.rejections.inc({ reason: 'policy' });
      this.send(client, { type: 'error', message: 'Too many invalid messages; closing this connection' });
      client.ws.close(WsCloseCode.PolicyViolation, 'too many invalid messages');
    }
  }

  /** Cancels the wait for a first `resume` message. */
  stopWaitingForFirstMessage(client: TerminalClient): void {
    if (client.firstMessageTimer) clearTimeout(client.firstMessageTimer);
    client.firstMessageTimer = null;
  }
}
