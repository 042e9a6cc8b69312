import {
  CLIENT_TIMEOUT,
  clientIdFor,
  describeClose,
  tabStorage,
  type ConnectionOptions,
  type ConnectionState,
  type ModesMessage,
  type SocketLike,
  type StatusMessage,
  type WelcomeMessage,
} from './connection-types.js';
import { InputLog, type InputEntry } from './input-log.js';
import { KeepAlive, retryDelay } from './keep-alive.js';
import { HIGH_WATER } from './output-sink.js';
import { REPORT_MS, ReceivedReports } from './received-reports.js';

export { CLIENT_TIMEOUT, describeClose } from './connection-types.js';
export type { ConnectionOptions, ConnectionState, ModesMessage, StatusMessage, WelcomeMessage } from './connection-types.js';

/**
 * The terminal WebSocket, as docs/terminal.md describes it for a client that resumes, with the
 * additions of issue 15 (docs/console.md#the-connection):
 *
 * - authenticates with the subprotocols `['devpocket.v1', 'bearer.<access token>']`, so the
 *   token is neither in the URL nor echoed back; identifies its input with `?client_id=`
 *   (random, per tab and environment, in sessionStorage);
 * - keeps its position in the session's output stream (the OutputSink's `position`) and
 *   reconnects with `?resume=<position>`: the server sends exactly the missed bytes, or `reset`
 *   and a repaint when they are gone;
 * - numbers every `input` (`seq`), keeps it until acknowledged and, after each `welcome`, sends
 *   again in order what the welcome's `input.seq` does not cover: exactly once across drops.
 *   Input typed while (re)connecting is kept and sent the same way;
 * - reports how far it has processed the output (`received`), so the server paces the output by
 *   this page's own position;
 * - pings (every 1 s while input awaits its acknowledgement, after 2 s of silence otherwise) and
 *   gives a socket up when no frame at all has come for 2.5 s after a ping; reconnects at once,
 *   then after 250 ms, 500 ms, 1 s, 2 s… (at most 5 s while online); after 4001 only once the
 *   token has been refreshed; after 4009 once the environment runs again; never by itself after
 *   4004, 4008, 4029 or a refused frame (1002, 1003, 1007, 1009).
 *
 * For predicted echo (./prediction/), the calls it offers:
 * - `send(data)`: sends a keystroke or paste and returns the `seq` of its (last) input message,
 *   null when it was refused or dropped; seqs handed out before the first welcome may be
 *   renumbered when the server knows this tab's client id from before a reload (they are then
 *   acknowledged together).
 * - `onOutput(data, offset, ack)`: each `output` frame before it goes to the sink, with its
 *   `ack` (the highest seq written before the frame's first byte was read), null without.
 * - `onAck(seq)`: each `ack` message (input written that no output acknowledged within 50 ms).
 * - `onModes(modes)`: each `modes` frame (echo, canonical, alternate screen, cursor keys, …).
 * - `onRoundTrip(ms)` and `roundTripMs`: each ping's round trip, and their smoothed value.
 * - `acknowledged`: the highest seq known written (acks, welcomes).
 */

const OPEN = 1;
/** Subprotocol offered next to the token, so the server echoes this one and not the token. */
export const PROTOCOL = 'devpocket.v1';

/** A socket that has not been welcomed this long after it was opened is given up (a handshake lost in a dead link). */
export const WELCOME_TIMEOUT_MS = 10_000;
/** A connection that lasted this long starts the back-off over (one that keeps failing soon after its welcome does not). */
const STABLE_AFTER_MS = 3000;

const NO_AUTOMATIC_RECONNECT = new Set([1002, 1003, 1007, 1009, 4004, 4008, 4029]);

export class TerminalConnection {
  private socket: SocketLike | null = null;
  private welcomed = false;
  /** The server acknowledges input (its welcome had `input`): keep what is sent until it does. */
  private acking = false;
  private generation = 0;
  private attempt = 0;
  private unauthorizedInARow = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeatTimer: ReturnType<typeof setTimeout> | null = null;
  private reportTimer: ReturnType<typeof setTimeout> | null = null;
  private welcomeTimer: ReturnType<typeof setTimeout> | null = null;
  private lastError: string | null = null;
  private waiting: AbortController | null = null;
  private stopped = false;
  private ackedSeq = 0;
  private welcomedAt: number | null = null;
  private readonly input = new InputLog();
  private readonly keepAlive = new KeepAlive();
  private readonly reports = new ReceivedReports();
  readonly clientId: string;
  state: ConnectionState = { kind: 'connecting', attempt: 0 };

