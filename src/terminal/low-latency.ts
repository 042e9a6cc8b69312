import type { SessionUpstream } from './terminal-session.js';
import { AckBook } from './input/ack-book.js';
import { InputWriter, SequencedInput } from './input/input-writer.js';
import { ModeWatch, modesMessage, TerminalModes } from './mode-hints.js';
import type { InputFrame, ServerMessage } from './protocol.js';
import { TerminalClient, TerminalClients, usesAdditions } from './terminal-clients.js';

/** A client gets `{"type":"ack"}` when no output frame acknowledged its input this long after it was written. */
export const STANDALONE_ACK_MS = 50;

/** What an upstream that writes (or follows) elsewhere tells its session: acks and modes, positioned in the stream. */
export interface UpstreamHints {
  /** `seq` of `writer` was written when the output read ended at `offset`. */
  written: (writer: string, seq: number, offset: number) => void;
  /** The terminal's modes changed; they hold from `offset` on. */
  modes: (modes: TerminalModes, offset: number) => void;
  /** Whether a client here uses the additions (only then are the modes worth reading). */
  wanted: () => boolean;
}

export interface LowLatencyParts {
  clients: TerminalClients;
  acks: AckBook;
  /** The offset just after the output read so far (fan-out.ts). */
  mark: () => number;
  send: (client: TerminalClient, message: ServerMessage) => void;
  /** Counted in terminal_input_duplicates_total: resent input dropped because it was written already. */
  duplicate: () => void;
  /** Brings a client to the current screen at once: `reset`, then a repaint (it skips its backlog). */
  jump: (client: TerminalClient) => void;
}

/**
 * One session's part of the low-latency additions (docs/terminal.md, "Low-latency additions"):
 * where its clients' sequenced input goes (a writer of its own over a plain upstream, or the
 * upstream's own `submitInput`, which deduplicates at the owner replica), the acks (on output
 * frames through the fan-out, or standalone after STANDALONE_ACK_MS), `welcome.input`, the
 * mode hints (read here, or told by the upstream), and the jump of a paced client that types while
 * it is behind a flood.
 */
export class LowLatency {
  private upstream: SessionUpstream | null = null;
  private writer: InputWriter | null = null;
  private watch: ModeWatch | null = null;
  /**
   * Clients made to jump by their input before they reported all they had been sent: the offset of
   * that jump. Until they report it, what is still on its way to them is not counted in their
   * window, so they are not made to jump again.
   */
  private readonly unconfirmed = new WeakMap<TerminalClient, number>();

  constructor(private readonly parts: LowLatencyParts) {}

  /** A new upstream: input goes to it, and modes and acks come from it or from what this process reads. */
  attach(upstream: SessionUpstream): void {
    this.detach();
    this.upstream = upstream;
    const hints: UpstreamHints = {
      written: (writer, seq, offset) => this.written(writer, seq, offset),
      modes: (modes, offset) => this.modesChanged(modes, offset),
      wanted: () => this.wanted(),
    };
    if (upstream.submitInput && upstream.hints) {
      upstream.hints(hints);
      return;
    }
    this.writer = new InputWriter({
      write: (data) => {
        upstream.stream.write(data);
        this.watch?.input();
      },
      written: (writer, seq, duplicate) => {
        if (duplicate) this.parts.duplicate();
        this.written(writer, seq, this.parts.mark());
      },
    });
    const probe = upstream.probeModes?.bind(upstream);
    if (probe) this.watch = new ModeWatch(probe, () => this.parts.mark(), hints.modes, hints.wanted);
  }

  /** The upstream ended: nothing more is written or watched through it. */
  detach(): void {
    this.writer?.close();
    this.writer = null;
    this.watch?.close();
    this.watch = null;
    this.upstream = null;
  }

  /** Output read from a plain upstream (in order, after the fan-out took it). */
  output(chunk: Buffer): void {
    this.watch?.output(chunk);
  }

