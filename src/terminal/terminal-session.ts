import { StringDecoder } from 'node:string_decoder';
import { Logger } from '@nestjs/common';
import { WebSocket } from 'ws';
import { WsCloseCode } from '../common/websocket/close-codes.js';
import { EnvironmentSpec, ExecSession, RuntimeProvider } from '../runtime/runtime.provider.js';
import { TMUX_REPAINT_KEYS } from '../runtime/tmux-conf.js';
import { ClientMessage, ServerMessage, WelcomeMessage } from './protocol.js';
import { ReplayBuffer } from './replay-buffer.js';
import { TerminalMetrics } from './terminal-metrics.js';

/** A client whose socket holds more than this is behind; below LOW it has caught up. */
export const HIGH_WATER_BYTES = 1024 * 1024;
export const LOW_WATER_BYTES = 256 * 1024;
/** Output is coalesced into frames of at most this many characters. */
const MAX_FRAME_CHARS = 256 * 1024;
/** A chunk this small, arriving when nothing waits to be sent, is sent at once (typing latency). */
const IMMEDIATE_FLUSH_CHARS = 512;
/** How long a fresh client may take to send `{"type":"resume"}` as its first message. */
const FIRST_MESSAGE_WAIT_MS = 150;
const DRAIN_CHECK_MS = 20;
/** Input budget per client: a sustained rate and a burst (a paste). */
const INPUT_BYTES_PER_SECOND = 256 * 1024;
const INPUT_BURST_BYTES = 1024 * 1024;
/** Malformed frames, oversized input and floods tolerated before the client is closed. */
const MAX_VIOLATIONS = 10;

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
}

export interface SessionDependencies {
  runtime: RuntimeProvider;
  metrics: TerminalMetrics;
  replayBufferBytes: number;
  graceMs: number;
  onInput: (environmentId: string) => void;
  onClosed: (session: TerminalSession) => void;
}

const encode = (message: ServerMessage): Buffer => Buffer.from(JSON.stringify(message));

/**
 * One environment's terminal in this process: ONE upstream (`tmux new-session -A` through the
 * runtime's exec), any number of clients. Output fans out to every client from one encoded frame;
 * input from any client goes upstream in arrival order; the most recently active client's size
 * wins. A client that falls behind while others keep up is cut over to a redraw when it drains;
 * when every client is behind, the upstream is paused: tmux then stops drawing for this server
 * (it keeps the program's output in its screen and history), so memory stays bounded everywhere.
 */
export class TerminalSession {
  private readonly logger = new Logger('Terminal');
  readonly clients = new Set<TerminalClient>();
  readonly sessionName: string;
  private readonly buffer: ReplayBuffer;
  private readonly decoder = new StringDecoder('utf8');
  private upstream: ExecSession | null = null;
  private starting: Promise<void> | null = null;
  private pendingText = '';
  private flushScheduled = false;
  private paused = false;
  private drainTimer: NodeJS.Timeout | null = null;
  private graceTimer: NodeJS.Timeout | null = null;
  private repaintRequested = false;
  private closed = false;
  private size = { cols: 80, rows: 24 };
  /** The client that typed or resized last: it gets each frame first (its echo is what someone waits for). */
  private active: TerminalClient | null = null;

  constructor(
    readonly spec: EnvironmentSpec,
    private readonly deps: SessionDependencies,
  ) {
    this.sessionName = `devpocket_${spec.id}`;
    // Offsets start at the creation time in microseconds, so an offset saved from another session
    // (an earlier one, or another server's) is never mistaken for a position in this one: it falls
    // outside this buffer and the client gets a reset and a redraw instead of someone else's bytes.
    this.buffer = new ReplayBuffer(deps.replayBufferBytes, Date.now() * 1000);
  }