  constructor(private readonly options: ConnectionOptions) {
    this.clientId = clientIdFor(options.environmentId, options.storage === undefined ? tabStorage() : options.storage);
  }

  /** The smoothed round trip of pings (ms), null before the first pong. */
  get roundTripMs(): number | null {
    return this.keepAlive.rttMs;
  }

  /** The highest seq of this client known written to the terminal. */
  get acknowledged(): number {
    return this.ackedSeq;
  }

  start(): void {
    void this.connect();
  }

  /** Closes for good (the page or view goes away). */
  stop(): void {
    this.stopped = true;
    this.clearRetry();
    this.stopTimers();
    this.waiting?.abort();
    const socket = this.socket;
    this.socket = null;
    if (socket) this.detach(socket, 1000, 'closed by the client');
  }

  /** The "Reconnect" button: now, whatever closed the last connection (except while waiting for the environment). */
  retryNow(): void {
    if (this.stopped || this.state.kind === 'waiting') return;
    if (this.state.kind === 'connected') {
      this.ping();
      return;
    }
    this.attempt = 0;
    void this.connect();
  }

  /**
   * The device came back online, or the page became visible again: check a connected socket with
   * a ping (an unanswered one gives it up quickly), and skip the rest of a back-off. Does not undo
   * a decision not to reconnect.
   */
  nudge(): void {
    if (this.stopped) return;
    if (this.state.kind === 'connected') this.ping();
    else if (this.state.kind === 'reconnecting') void this.connect();
  }

  /**
   * Keystrokes and pastes: numbered and sent now, or kept until the next welcome while
   * (re)connecting. Returns the seq of the (last) input message; null when refused (past the
   * bound on what is kept: the person is told) or dropped (no connection is coming by itself).
   */
  send(data: string): number | null {
    if (data.length === 0) return null;
    if (this.state.kind === 'waiting' || this.state.kind === 'disconnected') return null;
    const entries = this.input.add(data);
    if (entries === null) {
      this.options.onNotice?.('Not sent: too much input is waiting for the server. Wait until the connection is back, then try again.');
      return null;
    }
    if (this.welcomed) this.transmit(entries);
    return entries.at(-1)?.seq ?? null;
  }

  sendResize(cols: number, rows: number): void {
    if (this.welcomed) this.sendFrame({ type: 'resize', cols, rows });
  }

  /** The sink dropped its backlog (a flood): start a fresh stream, which tmux repaints. */
  redraw(): void {
    if (this.stopped) return;
    this.attempt = 0;
    void this.connect();
  }

  /** Sends a frame on an open socket (the browser logs an error for one that is closing); false when it is not open. */
  private sendFrame(frame: Record<string, unknown>): boolean {
    if (this.socket?.readyState !== OPEN) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  private transmit(entries: InputEntry[]): void {
    for (const entry of entries) {
      if (!this.sendFrame({ type: 'input', data: entry.data, seq: entry.seq, ...(entry.more ? { part: 'more' } : {}) })) return;
      this.input.markSent(entry);
    }
    if (this.acking)
      this.scheduleHeartbeat(); // input now awaits its acknowledgement: pings come sooner
    else this.input.forgetSent();
  }

  /** Sockets opened with this page's origin: ws:// next to http://, wss:// next to https://. */
  private socketUrl(): string {
    const origin = this.options.socketOrigin ?? `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}`;
    const { cols, rows } = this.options.size();
    const query = new URLSearchParams({ cols: String(cols), rows: String(rows), client_id: this.clientId });
    const position = this.options.sink.position;
    if (position !== null) query.set('resume', String(position));
    return `${origin}/api/v1/ws/terminal/${encodeURIComponent(this.options.environmentId)}?${query.toString()}`;
  }

  private async connect(): Promise<void> {
    this.clearRetry();
    if (this.stopped) return;
    const generation = ++this.generation;
    const previous = this.socket;
    this.socket = null;
    this.welcomed = false;
    this.stopTimers();
    if (previous) this.detach(previous, 1000, 'reconnecting');
    this.setState({ kind: 'connecting', attempt: this.attempt });
    let token: string | null;
    try {
      token = await this.options.accessToken();
    } catch {
      if (generation === this.generation) this.scheduleRetry('Cannot reach the server');
      return;
    }
    if (generation !== this.generation || this.stopped) return;
    if (!token) {
      this.setState({ kind: 'disconnected', reason: 'Signed out' });
      return;
    }
    let socket: SocketLike;
    try {
      const url = this.socketUrl();
      const protocols = [PROTOCOL, `bearer.${token}`];
      socket = this.options.createSocket ? this.options.createSocket(url, protocols) : new WebSocket(url, protocols);
    } catch (error) {
      this.setState({ kind: 'disconnected', reason: error instanceof Error ? error.message : String(error) });
      return;
    }
    this.socket = socket;
    this.lastError = null;
    socket.onmessage = (event: MessageEvent) => {
      if (this.socket === socket) this.receive(event.data);
    };
    socket.onclose = (event: CloseEvent) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.closed(event.code, event.reason);
    };
    socket.onerror = () => undefined; // a close event follows
    this.welcomeTimer = setTimeout(() => this.abandon(), WELCOME_TIMEOUT_MS);
  }

