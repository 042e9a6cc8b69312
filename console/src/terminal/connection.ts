import type { RefreshOutcome } from '../auth/session.js';
import { splitInput } from './keys.js';
import type { OutputSink } from './output-sink.js';

/**
 * The terminal WebSocket, as docs/terminal.md describes it for a client that resumes:
 *
 * - authenticates with the subprotocols `['devpocket.v1', 'bearer.<access token>']`, so the
 *   token is neither in the URL nor echoed back;
 * - keeps its position in the session's output stream (the OutputSink's `position`) and
 *   reconnects with `?resume=<position>`: the server sends exactly the missed bytes, or `reset`
 *   and a repaint when they are gone;
 * - reconnects with a back-off (1 s doubling to 30 s, with jitter) for as long as the page is
 *   open, at once when the device comes back online; after 4001 only once the token has been
 *   refreshed; after 4009 once the environment runs again; never by itself after 4004, 4008,
 *   4029 or a refused frame (1002, 1003, 1007, 1009);
 * - holds what is typed while it is not connected and sends it, in order, after the next
 *   `welcome`;
 * - pings when the server has been silent for a while, and gives up on a socket that does not
 *   answer (a phone that changed networks keeps a dead socket "open" for minutes).
 */

export type ConnectionState =
  | { kind: 'connecting'; attempt: number }
  | { kind: 'connected' }
  | { kind: 'reconnecting'; attempt: number; retryAt: number; reason: string }
  | { kind: 'waiting'; reason: string }
  | { kind: 'disconnected'; reason: string };

export interface StatusMessage {
  type: 'status';
  status: string;
  phase: string;
  message: string | null;
}

export interface WelcomeMessage {
  type: 'welcome';
  message: string;
  environment?: { id: string; name: string; template: string; status: string };
  session?: { name: string; offset: number; cols: number; rows: number; resumed: boolean };
}

export interface ConnectionOptions {
  environmentId: string;
  sink: OutputSink;
  /** A valid access token (refreshed when about to expire), null when signed out; throws when the server cannot be reached. */
  accessToken(): Promise<string | null>;
  refresh(): Promise<RefreshOutcome>;
  /** Resolves once the environment runs again (after 4009). */
  untilRunning(signal: AbortSignal): Promise<unknown>;
  size(): { cols: number; rows: number };
  onState(state: ConnectionState): void;
  onStatus?(message: StatusMessage): void;
  onWelcome?(message: WelcomeMessage): void;
  /** The origin of the WebSocket, e.g. `wss://example.com`; default: this page's. */
  socketOrigin?: string;
}

const OPEN = 1;
/** Subprotocol offered next to the token, so the server echoes this one and not the token. */
export const PROTOCOL = 'devpocket.v1';
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;
/** Ping after this much silence; give the socket up when the ping has had no answer for this long. */
const PING_AFTER_MS = 10_000;
const PONG_TIMEOUT_MS = 15_000;
const MAX_HELD_INPUT = 1024 * 1024;
/** Our own close code for a socket given up for silence (never sent by the server). */
export const CLIENT_TIMEOUT = 4000;

const NO_AUTOMATIC_RECONNECT = new Set([1002, 1003, 1007, 1009, 4004, 4008, 4029]);

export function describeClose(code: number): string {
  switch (code) {
    case 1000:
      return 'The connection was closed';
    case 1001:
      return 'The server is restarting';
    case 1006:
      return 'The connection dropped';
    case 1009:
      return 'The server refused a frame that was too large';
    case CLIENT_TIMEOUT:
      return 'No answer from the server';
    case 4001:
      return 'Not signed in';
    case 4004:
      return 'Environment not found';
    case 4008:
      return 'The server closed the connection for invalid messages';
    case 4009:
      return 'The environment is not running';
    case 4010:
      return 'The server heard nothing from this device';
    case 4029:
      return 'Too many terminal connections';
    case 4500:
      return 'The terminal failed on the server';
    default:
      return `The connection closed (code ${code})`;
  }
}