  get offset(): number {
    return this.buffer.end;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  // ---- upstream -------------------------------------------------------------------------------------

  private ensureUpstream(cols: number, rows: number): Promise<void> {
    if (this.upstream) return Promise.resolve();
    this.starting ??= this.startUpstream(cols, rows).finally(() => (this.starting = null));
    return this.starting;
  }

  private async startUpstream(cols: number, rows: number): Promise<void> {
    this.size = { cols, rows };
    const upstream = await this.deps.runtime.exec(this.spec, ['tmux', 'new-session', '-A', '-s', this.sessionName], {
      tty: true,
      cols,
      rows,
    });
    this.upstream = upstream;
    this.deps.metrics.sessions.inc();
    upstream.stream.on('data', (chunk: Buffer) => this.onOutput(chunk));
    upstream.stream.on('error', (error: Error) => this.logger.warn(`Upstream of ${this.spec.id}: ${error.message}`));
    void upstream.exit.then((status) => this.onUpstreamExit(upstream, status.code));
  }

  private onUpstreamExit(upstream: ExecSession, code: number | null): void {
    if (this.upstream !== upstream) return;
    this.flush();
    this.upstream = null;
    this.deps.metrics.sessions.dec();
    if (this.closed) return;
    if (this.clients.size > 0) this.deps.metrics.upstreamErrors.inc();
    for (const client of this.clients) {
      this.send(client, {
        type: 'error',
        message: `The terminal session ended${code === null ? '' : ` (exit code ${code})`}; reconnect to start it again`,
      });
      client.ws.close(WsCloseCode.NotRunning, 'terminal session ended');
    }
    this.close();
  }

  private onOutput(chunk: Buffer): void {
    const text = this.decoder.write(chunk);
    if (text.length === 0) return;
    this.pendingText += text;
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

  /** Sends the coalesced output as one frame, encoded once for every client. */
  private flush(): void {
    this.flushScheduled = false;
    const text = this.pendingText;
    if (text.length === 0) return;
    this.pendingText = '';
    const bytes = Buffer.from(text, 'utf8');
    const offset = this.buffer.append(bytes);
    const frame = encode({ type: 'output', data: text, offset });
    const live: TerminalClient[] = [];
    let slow = 0;
    for (const client of this.clients) {
      if (client.mode !== 'live') continue;
      if (client === this.active) live.unshift(client);
      else live.push(client);
      if (client.ws.bufferedAmount > HIGH_WATER_BYTES) slow += 1;
    }
    if (live.length > 0 && slow === live.length) {
      // Everyone is behind: deliver what was read and stop reading until someone drains.
      for (const client of live) this.sendFrame(client, frame, bytes.length);
      this.pauseUpstream();
      return;
    }
    for (const client of live) {
      if (client.ws.bufferedAmount > HIGH_WATER_BYTES) {
        client.mode = 'behind';
        this.deps.metrics.cutovers.inc();
        this.watchDrain();
      } else {
        this.sendFrame(client, frame, bytes.length);
      }
    }
  }

  private pauseUpstream(): void {
    if (this.paused || !this.upstream) return;
    this.paused = true;
    this.upstream.stream.pause();
    this.watchDrain();
  }

  private resumeUpstream(): void {
    if (!this.paused) return;
    this.paused = false;
    this.upstream?.stream.resume();
  }

  private watchDrain(): void {
    if (this.drainTimer) return;
    this.drainTimer = setInterval(() => this.checkDrain(), DRAIN_CHECK_MS);
  }

  private checkDrain(): void {
    const live = [...this.clients].filter((client) => client.mode === 'live');
    if (this.paused && (live.length === 0 || live.some((client) => client.ws.bufferedAmount < LOW_WATER_BYTES))) this.resumeUpstream();
    for (const client of this.clients) {
      if (client.mode === 'behind' && client.ws.bufferedAmount < LOW_WATER_BYTES) this.redraw(client, true);
    }
    if (!this.paused && ![...this.clients].some((client) => client.mode === 'behind') && this.drainTimer) {
      clearInterval(this.drainTimer);
      this.drainTimer = null;
    }
  }

  // ---- clients --------------------------------------------------------------------------------------

  /** Starts (or joins) the upstream and greets the client; `resume` is the offset of `?resume=`. */
  async attach(client: TerminalClient, welcome: Omit<WelcomeMessage, 'session'>, resume: number | null): Promise<void> {
    if (this.graceTimer) {
      clearTimeout(this.graceTimer);
      this.graceTimer = null;
    }
    this.clients.add(client);
    this.deps.metrics.clients.inc();
    try {
      await this.ensureUpstream(client.cols ?? 80, client.rows ?? 24);
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
    this.send(client, {
      ...welcome,
      session: { name: this.sessionName, offset: this.buffer.end, ...this.size, resumed: resumeOffset !== null },
    });
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
    if (!this.clients.delete(client)) return;
    if (this.active === client) this.active = null;
    this.deps.metrics.clients.dec();
    if (client.firstMessageTimer) clearTimeout(client.firstMessageTimer);
    if (this.paused) this.checkDrain();
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
      this.sendFrame(client, encode({ type: 'output', data: bytes.toString('utf8'), offset: this.buffer.end }), bytes.length);
    }
    client.mode = 'live';
  }

  /**
   * Brings a client to the current screen: optionally a `reset` notice (clear your terminal), then
   * tmux repaints the whole screen through the shared stream (never raw replay). Every output frame
   * is part of the session stream, so offsets stay exact.
   */
  private redraw(client: TerminalClient, notice: boolean): void {
    if (client.firstMessageTimer) {
      clearTimeout(client.firstMessageTimer);
      client.firstMessageTimer = null;
    }
    this.deps.metrics.redraws.inc();
    // `reset` tells the client to clear its terminal; the repaint then draws every line in full.
    if (notice) this.send(client, { type: 'reset', offset: this.buffer.end });
    client.mode = 'live';
    this.requestRepaint();
  }

  private requestRepaint(): void {
    if (this.repaintRequested) return;
    this.repaintRequested = true;
    setImmediate(() => {
      this.repaintRequested = false;
      this.upstream?.stream.write(TMUX_REPAINT_KEYS);
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
        if (client.firstMessageTimer) clearTimeout(client.firstMessageTimer);
        client.firstMessageTimer = null;
        this.resume(client, message.offset);
        return;
      }
      this.redraw(client, false);
    }
    switch (message.type) {
      case 'input':
        this.input(client, message.data);
        return;
      case 'resize':
        this.active = client;
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

  private input(client: TerminalClient, data: string): void {
    const now = Date.now();
    client.inputTokens = Math.min(INPUT_BURST_BYTES, client.inputTokens + ((now - client.inputRefilledAt) / 1000) * INPUT_BYTES_PER_SECOND);
    client.inputRefilledAt = now;
    const bytes = Buffer.byteLength(data);
    if (bytes > client.inputTokens) {
      this.violation(client, 'Input is arriving too fast; some was dropped');
      return;
    }
    client.inputTokens -= bytes;
    this.active = client;
    if (client.cols !== null && client.rows !== null) this.applySize(client.cols, client.rows);
    this.upstream?.stream.write(data);
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
    client.violations += 1;
    this.send(client, { type: 'error', message });
    if (client.violations >= MAX_VIOLATIONS) {
      this.deps.metrics.rejections.inc({ reason: 'policy' });
      this.send(client, { type: 'error', message: 'Too many invalid messages; closing this connection' });
      client.ws.close(WsCloseCode.PolicyViolation, 'too many invalid messages');
    }
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
    if (client.ws.readyState === WebSocket.OPEN) client.ws.send(encode(message), { binary: false });
  }

  private sendFrame(client: TerminalClient, frame: Buffer, bytes: number): void {
    if (client.ws.readyState !== WebSocket.OPEN) return;
    client.ws.send(frame, { binary: false });
    this.deps.metrics.bytesOut.inc(bytes);
  }

  /** Ends the upstream (the tmux client; the tmux session lives on) and forgets the session. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.graceTimer) clearTimeout(this.graceTimer);
    if (this.drainTimer) clearInterval(this.drainTimer);
    const upstream = this.upstream;
    this.upstream = null;
    if (upstream) {
      this.deps.metrics.sessions.dec();
      void upstream.kill().catch(() => undefined);
    }
    this.deps.onClosed(this);
  }
}
