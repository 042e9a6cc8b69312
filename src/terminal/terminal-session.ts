import { Logger } from '@nestjs/common';
import { WebSocket } from 'ws';
import { WsCloseCode } from '../common/websocket/close-codes.js';
import { EnvironmentSpec, ExitStatus, RuntimeProvider, TerminalAttachment, TerminalSize } from '../runtime/runtime.provider.js';
import { DEFAULT_TERMINAL_SIZE } from '../runtime/terminal-size.js';
import { OutputFanOut } from './fan-out.js';
import { AckBook } from './input/ack-book.js';
import type { SequencedInput } from './input/input-writer.js';
import { LowLatency, UpstreamHints } from './low-latency.js';
import { ClientMessage, InputFrame, ServerMessage, WelcomeMessage } from './protocol.js';
import type { ReplayBudget, SendQueueBudget } from './memory-budget.js';
import { ReplayBuffer } from './replay-buffer.js';
import { encode, TerminalClient, TerminalClients } from './terminal-clients.js';
import { TerminalMetrics } from './terminal-metrics.js';

export type { TerminalClient } from './terminal-clients.js';

/** How long a fresh client may take to send `{"type":"resume"}` as its first message. */
const FIRST_MESSAGE_WAIT_MS = 150;

/** Output already in the session's stream before this upstream joined it (several replicas: docs/terminal.md). */
export interface UpstreamHistory {
  /** Offset of the first byte of `chunks` (their end is the stream's current offset). */
  base: number;
  chunks: Buffer[];
}

/** An upstream of the session: the runtime's terminal attachment, or one shared through Redis with its stream's history. */
export interface SessionUpstream extends TerminalAttachment {
  /**
   * The shared stream's history, handed over once: the upstream keeps no reference to it (its
   * chunks are small Buffers, each pinning a slab of Node's pool, that would otherwise live as
   * long as the session).
   */
  takeHistory?(): UpstreamHistory | undefined;
  /**
   * Registers who is told when the stream goes on at `offset` past bytes this process missed (a
   * shared stream trimmed or written without it): every byte emitted before ends before the skip.
   */
  onResync?(listener: (offset: number) => void): void;
  /**
   * Several replicas: sequenced input goes to the owner, which writes it once and in order
   * (input-writer.ts); with it come `hints` (who is told of acks and modes, positioned in the
   * stream) and `lastInputSeq` (a client_id's last seq written, for `welcome`).
   */
  submitInput?(input: SequencedInput): void;
  hints?(listener: UpstreamHints): void;
  lastInputSeq?(clientId: string): Promise<number>;
  /** Asks the owner to read the modes again and tell every replica (a client that wants them joined). */
  refreshModes?(): void;
}

export interface SessionDependencies {
  runtime: RuntimeProvider;
  /** How the upstream is opened; by default the runtime's `attachTerminal`. */
  attach?: (spec: EnvironmentSpec, size: TerminalSize) => Promise<SessionUpstream>;
  metrics: TerminalMetrics;
  replayBufferBytes: number;
  /** The process's bounds on queued output and replay data, shared by every session (memory-budget.ts). */
  memory?: { sendQueue: SendQueueBudget; replay: ReplayBudget };
  graceMs: number;
  /** TERMINAL_CLIENT_WINDOW_BYTES: output a client that reports `received` may have unreported. */
  windowBytes?: number;
  onInput: (environmentId: string) => void;
  onClosed: (session: TerminalSession) => void;
  /**
   * Whether the environment is still recorded as running: asked when the upstream was lost (it ended
   * without an exit code, e.g. a dead exec connection), to tell a lost connection (4500, reconnect)
   * from an environment going away (4009). Without it, a lost upstream is closed like an ended one.
   */
  environmentRunning?: (environmentId: string) => Promise<boolean>;
}

/**
 * One environment's terminal in this process: ONE upstream (the runtime's terminal attachment to
 * the environment's persistent session), any number of clients (terminal-clients.ts). Output fans
 * out to every client from one encoded frame (fan-out.ts); input from any client goes upstream in
 * arrival order; the most recently active client's size wins. This class ties them together: it
 * starts and ends the upstream, greets, resumes and redraws clients, and handles their messages.
 */
