import type { ApiClient } from '../api/client.js';
import type { Environment } from '../api/types.js';
import type { Session } from '../auth/session.js';
import { closeQuietly, openApiSocket, reconnectDelay } from '../api/socket.js';
import { EnvironmentsStore } from './source.js';

/** What the status socket sends (docs/status-websocket.md). */
type StatusMessage =
  | { type: 'snapshot'; environments: Environment[] }
  | { type: 'environment'; event: 'created' | 'updated'; environment: Environment }
  | { type: 'deleted'; id: string }
  | { type: 'error'; message: string; code: number };

/**
 * The caller's environments from the status WebSocket `/api/v1/ws/environments`, open while a
 * view listens: its snapshot replaces the list, each `environment` message replaces one entry.
 * While the socket is down, nothing is polled but one `GET /environments` per reconnection
 * attempt, so the list stays right even when the socket cannot open (a proxy that refuses
 * upgrades). Reconnects with a back-off after drops; after 4001 once the token is refreshed; stops
 * when the session is signed out.
 */
export class LiveEnvironmentsSource extends EnvironmentsStore {
  private socket: WebSocket | null = null;
  /** True from the socket's snapshot until it closes: the list is then current at every moment. */
  private live = false;
  private attempt = 0;
  private unauthorizedInARow = 0;
  private timer: number | null = null;

  constructor(
    private readonly api: ApiClient,
    private readonly session: Session,
  ) {
    super();
    document.addEventListener('visibilitychange', () => {
      // A phone that slept may have had its socket cut without a close event: try at once.
      if (document.visibilityState === 'visible' && this.listening && !this.live && this.timer !== null) this.reconnectNow();
    });
  }

  /** A fresh list over REST, unless the socket already keeps the list current. */
  refresh(): Promise<void> {
    return this.live ? Promise.resolve() : this.fetchOnce(this.api);
  }

  protected isCurrent(since: number): boolean {
    return this.live || (this.snapshot.updatedAt !== null && this.snapshot.updatedAt.getTime() >= since);
  }

  protected activate(): void {
    this.attempt = 0;
    void this.connect();
  }

  protected deactivate(): void {
    this.clearTimer();
    this.live = false;
    closeQuietly(this.socket);
    this.socket = null;
  }

  private async connect(): Promise<void> {
    if (!this.listening || this.socket) return;
    let token: string | null;
    try {
      token = await this.session.accessToken();
    } catch {
      this.retry();
      return;
    }
    if (!this.listening || this.socket) return;
    if (!token) return;
    const socket = openApiSocket('/api/v1/ws/environments', token);
    this.socket = socket;
    socket.onmessage = (event: MessageEvent) => {
      if (this.socket !== socket || typeof event.data !== 'string') return;
      let message: StatusMessage;
      try {
        message = JSON.parse(event.data) as StatusMessage;
      } catch {
        return;
      }
      this.receive(message);
    };
    socket.onclose = (event: CloseEvent) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.live = false;
      this.publish({ ...this.snapshot, live: false });
      void this.closed(event.code);
    };
  }

  private receive(message: StatusMessage): void {
    const now = new Date();
    switch (message.type) {
      case 'snapshot':
        this.live = true;
        this.attempt = 0;
        this.unauthorizedInARow = 0;
        this.publish({ environments: message.environments, error: null, updatedAt: now, live: true });
        return;
      case 'environment':
        this.upsert(message.environment);
        return;
      case 'deleted':
        // The list keeps a terminated environment's card until the next snapshot, as `GET /environments` would.
        return;
      case 'error':
        // Followed by the close, whose code says what to do.
        return;
    }
  }

  private async closed(code: number): Promise<void> {
    if (!this.listening) return;
    if (code === 4001) {
      this.unauthorizedInARow += 1;
      const outcome = this.unauthorizedInARow > 2 ? 'signed-out' : await this.session.refresh();
      // A refused refresh signs the session out: the console leaves this view.
      if (outcome === 'signed-out') return;
      if (outcome === 'refreshed') return void this.connect();
    }
    this.retry();
  }

  /** Polls once (the fallback while the socket is down), then reconnects after a back-off. */
  private retry(): void {
    if (!this.listening) return;
    void this.fetchOnce(this.api);
    const delay = reconnectDelay(this.attempt);
    this.attempt += 1;
    this.clearTimer();
    this.timer = window.setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, delay);
  }

  private reconnectNow(): void {
    this.clearTimer();
    void this.connect();
  }

  private clearTimer(): void {
    if (this.timer !== null) window.clearTimeout(this.timer);
    this.timer = null;
  }
}
