import { WebSocket } from 'ws';
import { eventually } from './eventually.js';

export interface ServerFrame {
  type: string;
  data?: string;
  offset?: number;
  message?: string;
  [key: string]: unknown;
}

export interface ConnectOptions {
  /** Put the token in the query string (the mobile client's way). */
  token?: string;
  resume?: number;
  headers?: Record<string, string>;
  protocols?: string[];
  query?: Record<string, string>;
}

/**
 * A terminal client for tests: records every frame, rebuilds the session's output stream from the
 * output frames and their offsets (counting gaps, where a redraw skipped ahead), and closes cleanly.
 */
export class TerminalTestClient {
  readonly frames: ServerFrame[] = [];
  /** Every `output` data, in order (what a terminal would render). */
  screen = '';
  /** The session stream as this client received it, from `streamStart` to `offset`. */
  stream = '';
  streamStart: number | null = null;
  offset = 0;
  readonly closed: Promise<{ code: number; reason: string }>;

  /** Output frames that did not continue the stream where the previous one ended (a redraw after a gap). */
  gaps = 0;

  private constructor(
    readonly socket: WebSocket,
    resume: number | null,
  ) {
    if (resume !== null) {
      this.streamStart = resume;
      this.offset = resume;
    }
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) throw new Error('the server sent a binary frame');
      const frame = JSON.parse(data.toString('utf8')) as ServerFrame;
      this.frames.push(frame);
      if (frame.type === 'output' && typeof frame.data === 'string' && typeof frame.offset === 'number') {
        this.screen += frame.data;
        const begins = frame.offset - Buffer.byteLength(frame.data);
        if (this.streamStart === null) this.streamStart = begins;
        else if (begins !== this.offset) this.gaps += 1;
        this.stream += frame.data;
        this.offset = frame.offset;
      }
    });
    this.closed = new Promise((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static async connect(baseUrl: string, environmentId: string, options: ConnectOptions = {}): Promise<TerminalTestClient> {
    const query = new URLSearchParams(options.query);
    if (options.token) query.set('token', options.token);
    if (options.resume !== undefined) query.set('resume', String(options.resume));
    const url = `${baseUrl.replace(/^http/, 'ws')}/api/v1/ws/terminal/${environmentId}${query.size > 0 ? `?${query.toString()}` : ''}`;
    const socket = new WebSocket(url, options.protocols ?? [], { headers: options.headers });
    const client = new TerminalTestClient(socket, options.resume ?? null);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
      socket.once('close', () => resolve());
    });
    return client;
  }

  /** Connects and waits for `welcome` (`track` gets the client first, so that whoever cleans up closes it even if no welcome comes). */
  static async welcomed(
    baseUrl: string,
    environmentId: string,
    options: ConnectOptions = {},
    track: (client: TerminalTestClient) => void = () => undefined,
  ): Promise<TerminalTestClient> {
    const client = await TerminalTestClient.connect(baseUrl, environmentId, options);
    track(client);
    await client.waitForFrame((f) => f.type === 'welcome', 20_000);
    return client;
  }

  send(frame: unknown): void {
    this.socket.send(JSON.stringify(frame));
  }

  input(data: string): void {
    this.send({ type: 'input', data });
  }

  resize(cols: number, rows: number): void {
    this.send({ type: 'resize', cols, rows });
  }

  /** Types a command line and presses Enter. */
  run(command: string): void {
    this.input(`${command}\r`);
  }

  /**
   * Runs `command` (again every second) until `pattern` is on the screen: for what reaches the
   * shell a moment after the keys that follow it, such as a resize (on Kubernetes, exec applies it
   * on a channel of its own, beside the input).
   */
  runUntil(command: string, pattern: RegExp, timeoutMs = 10_000): Promise<void> {
    return eventually(async () => {
      this.run(command);
      await this.waitForScreen(pattern, 1_000);
    }, timeoutMs);
  }

  waitForFrame(predicate: (frame: ServerFrame) => boolean, timeoutMs = 10_000): Promise<ServerFrame> {
    return eventually(
      () => {
        const found = this.frames.find(predicate);
        if (!found) throw new Error(`no matching frame among ${this.frames.length}: ${JSON.stringify(this.frames.slice(-3))}`);
        return found;
      },
      timeoutMs,
      20,
    );
  }

  waitForScreen(pattern: RegExp, timeoutMs = 10_000): Promise<void> {
    return eventually(
      () => {
        if (!pattern.test(this.screen))
          throw new Error(`${pattern} not on screen; last output: ${JSON.stringify(this.screen.slice(-300))}`);
      },
      timeoutMs,
      20,
    );
  }

  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) this.socket.close();
    await this.closed;
  }
}