export class TerminalConnection {
  private socket: WebSocket | null = null;
  private welcomed = false;
  private generation = 0;
  private attempt = 0;
  private unauthorizedInARow = 0;
  private retryTimer: number | null = null;
  private heartbeatTimer: number | null = null;
  private lastHeardAt = 0;
  private pingSentAt: number | null = null;
  private lastError: string | null = null;
  private waiting: AbortController | null = null;
  private stopped = false;
  private readonly heldInput: string[] = [];
  private heldChars = 0;
  state: ConnectionState = { kind: 'connecting', attempt: 0 };

  constructor(private readonly options: ConnectionOptions) {}

  start(): void {
    void this.connect();
  }

  /** Closes for good (the page or view goes away). */
  stop(): void {
    this.stopped = true;
    this.clearRetry();
    this.stopHeartbeat();
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
   * a ping, and skip the rest of a back-off. Does not undo a decision not to reconnect.
   */
  nudge(): void {
    if (this.stopped) return;
    if (this.state.kind === 'connected') this.ping();
    else if (this.state.kind === 'reconnecting') void this.connect();
  }

  /** Keystrokes and pastes: sent now, or held until the next welcome while (re)connecting. */
  sendInput(data: string): void {
    if (this.socket && this.welcomed && this.socket.readyState === OPEN) {
      for (const piece of splitInput(data)) this.socket.send(JSON.stringify({ type: 'input', data: piece }));
      return;
    }
    // Not (or no longer) open: hold it for the next connection, unless none is coming by itself.
    if (this.state.kind === 'waiting' || this.state.kind === 'disconnected') return;
    if (this.heldChars + data.length > MAX_HELD_INPUT) return;
    this.heldInput.push(data);
    this.heldChars += data.length;
  }

  sendResize(cols: number, rows: number): void {
    if (this.socket && this.welcomed && this.socket.readyState === OPEN) this.socket.send(JSON.stringify({ type: 'resize', cols, rows }));
  }

  /** Sockets opened with this page's origin: ws:// next to http://, wss:// next to https://. */
  private socketUrl(): string {
    const origin = this.options.socketOrigin ?? `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}`;
    const { cols, rows } = this.options.size();
    const query = new URLSearchParams({ cols: String(cols), rows: String(rows) });
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
    let socket: WebSocket;
    try {
      const url = this.socketUrl();
      const protocols = [PROTOCOL, `bearer.${token}`];
      socket = new WebSocket(url, protocols);
    } catch (error) {
      this.setState({ kind: 'disconnected', reason: error instanceof Error ? error.message : String(error) });
      return;
    }
    this.socket = socket;
    this.welcomed = false;
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
  }

  private receive(raw: unknown): void {
    this.lastHeardAt = Date.now();
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
        this.welcomed = true;
        this.attempt = 0;
        this.unauthorizedInARow = 0;
        // A fresh stream (no resume asked, or a new session) starts with a repaint: clear first.
        if ((frame as unknown as WelcomeMessage).session?.resumed !== true) this.options.sink.reset(null);
        this.setState({ kind: 'connected' });
        this.startHeartbeat();
        this.options.onWelcome?.(frame as unknown as WelcomeMessage);
        this.flushHeldInput();
        break;
      case 'output':
        if (typeof frame.data === 'string' && typeof frame.offset === 'number') this.options.sink.write(frame.data, frame.offset);
        break;
      case 'reset':
        if (typeof frame.offset === 'number') this.options.sink.reset(frame.offset);
        break;
      case 'status':
        this.options.onStatus?.(frame as unknown as StatusMessage);
        break;
      case 'error':
        if (typeof frame.message === 'string') this.lastError = frame.message;
        break;
      default:
        break; // pong, and types a later server may add
    }
  }

  private flushHeldInput(): void {
    const held = this.heldInput.splice(0);
    this.heldChars = 0;
    for (const data of held) this.sendInput(data);
  }