  /** `welcome.input` for a client with a client_id: the last seq of it written to the terminal. */
  async welcomeInput(client: TerminalClient): Promise<{ client_id: string; seq: number } | undefined> {
    const { clientId } = client.extras;
    if (clientId === null) return undefined;
    const upstream = this.upstream;
    let seq = this.writer?.ledger.get(clientId) ?? 0;
    if (upstream?.lastInputSeq) seq = await upstream.lastInputSeq(clientId).catch(() => 0);
    seq = Math.max(seq, this.parts.acks.latest(clientId));
    client.extras.welcomeSeq = seq;
    return { client_id: clientId, seq };
  }

  /** The client was greeted: if it uses the additions, it learns the modes (read again: what is known may be old). */
  greeted(client: TerminalClient): void {
    if (usesAdditions(client)) this.refreshModes();
  }

  /**
   * The modes are read again and told to every client that uses the additions: here, or by the
   * owner replica. Never what was known before (it may be stale: a password prompt since).
   */
  private refreshModes(): void {
    if (this.watch) this.watch.refresh();
    else this.upstream?.refreshModes?.();
  }

  /** A client's input, after its rate budget allowed it. */
  input(client: TerminalClient, message: InputFrame): void {
    const { extras } = client;
    const seq = message.seq ?? null;
    if (seq !== null) {
      const first = extras.ackSent === null;
      extras.ackSent ??= extras.welcomeSeq;
      // A client without client_id uses the additions from its first seq on: it learns the modes then.
      if (first && extras.clientId === null && extras.received === null) this.refreshModes();
      // Without a client_id, a seq is only known within this connection.
      if (extras.clientId === null && seq <= extras.lastSeq) return;
      extras.lastSeq = Math.max(extras.lastSeq, seq);
    }
    const input: SequencedInput = { data: message.data, writer: extras.writer, seq, more: message.more ?? false };
    if (this.writer) this.writer.submit(input);
    else this.upstream?.submitInput?.(input);
  }

  /** A client reported the end offset of what it processed (`received`). */
  received(client: TerminalClient, offset: number): void {
    const { extras } = client;
    if (!usesAdditions(client)) this.refreshModes();
    extras.received = Math.max(extras.received ?? 0, Math.min(offset, extras.sentEnd));
    if (offset >= (this.unconfirmed.get(client) ?? Number.POSITIVE_INFINITY)) this.unconfirmed.delete(client);
  }

  /** The client gets `reset` at `offset`: what came before is skipped, as if received. */
  reset(client: TerminalClient, offset: number): void {
    const { extras } = client;
    extras.sentEnd = offset;
    if (extras.received !== null) extras.received = offset;
    extras.pacing?.restart(offset);
  }

  close(): void {
    this.detach();
  }

  private wanted(): boolean {
    for (const client of this.parts.clients) if (usesAdditions(client)) return true;
    return false;
  }

  /**
   * Input of `writer` was written. Its clients paced by `received` that are behind (their window is
   * full, the backlog unsent) jump to the current screen now, rather than after what is on its way
   * to them is reported: what follows a key (the prompt after Ctrl-C under a flood) is what they
   * wait for. What is in flight still arrives first; the jump counts it as received, so at most one
   * such jump is unconfirmed at a time (in flight then: at most two windows and a repaint).
   */
  private skipBacklog(writer: string): void {
    for (const client of this.parts.clients) {
      const { extras } = client;
      if (extras.writer !== writer || client.mode !== 'behind' || extras.received === null || this.unconfirmed.has(client)) continue;
      this.parts.jump(client);
      this.unconfirmed.set(client, extras.sentEnd);
    }
  }

  private written(writer: string, seq: number, offset: number): void {
    this.parts.acks.record(writer, seq, offset);
    this.skipBacklog(writer);
    for (const client of this.parts.clients) {
      const { extras } = client;
      if (extras.writer !== writer || extras.ackSent === null || extras.ackTimer) continue;
      extras.ackTimer = setTimeout(() => {
        extras.ackTimer = null;
        const latest = this.parts.acks.latest(writer);
        if (extras.ackSent === null || latest <= extras.ackSent) return;
        extras.ackSent = latest;
        this.parts.send(client, { type: 'ack', seq: latest });
      }, STANDALONE_ACK_MS);
    }
  }

  private modesChanged(modes: TerminalModes, offset: number): void {
    const message = modesMessage(modes, offset);
    for (const client of this.parts.clients) if (client.mode !== 'connecting' && usesAdditions(client)) this.parts.send(client, message);
  }
}