export class TerminalSession {
  private readonly logger = new Logger('Terminal');
  readonly clients: TerminalClients;
  private readonly buffer: ReplayBuffer;
  private readonly output: OutputFanOut;
  private readonly acks = new AckBook();
  private readonly extras: LowLatency;
  private upstream: SessionUpstream | null = null;
  private starting: Promise<void> | null = null;
  /** The persistent session's name, as the runtime reported it when the upstream started. */
  private name = '';
  private graceTimer: NodeJS.Timeout | null = null;
  private repaintRequested = false;
  private closed = false;
  private size: TerminalSize = { ...DEFAULT_TERMINAL_SIZE };

  constructor(
    readonly spec: EnvironmentSpec,
    private readonly deps: SessionDependencies,
  ) {
    // Offsets start at the creation time in microseconds, so an offset saved from another session
    // (an earlier one, or another server's) is never mistaken for a position in this one: it falls
    // outside this buffer and the client gets a reset and a redraw instead of someone else's bytes.
    this.buffer = new ReplayBuffer(deps.replayBufferBytes, Date.now() * 1000);
    this.clients = new TerminalClients(deps.metrics);
    this.output = new OutputFanOut({
      clients: this.clients,
      buffer: this.buffer,
      metrics: deps.metrics,
      upstream: () => this.upstream?.stream ?? null,
      caughtUp: (client) => this.redraw(client, true),
      sendBudget: deps.memory?.sendQueue,
      replayBudget: deps.memory?.replay,
      acks: this.acks,
      windowBytes: deps.windowBytes,
    });
    this.extras = new LowLatency({
      clients: this.clients,
      acks: this.acks,
      mark: () => this.output.mark,
      send: (client, message) => this.send(client, message),
      duplicate: () => deps.metrics.inputDuplicates.inc(),
      jump: (client) => this.redraw(client, true),
    });
  }