  /** The sink dropped its backlog (a flood): start a fresh stream, which tmux repaints. */
  redraw(): void {
    if (this.stopped) return;
    this.attempt = 0;
    void this.connect();
  }

  private closed(code: number, reason: string): void {
    this.stopHeartbeat();
    this.welcomed = false;
    if (this.stopped) return;
    const why = this.lastError ?? (reason || describeClose(code));
    if (code === 4001) {
      void this.afterUnauthorized(why);
    } else if (code === 4009) {
      this.waitUntilRunning(why);
    } else if (NO_AUTOMATIC_RECONNECT.has(code)) {
      this.dropHeldInput();
      this.setState({ kind: 'disconnected', reason: code === 4029 ? `${why}. Close another terminal, then reconnect.` : why });
    } else {
      this.scheduleRetry(why);
    }
  }

  /** 4001: never reconnect with the same token. Refresh it first; a refused refresh signs out. */
  private async afterUnauthorized(why: string): Promise<void> {
    this.unauthorizedInARow += 1;
    if (this.unauthorizedInARow > 2) {
      this.dropHeldInput();
      this.setState({ kind: 'disconnected', reason: why });
      return;
    }
    this.setState({ kind: 'connecting', attempt: this.attempt });
    const outcome = await this.options.refresh();
    if (this.stopped) return;
    if (outcome === 'refreshed') void this.connect();
    else if (outcome === 'unreachable') this.scheduleRetry(why);
    else {
      this.dropHeldInput();
      this.setState({ kind: 'disconnected', reason: `${why}. Sign in again.` });
    }
  }

  /** 4009: the environment stopped (or never ran): reconnect once it runs again. */
  private waitUntilRunning(why: string): void {
    this.dropHeldInput();
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

  private scheduleRetry(why: string): void {
    this.clearRetry();
    const base = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.min(this.attempt, 10));
    const delay = Math.round(base * (0.8 + 0.4 * Math.random()));
    this.attempt += 1;
    this.setState({ kind: 'reconnecting', attempt: this.attempt, retryAt: Date.now() + delay, reason: why });
    this.retryTimer = window.setTimeout(() => {
      this.retryTimer = null;
      void this.connect();
    }, delay);
  }

  private clearRetry(): void {
    if (this.retryTimer !== null) window.clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    this.lastHeardAt = Date.now();
    this.pingSentAt = null;
    this.heartbeatTimer = window.setInterval(() => {
      const now = Date.now();
      // Only a ping left unanswered counts: a hidden page's timers run late, a quiet shell is normal.
      if (this.pingSentAt !== null && this.lastHeardAt < this.pingSentAt) {
        if (now - this.pingSentAt >= PONG_TIMEOUT_MS) this.abandon();
        return;
      }
      if (now - this.lastHeardAt >= PING_AFTER_MS) this.ping();
    }, PING_AFTER_MS / 2);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer !== null) window.clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private ping(): void {
    if (this.socket?.readyState !== OPEN) return;
    this.socket.send(JSON.stringify({ type: 'ping' }));
    if (this.pingSentAt === null || this.lastHeardAt >= this.pingSentAt) this.pingSentAt = Date.now();
  }

  /** A socket that stopped answering: forget it (its close event may take minutes) and reconnect. */
  private abandon(): void {
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    this.detach(socket, CLIENT_TIMEOUT, 'no answer');
    this.closed(CLIENT_TIMEOUT, '');
  }

  private detach(socket: WebSocket, code: number, reason: string): void {
    socket.onmessage = null;
    socket.onclose = null;
    socket.onerror = null;
    try {
      socket.close(code, reason);
    } catch {
      // already closed
    }
  }

  private dropHeldInput(): void {
    this.heldInput.length = 0;
    this.heldChars = 0;
  }

  private setState(state: ConnectionState): void {
    this.state = state;
    this.options.onState(state);
  }
}
