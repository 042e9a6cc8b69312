import type { RefreshOutcome } from '../auth/session.js';
import { closeQuietly, openApiSocket, reconnectDelay } from '../api/socket.js';

/**
 * Follows an environment's log over `/api/v1/ws/logs/{id}?lines=N` (docs/environments.md#websocket-apiv1wslogsid),
 * authenticated with the subprotocol `bearer.<token>`. Reconnects after 1001, 4010, 4500 and
 * drops, with a back-off; after 4001 once the token is refreshed; not after 4004 or 4009. A
 * reconnection receives the newest lines again: those not newer than the last one shown are
 * skipped (lines start with an ISO timestamp).
 */

export type LogsState =
  { kind: 'connecting' } | { kind: 'following' } | { kind: 'reconnecting'; reason: string } | { kind: 'closed'; reason: string };

export interface LogsOptions {
  environmentId: string;
  lines: number;
  accessToken(): Promise<string | null>;
  refresh(): Promise<RefreshOutcome>;
  onLine(line: string): void;
  onState(state: LogsState): void;
}

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)\s/;

export class LogsFollower {
  private socket: WebSocket | null = null;
  private stopped = false;
  private attempt = 0;
  private unauthorizedInARow = 0;
  private timer: number | null = null;
  private lastError: string | null = null;
  /** The last timestamp shown, and the lines shown with it (several lines may share one). */
  private lastStamp: string | null = null;
  private linesAtLastStamp = new Set<string>();
  private lastLine: string | null = null;
  private skipping = false;

  constructor(private readonly options: LogsOptions) {}

  start(): void {
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) window.clearTimeout(this.timer);
    closeQuietly(this.socket);
    this.socket = null;
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    this.options.onState({ kind: 'connecting' });
    let token: string | null;
    try {
      token = await this.options.accessToken();
    } catch {
      this.retry('Cannot reach the server');
      return;
    }
    if (this.stopped) return;
    if (!token) {
      this.options.onState({ kind: 'closed', reason: 'Signed out' });
      return;
    }
    const socket = openApiSocket(`/api/v1/ws/logs/${encodeURIComponent(this.options.environmentId)}?lines=${this.options.lines}`, token);
    this.socket = socket;
    this.lastError = null;
    this.skipping = this.lastLine !== null;
    socket.onopen = () => {
      this.attempt = 0;
      this.options.onState({ kind: 'following' });
    };
    socket.onmessage = (event: MessageEvent) => {
      if (this.socket !== socket || typeof event.data !== 'string') return;
      let message: { type?: unknown; line?: unknown; message?: unknown };
      try {
        message = JSON.parse(event.data) as typeof message;
      } catch {
        return;
      }
      if (message.type === 'log' && typeof message.line === 'string') this.line(message.line);
      else if (message.type === 'error' && typeof message.message === 'string') this.lastError = message.message;
    };
    socket.onclose = (event: CloseEvent) => {
      if (this.socket !== socket) return;
      this.socket = null;
      void this.closed(event.code, this.lastError ?? event.reason);
    };
  }

  private line(line: string): void {
    const stamp = TIMESTAMP.exec(line)?.[1] ?? null;
    if (this.skipping) {
      const older = stamp !== null && this.lastStamp !== null && stamp < this.lastStamp;
      const seen = stamp !== null && stamp === this.lastStamp ? this.linesAtLastStamp.has(line) : stamp === null && line === this.lastLine;
      if (older || seen) return;
      this.skipping = false;
    }
    if (stamp !== null && stamp !== this.lastStamp) {
      this.lastStamp = stamp;
      this.linesAtLastStamp = new Set();
    }
    if (stamp !== null) this.linesAtLastStamp.add(line);
    this.lastLine = line;
    this.options.onLine(line);
  }

  private async closed(code: number, reason: string): Promise<void> {
    if (this.stopped) return;
    if (code === 4004 || code === 4009) {
      this.options.onState({ kind: 'closed', reason: reason || (code === 4004 ? 'Environment not found' : 'The environment was deleted') });
      return;
    }
    if (code === 4001) {
      this.unauthorizedInARow += 1;
      const outcome = this.unauthorizedInARow > 2 ? 'signed-out' : await this.options.refresh();
      if (outcome === 'signed-out') {
        this.options.onState({ kind: 'closed', reason: `${reason || 'Not signed in'}. Sign in again.` });
        return;
      }
      if (outcome === 'refreshed') {
        void this.connect();
        return;
      }
    } else {
      this.unauthorizedInARow = 0;
    }
    this.retry(reason || `The connection closed (code ${code})`);
  }

  private retry(reason: string): void {
    if (this.stopped) return;
    const delay = reconnectDelay(this.attempt);
    this.attempt += 1;
    this.options.onState({ kind: 'reconnecting', reason });
    this.timer = window.setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, delay);
  }
}