  get offset(): number {
    return this.buffer.end;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get sessionName(): string {
    return this.name;
  }

  /** True while the upstream is paused because every client is behind (see fan-out.ts). */
  get paused(): boolean {
    return this.output.paused;
  }

  // ---- upstream -------------------------------------------------------------------------------------

  private ensureUpstream(size: TerminalSize): Promise<void> {
    if (this.upstream) return Promise.resolve();
    this.starting ??= this.startUpstream(size).finally(() => (this.starting = null));
    return this.starting;
  }

  private async startUpstream(size: TerminalSize): Promise<void> {
    this.size = { ...size };
    const attach =
      this.deps.attach ??
      ((spec: EnvironmentSpec, at: TerminalSize): Promise<SessionUpstream> => this.deps.runtime.attachTerminal(spec, at));
    const upstream = await attach(this.spec, size);
    this.upstream = upstream;
    // A shared stream's offsets and the bytes it still holds (an exact resume from another replica).
    const history = upstream.takeHistory?.();
    if (history) this.buffer.restart(history.base, history.chunks);
    this.name = upstream.sessionName;
    upstream.onResync?.((offset) => this.resync(offset));
    this.deps.metrics.sessions.inc();
    this.extras.attach(upstream);
    upstream.stream.on('data', (chunk: Buffer) => {
      this.output.write(chunk);
      this.extras.output(chunk);
    });
    upstream.stream.on('error', (error: Error) => this.logger.warn(`Upstream of ${this.spec.id}: ${error.message}`));
    void upstream.exit.then((status) => this.onUpstreamExit(upstream, status));
  }

  /**
   * The upstream ended. With an exit code, the tmux client exited (the environment stopped, the
   * shell exited): clients are closed with 4009. Without one, the upstream was lost (a dropped or
   * dead exec connection, a killed tmux client): if the environment still runs, clients are closed
   * with 4500 so they reconnect (with `resume`: a new session, so a `reset` and a redraw); the
   * session is forgotten at once, so a client that reconnects meanwhile starts a new upstream.
   */
  private onUpstreamExit(upstream: SessionUpstream, status: ExitStatus): void {
    if (this.upstream !== upstream) return;
    this.output.flush();
    this.upstream = null;
    this.extras.detach();
    this.deps.metrics.sessions.dec();
    if (this.closed) return;
    if (this.clients.size > 0) this.deps.metrics.upstreamErrors.inc();
    const { code } = status;
    const running = this.deps.environmentRunning;
    if (code === null && running) {
      const clients = [...this.clients];
      this.close();
      void running(this.spec.id)
        .catch(() => true)
        .then((stillRunning) => {
          if (stillRunning)
            this.logger.warn(
              `The terminal upstream of ${this.spec.id} was lost (${status.signal ?? 'no exit status'}); its clients reconnect`,
            );
          for (const client of clients) {
            if (stillRunning) this.lost(client);
            else this.ended(client, null);
          }
        });
      return;
    }
    for (const client of this.clients) this.ended(client, code);
    this.close();
  }

  /**
   * The upstream's stream skipped to `offset` (bytes this process missed are gone): the replay
   * buffer starts again there, and each live client gets `reset` and a repaint (a cut-over one gets
   * them when it drains; one not yet greeted or resumed starts from the new buffer anyway).
   */
  private resync(offset: number): void {
    if (this.closed) return;
    this.output.flush();
    this.buffer.restart(offset, []);
    this.deps.metrics.resyncs.inc();
    for (const client of this.clients) if (client.mode === 'live') this.redraw(client, true);
  }

  private ended(client: TerminalClient, code: number | null): void {
    this.send(client, {
      type: 'error',
      message: `The terminal session ended${code === null ? '' : ` (exit code ${code})`}; reconnect to start it again`,
    });
    client.ws.close(WsCloseCode.NotRunning, 'terminal session ended');
  }

  private lost(client: TerminalClient): void {
    this.send(client, { type: 'error', message: 'The connection to the terminal was lost; reconnect to resume' });
    client.ws.close(WsCloseCode.UpstreamError, 'upstream lost');
  }

  // ---- clients --------------------------------------------------------------------------------------

  /** Starts (or joins) the upstream and greets the client; `resume` is the offset of `?resume=`. */
  async attach(client: TerminalClient, welcome: Omit<WelcomeMessage, 'session'>, resume: number | null): Promise<void> {
    if (this.graceTimer) {
      clearTimeout(this.graceTimer);
      this.graceTimer = null;
    }
    this.clients.add(client);
    try {
      await this.ensureUpstream({ cols: client.cols ?? DEFAULT_TERMINAL_SIZE.cols, rows: client.rows ?? DEFAULT_TERMINAL_SIZE.rows });
    } catch (error) {
      this.deps.metrics.upstreamErrors.inc();
      this.logger.warn(`Could not start the terminal of ${this.spec.id}: ${error instanceof Error ? error.message : String(error)}`);
      this.send(client, { type: 'error', message: 'The terminal could not be started; try again shortly' });
      client.ws.close(WsCloseCode.UpstreamError, 'upstream failed');
      this.detach(client);
      return;
    }
    if (client.ws.readyState !== WebSocket.OPEN) return;
    const first = client.queue[0];
    let resumeOffset = resume;
    if (resumeOffset === null && first?.type === 'resume') {
      resumeOffset = first.offset;
      client.queue.shift();
    }
    const input = await this.extras.welcomeInput(client);
    if (client.ws.readyState !== WebSocket.OPEN) return;
    this.send(client, {
      ...welcome,
      session: { name: this.name, offset: this.buffer.end, ...this.size, resumed: resumeOffset !== null },
      ...(input ? { input } : {}),
    });
    client.extras.sentEnd = this.buffer.end;
    this.extras.greeted(client);
    if (resumeOffset !== null) {
      this.resume(client, resumeOffset);
    } else if (client.queue.length > 0) {
      this.redraw(client, false);
    } else {
      client.mode = 'pending';
      client.firstMessageTimer = setTimeout(() => {
        client.firstMessageTimer = null;
        if (client.mode === 'pending') this.redraw(client, false);
      }, FIRST_MESSAGE_WAIT_MS);
    }
    const queued = client.queue.splice(0);
    for (const message of queued) this.handle(client, message);
  }

  detach(client: TerminalClient): void {
    if (!this.clients.remove(client)) return;
    this.output.clientLeft(client);
    this.releaseIfIdle();
  }

  /** Without clients, the upstream stays for the grace period, then goes. */
  releaseIfIdle(): void {
    if (this.clients.size > 0 || this.closed || this.graceTimer) return;
    this.graceTimer = setTimeout(() => this.close(), this.deps.graceMs);
    this.graceTimer.unref();
  }

  /** Sends exactly the bytes after `offset` if they are still held; otherwise a reset and a redraw. */
  private resume(client: TerminalClient, offset: number): void {
    const chunks = this.buffer.since(offset);
    if (chunks === null) {
      this.deps.metrics.resumes.inc({ result: 'redraw' });
      this.redraw(client, true);
      return;
    }
    this.deps.metrics.resumes.inc({ result: 'exact' });
    if (chunks.length > 0) {
      const bytes = Buffer.concat(chunks);
      const frame = encode({ type: 'output', data: bytes.toString('utf8'), offset: this.buffer.end });
      this.clients.sendFrame(client, frame, bytes.length, this.buffer.end, this.acks.reachedBy(client.extras.writer));
    }
    client.mode = 'live';
  }

  /**
   * Brings a client to the current screen: optionally a `reset` notice (clear your terminal), then
   * the upstream repaints the whole screen through the shared stream (never raw replay). Every
   * output frame is part of the session stream, so offsets stay exact.
   */
  private redraw(client: TerminalClient, notice: boolean): void {
    this.clients.stopWaitingForFirstMessage(client);
    this.deps.metrics.redraws.inc();
    // `reset` tells the client to clear its terminal; the repaint then draws every line in full.
    if (notice) {
      this.extras.reset(client, this.buffer.end);
      this.send(client, { type: 'reset', offset: this.buffer.end });
    }
    client.mode = 'live';
    this.requestRepaint();
  }

  private requestRepaint(): void {
    if (this.repaintRequested) return;
    this.repaintRequested = true;
    setImmediate(() => {
      this.repaintRequested = false;
      this.upstream?.repaint();
    });
  }

  /** One parsed client message. */
  handle(client: TerminalClient, message: ClientMessage): void {
    if (client.mode === 'connecting') {
      client.queue.push(message);
      return;
    }
    if (client.mode === 'pending') {
      if (message.type === 'resume') {
        this.clients.stopWaitingForFirstMessage(client);
        this.resume(client, message.offset);
        return;
      }
      this.redraw(client, false);
    }
    switch (message.type) {
      case 'input':
        this.input(client, message);
        return;
      case 'received':
        this.extras.received(client, message.offset);
        this.output.reported(client);
        return;
      case 'resize':
        this.clients.active = client;
        client.cols = message.cols;
        client.rows = message.rows;
        this.applySize(message.cols, message.rows);
        return;
      case 'ping':
        this.send(client, { type: 'pong' });
        return;
      case 'resume':
        this.violation(client, 'resume is only accepted as the first message');
        return;
    }
  }

  private input(client: TerminalClient, message: InputFrame): void {
    const bytes = this.clients.spendInput(client, message.data);
    if (bytes === null) return;
    this.clients.active = client;
    if (client.cols !== null && client.rows !== null) this.applySize(client.cols, client.rows);
    // Written once and in order per client_id, never inside another client's multi-part paste (low-latency.ts).
    this.extras.input(client, message);
    this.deps.metrics.bytesIn.inc(bytes);
    this.deps.onInput(this.spec.id);
  }

  /** The most recently active client's size is the session's size. */
  private applySize(cols: number, rows: number): void {
    if (cols === this.size.cols && rows === this.size.rows) return;
    this.size = { cols, rows };
    this.upstream?.resize(cols, rows);
  }

  /** Counts a protocol violation; repeated abuse closes this client only. */
  violation(client: TerminalClient, message: string): void {
    this.clients.violation(client, message);
  }

  /** Tells every client about a lifecycle change; a stopped environment ends the session. */
  announce(status: string, phase: string, message: string | null): void {
    for (const client of this.clients) this.send(client, { type: 'status', status, phase, message });
    if (['stopped', 'terminating', 'terminated', 'error'].includes(phase)) {
      for (const client of this.clients) client.ws.close(WsCloseCode.NotRunning, `environment ${phase}`);
      this.close();
    }
  }

  send(client: TerminalClient, message: ServerMessage): void {
    this.clients.send(client, message);
  }

  /** Ends the upstream (this process's terminal; the persistent session lives on) and forgets the session. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.output.close();
    this.extras.close();
    const upstream = this.upstream;
    this.upstream = null;
    if (upstream) {
      this.deps.metrics.sessions.dec();
      void upstream.kill().catch(() => undefined);
    }
    this.deps.onClosed(this);
  }
}
