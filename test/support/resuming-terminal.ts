import { WebSocket } from 'ws';

import { eventually } from './eventually.js';
import type { ServerFrame } from './terminal-client.js';

/** Close codes after which a client gives up instead of reconnecting (docs/terminal.md#a-client-that-resumes). */
const FINAL_CLOSE_CODES = new Set([1000, 4004, 4008, 4009, 4029]);

/** How one connection after the first went. */
export interface Reconnection {
  /** The code that ended the previous connection (1001: the replica shut down; 1006: it vanished). */
  closedWith: number;
  /** The position the client asked to resume from. */
  resumeFrom: number | null;
  /** The connection got its `welcome` (attempts refused before that are listed too). */
  welcomed: boolean;
  /** `welcome.session.resumed`. */
  resumed: boolean;
  /** A `reset` came (the bytes were not held there: a redraw follows), as opposed to an exact resume. */
  reset: boolean;
  /** Without a reset: whether the first output after the welcome began exactly at `resumeFrom` (null: none yet). */
  continued: boolean | null;
}

/**
 * A terminal client that behaves like docs/terminal.md's "client that resumes": it tracks its
 * position, reconnects after every close that is not final, to a URL asked afresh each time (so a
 * Service can send it elsewhere), with `?resume=<position>`, and keeps what is typed while it is
 * disconnected, sending it in order once the next connection is welcomed: nothing typed is dropped
 * by the client.
 */
export class ResumingTerminal {
  /** Every output's data, across connections, in order (redraws included). */
  screen = '';
  position: number | null = null;
  readonly reconnections: Reconnection[] = [];
  private socket: WebSocket | null = null;
  private welcomed = false;
  private readonly pending: string[] = [];
  private closedByUs = false;
  private current: Reconnection | null = null;

  private constructor(private readonly url: (resume: number | null) => Promise<string>) {}

  /** Opens the first connection and waits for its `welcome`. */
  static async open(url: (resume: number | null) => Promise<string>): Promise<ResumingTerminal> {
    const terminal = new ResumingTerminal(url);
    await terminal.connect();
    await terminal.waitUntilConnected();
    return terminal;
  }

  get connected(): boolean {
    return this.welcomed && this.socket?.readyState === WebSocket.OPEN;
  }

  /** Sends now when connected, otherwise once the next connection is welcomed. */
  input(data: string): void {
    this.pending.push(data);
    this.flush();
  }

  run(command: string): void {
    this.input(`${command}\r`);
  }

  waitUntilConnected(timeoutMs = 30_000): Promise<void> {
    return eventually(
      () => {
        if (!this.connected) throw new Error(`not connected (${String(this.reconnections.length)} reconnections)`);
      },
      timeoutMs,
      20,
    );
  }

  /** Waits for `pattern` in the output received after `mark` (a length of {@link screen}); returns its match. */
  waitForOutput(pattern: RegExp, mark = 0, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    return eventually(
      () => {
        const match = this.screen.slice(mark).match(pattern);
        if (match === null) throw new Error(`${String(pattern)} not in the output; its end: ${JSON.stringify(this.screen.slice(-300))}`);
        return match;
      },
      timeoutMs,
      20,
    );
  }

  async close(): Promise<void> {
    this.closedByUs = true;
    const socket = this.socket;
    if (socket === null || socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.close(1000);
    });
  }

  private async connect(): Promise<void> {
    const socket = new WebSocket(await this.url(this.position));
    this.socket = socket;
    this.welcomed = false;
    socket.on('message', (data: Buffer) => this.receive(JSON.parse(data.toString('utf8')) as ServerFrame));
    socket.once('close', (code) => {
      if (this.closedByUs || FINAL_CLOSE_CODES.has(code)) return;
      this.current = { closedWith: code, resumeFrom: this.position, welcomed: false, resumed: false, reset: false, continued: null };
      this.reconnections.push(this.current);
      setTimeout(() => void this.connect().catch(() => this.retryLater()), 100);
    });
    socket.once('error', () => undefined);
  }

  private retryLater(): void {
    if (!this.closedByUs) setTimeout(() => void this.connect().catch(() => this.retryLater()), 500);
  }

  private receive(frame: ServerFrame): void {
    switch (frame.type) {
      case 'welcome': {
        const session = frame.session as { resumed?: boolean } | undefined;
        if (this.current !== null) {
          this.current.welcomed = true;
          this.current.resumed = session?.resumed === true;
        }
        this.welcomed = true;
        this.flush();
        break;
      }
      case 'output':
        if (this.current?.welcomed === true && !this.current.reset && this.current.continued === null && frame.offset !== undefined) {
          this.current.continued = frame.offset - Buffer.byteLength(frame.data ?? '') === this.current.resumeFrom;
        }
        this.screen += frame.data ?? '';
        this.position = frame.offset ?? this.position;
        break;
      case 'reset':
        if (this.current !== null) this.current.reset = true;
        this.position = frame.offset ?? this.position;
        break;
      default:
        break;
    }
  }

  private flush(): void {
    while (this.pending.length > 0 && this.connected) this.socket!.send(JSON.stringify({ type: 'input', data: this.pending.shift() }));
  }
}