  private receive(raw: unknown): void {
    this.keepAlive.heard(Date.now());
    if (typeof raw !== 'string') return;
    let message: unknown;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    if (!message || typeof message !== 'object') return;
    const frame = message as Record<string, unknown>;
    switch (frame.type) {
      case 'welcome':
        this.welcome(frame as unknown as WelcomeMessage);
        break;
      case 'output':
        if (typeof frame.data === 'string' && typeof frame.offset === 'number') {
          const ack = typeof frame.ack === 'number' ? frame.ack : null;
          if (ack !== null) this.acknowledge(ack);
          this.options.onOutput?.(frame.data, frame.offset, ack);
          this.options.sink.write(frame.data, frame.offset);
          this.outputAt(frame.offset);
        }
        break;
      case 'reset':
        if (typeof frame.offset === 'number') {
          this.options.sink.reset(frame.offset);
          this.outputAt(frame.offset);
        }
        break;
      case 'ack':
        if (typeof frame.seq === 'number') {
          this.acknowledge(frame.seq);
          this.options.onAck?.(frame.seq);
        }
        break;
      case 'modes':
        if (typeof frame.offset === 'number') this.options.onModes?.(frame as unknown as ModesMessage);
        break;
      case 'pong': {
        const rtt = this.keepAlive.pong(Date.now());
        if (rtt !== null) this.options.onRoundTrip?.(rtt);
        break;
      }
      case 'status':
        this.options.onStatus?.(frame as unknown as StatusMessage);
        break;
      case 'error':
        if (typeof frame.message === 'string') this.lastError = frame.message;
        break;
      default:
        break; // types a later server may add
    }
  }

  private welcome(message: WelcomeMessage): void {
    if (this.welcomeTimer !== null) clearTimeout(this.welcomeTimer);
    this.welcomeTimer = null;
    this.welcomed = true;
    this.welcomedAt = Date.now();
    this.unauthorizedInARow = 0;
    // A fresh stream (no resume asked, or a new session) starts with a repaint: clear first.
    if (message.session?.resumed !== true) this.options.sink.reset(null);
    this.setState({ kind: 'connected' });
    this.keepAlive.start(Date.now());
    this.reports.start();
    this.scheduleHeartbeat();
    this.options.onWelcome?.(message);
    const written = message.input?.seq;
    // Only a server that tells what it wrote acknowledges input (and understands `received`).
    this.acking = typeof written === 'number' && Number.isSafeInteger(written) && written >= 0;
    if (this.acking) {
      const resend = this.input.resume(written!);
      this.ackedSeq = Math.max(this.ackedSeq, written!);
      this.transmit(resend);
    } else {
      this.transmit(this.input.resumeUnacknowledged());
    }
  }

  private acknowledge(seq: number): void {
    if (seq <= this.ackedSeq) return;
    this.ackedSeq = seq;
    this.input.ack(seq);
  }

  /** Output (or a reset) accepted up to `offset`: report it now or soon. */
  private outputAt(offset: number): void {
    if (!this.acking) return;
    this.reports.output(offset);
    this.report();
  }

  private report(): void {
    if (this.reportTimer !== null || !this.socket || !this.welcomed) return;
    const now = Date.now();
    // xterm.js is behind: let the server's window fill rather than queue more here.
    const processing = this.options.sink.backlog > HIGH_WATER;
    const offset = this.reports.take(now, processing);
    if (offset !== null) this.sendFrame({ type: 'received', offset });
    const next = this.reports.nextIn(now);
    if (next === null) return;
    this.reportTimer = setTimeout(
      () => {
        this.reportTimer = null;
        this.report();
      },
      processing ? REPORT_MS : next,
    );
  }

  private scheduleHeartbeat(): void {
    if (this.heartbeatTimer !== null) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = setTimeout(
      () => {
        this.heartbeatTimer = null;
        this.heartbeat();
      },
      this.keepAlive.nextIn(Date.now(), this.input.awaiting),
    );
  }

  private heartbeat(): void {
    switch (this.keepAlive.due(Date.now(), this.input.awaiting)) {
      case 'ping':
        this.ping();
        break;
      case 'dead':
        this.abandon();
        return;
      case null:
        break;
    }
    if (this.welcomed) this.scheduleHeartbeat();
  }

  private ping(): void {
    if (!this.sendFrame({ type: 'ping' })) return;
    this.keepAlive.pinged(Date.now());
    if (this.welcomed) this.scheduleHeartbeat();
  }

  private closed(code: number, reason: string): void {
    this.stopTimers();
    this.welcomed = false;
    if (this.welcomedAt !== null && Date.now() - this.welcomedAt >= STABLE_AFTER_MS) this.attempt = 0;
    this.welcomedAt = null;
    if (this.stopped) return;
    const why = this.lastError ?? (reason || describeClose(code));
    if (code === 4001) {
      void this.afterUnauthorized(why);
    } else if (code === 4009) {
      this.waitUntilRunning(why);
    } else if (NO_AUTOMATIC_RECONNECT.has(code)) {
      this.input.clear();
      this.setState({ kind: 'disconnected', reason: code === 4029 ? `${why}. Close another terminal, then reconnect.` : why });
    } else {
      this.scheduleRetry(why);
    }
  }

  /** 4001: never reconnect with the same token. Refresh it first; a refused refresh signs out. */
  private async afterUnauthorized(why: string): Promise<void> {
    this.unauthorizedInARow += 1;
    if (this.unauthorizedInARow > 2) {
      this.input.clear();
      this.setState({ kind: 'disconnected', reason: why });
      return;
    }
    this.setState({ kind: 'connecting', attempt: this.attempt });
    const outcome = await this.options.refresh();
    if (this.stopped) return;
    if (outcome === 'refreshed') void this.connect();
    else if (outcome === 'unreachable') this.scheduleRetry(why);
    else {
      this.input.clear();
      this.setState({ kind: 'disconnected', reason: `${why}. Sign in again.` });
    }
  }

  /** 4009: the environment stopped (or never ran): reconnect once it runs again. */
  private waitUntilRunning(why: string): void {
    this.input.clear();
    this.setState({ kind: 'waiting', reason: why });
    this.waiting?.abort();
    const waiting = new AbortController();
    this.waiting = waiting;
    this.options.untilRunning(waiting.signal).then(
      () => {
        if (this.waiting !== waiting || this.stopped) return;
        this.waiting = null;
        this.attempt = 0;
        void this.connect();
      },
      (error: unknown) => {
        if (this.waiting !== waiting || this.stopped || waiting.signal.aborted) return;
        this.waiting = null;
        this.setState({ kind: 'disconnected', reason: error instanceof Error ? error.message : String(error) });
      },
    );
  }

  /** Reconnects at once after a drop, then with a short back-off (reconnecting is shown meanwhile). */
  private scheduleRetry(why: string): void {
    this.clearRetry();
    const online = this.options.online ? this.options.online() : typeof navigator === 'undefined' || navigator.onLine !== false;
    const delay = retryDelay(this.attempt, online);
    this.attempt += 1;
    this.setState({ kind: 'reconnecting', attempt: this.attempt, retryAt: Date.now() + delay, reason: why });
    if (delay === 0) {
      void this.connect();
      return;
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.connect();
    }, delay);
  }

  private clearRetry(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private stopTimers(): void {
    if (this.heartbeatTimer !== null) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = null;
    if (this.reportTimer !== null) clearTimeout(this.reportTimer);
    this.reportTimer = null;
    if (this.welcomeTimer !== null) clearTimeout(this.welcomeTimer);
    this.welcomeTimer = null;
  }

  /** A socket that stopped answering: forget it (its close event may take minutes) and reconnect. */
  private abandon(): void {
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    this.detach(socket, CLIENT_TIMEOUT, 'no answer');
    this.closed(CLIENT_TIMEOUT, '');
  }

  private detach(socket: SocketLike, code: number, reason: string): void {
    socket.onmessage = null;
    socket.onclose = null;
    socket.onerror = null;
    try {
      socket.close(code, reason);
    } catch {
      // already closed
    }
  }

  private setState(state: ConnectionState): void {
    this.state = state;
    this.options.onState(state);
  }
}
