import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as Headless from '@xterm/headless';
import { WebSocket } from 'ws';
import type { Overlay, PredictionCounters, TerminalModes as Modes } from '../../console/src/terminal/prediction/types.js';
import type { FlakyLink } from '../../test/support/flaky-link/flaky-link.js';
import { REPO_ROOT } from './server.js';

/**
 * The console's terminal client, run in the bench process through the flaky link: the console's
 * own TerminalConnection, OutputSink and PredictionEngine (console/src/terminal/), wired as
 * console/src/views/terminal-view.ts and prediction/predictor.ts wire them, over an
 * `@xterm/headless` terminal instead of xterm.js.
 *
 * The console's modules are loaded at run time (tsx compiles them): they are type-checked by
 * console/tsconfig.json, with the DOM library, which the server's tsconfig (this bench's) does
 * not have (console/src/terminal/prediction/types.ts reaches the DOM's `window` through
 * connection-types.ts and auth/session.ts). What the bench uses of them is declared here. The socket is `ws`'s WebSocket (the
 * same protocol as the browser's: subprotocols `devpocket.v1` and `bearer.<token>`), opened
 * through the link's current port (a roam changes it).
 */

const require = createRequire(import.meta.url);
const { Terminal } = require('@xterm/headless') as typeof Headless;
export type HeadlessTerminal = Headless.Terminal;

export type { Overlay, PredictionCounters, TerminalModes as Modes } from '../../console/src/terminal/prediction/types.js';

interface Engine {
  readonly counters: PredictionCounters;
  readonly rttMs: number | null;
  keystroke(data: string, seq: number, now: number): void;
  output(data: string, ack: number | null, now: number): void;
  drawn(data: string, now: number): void;
  modes(modes: Modes): void;
  rtt(ms: number): void;
  tick(now: number): void;
  nextDeadline(): number | null;
  reset(): void;
  overlay(): Overlay;
}

interface TerminalTarget {
  write(data: string, parsed: () => void): void;
  reset(): void;
}

interface Sink {
  position: number | null;
  resets: number;
  write(data: string, offset: number): void;
  reset(offset: number | null): void;
}

export interface ConnectionState {
  kind: 'connecting' | 'connected' | 'reconnecting' | 'waiting' | 'disconnected';
  reason?: string;
}

interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

type Handler = ((event: never) => void) | null;

/**
 * A socket opened once `ready` settles (a roam: the phone's new network is up, the link's new port
 * known); until then it is connecting, as a socket whose SYN waits for the network would be.
 */
class DeferredSocket implements SocketLike {
  onmessage: Handler = null;
  onclose: Handler = null;
  onerror: Handler = null;
  private socket: WebSocket | null = null;
  private closed = false;

  constructor(ready: Promise<unknown>, open: () => WebSocket) {
    const start = (): void => {
      if (this.closed) return;
      const socket = open();
      this.socket = socket;
      socket.onmessage = (event) => (this.onmessage as ((event: unknown) => void) | null)?.(event);
      socket.onclose = (event) => (this.onclose as ((event: unknown) => void) | null)?.(event);
      socket.onerror = (event) => (this.onerror as ((event: unknown) => void) | null)?.(event);
    };
    void ready.then(start, start);
  }

  get readyState(): number {
    return this.socket ? this.socket.readyState : this.closed ? WebSocket.CLOSED : WebSocket.CONNECTING;
  }

  send(data: string): void {
    this.socket?.send(data);
  }

  close(code?: number, reason?: string): void {
    this.closed = true;
    this.socket?.close(code, reason);
  }
}

interface Connection {
  state: ConnectionState;
  readonly acknowledged: number;
  start(): void;
  stop(): void;
  send(data: string): number | null;
  redraw(): void;
}

interface ConsoleModules {
  PredictionEngine: new (screen: HeadlessTerminal, options?: object) => Engine;
  OutputSink: new (target: TerminalTarget, onOverflow: () => void) => Sink;
  TerminalConnection: new (options: Record<string, unknown>) => Connection;
}

const CONSOLE_TERMINAL = join(REPO_ROOT, 'console', 'src', 'terminal');

let modules: Promise<ConsoleModules> | null = null;

/** The console's modules, loaded once. */
function consoleModules(): Promise<ConsoleModules> {
  const load = async (path: string): Promise<Record<string, unknown>> =>
    (await import(pathToFileURL(join(CONSOLE_TERMINAL, path)).href)) as Record<string, unknown>;
  modules ??= Promise.all([load('prediction/engine.ts'), load('output-sink.ts'), load('connection.ts')]).then(
    ([engine, sink, connection]) =>
      ({
        PredictionEngine: engine.PredictionEngine,
        OutputSink: sink.OutputSink,
        TerminalConnection: connection.TerminalConnection,
      }) as ConsoleModules,
  );
  return modules;
}

export interface ConsoleClientOptions {
  link: FlakyLink;
  environmentId: string;
  token: string;
  cols: number;
  rows: number;
  /**
   * The cursor's row and the one above it, as text, each time the terminal has parsed a piece of
   * output (a rendering of a fast stream scrolls rows away between frames): the output is then
   * handed to the terminal in pieces that end before each CR and after each LF (the same bytes,
   * in order).
   */
  onRow?(text: string): void;
}

/** What a bench hears of the client; every callback gets `performance.now()`. */
export interface ClientEvents {
  /** An output frame, before the sink. */
  output?(data: string, offset: number, ack: number | null, at: number): void;
  /** Output parsed by the headless terminal (and handed to the engine). */
  drawn?(data: string, at: number): void;
  ack?(seq: number, at: number): void;
  modes?(modes: Modes, at: number): void;
  state?(state: ConnectionState, at: number): void;
  /** The terminal was cleared: a fresh stream, a `reset` frame, a redraw after an overflow. */
  cleared?(at: number): void;
  /** After any call into the prediction engine (keystroke, output drawn, deadline, modes, round trip). */
  engine?(at: number): void;
}

export class ConsoleClient {
  readonly term: HeadlessTerminal;
  modes: Modes | null = null;
  sockets = 0;
  /** While set (a roam in progress), new sockets wait for it before connecting. */
  roaming: Promise<unknown> | null = null;
  private engineTimer: NodeJS.Timeout | null = null;
  private readonly listeners = new Set<ClientEvents>();
  private stopped = false;

  private constructor(
    private readonly mods: ConsoleModules,
    private readonly options: ConsoleClientOptions,
    term: HeadlessTerminal,
  ) {
    this.term = term;
  }

  engine!: Engine;
  sink!: Sink;
  connection!: Connection;

  static async open(options: ConsoleClientOptions): Promise<ConsoleClient> {
    const mods = await consoleModules();
    const term = new Terminal({ cols: options.cols, rows: options.rows, scrollback: 1000, allowProposedApi: true });
    const client = new ConsoleClient(mods, options, term);
    client.wire();
    client.connection.start();
    await client.until((state) => state.kind === 'connected', 30_000);
    return client;
  }

  listen(events: ClientEvents): () => void {
    this.listeners.add(events);
    return () => this.listeners.delete(events);
  }

  /** Sends input as the console does, and tells the engine its seq; returns the seq. */
  type(data: string): number | null {
    const seq = this.connection.send(data);
    if (seq !== null) this.engine.keystroke(data, seq, performance.now());
    this.update();
    return seq;
  }

  /** Resolves once the connection's state satisfies `test` (at once when it does now). */
  until(test: (state: ConnectionState) => boolean, timeoutMs: number): Promise<number> {
    if (test(this.connection.state)) return Promise.resolve(performance.now());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stop();
        reject(new Error(`connection not in the awaited state within ${timeoutMs} ms (${JSON.stringify(this.connection.state)})`));
      }, timeoutMs);
      const stop = this.listen({
        state: (state, at) => {
          if (!test(state)) return;
          clearTimeout(timer);
          stop();
          resolve(at);
        },
      });
    });
  }

  /** The screen's text, one string per row (the active buffer's visible part). */
  screen(): string[] {
    const buffer = this.term.buffer.active;
    const rows: string[] = [];
    for (let y = 0; y < this.term.rows; y += 1) rows.push(buffer.getLine(buffer.baseY + y)?.translateToString(true) ?? '');
    return rows;
  }

  /** The text of the cursor's row. */
  cursorLine(): string {
    const buffer = this.term.buffer.active;
    return buffer.getLine(buffer.baseY + buffer.cursorY)?.translateToString(true) ?? '';
  }

  stop(): void {
    this.stopped = true;
    if (this.engineTimer !== null) clearTimeout(this.engineTimer);
    this.connection.stop();
    this.term.dispose();
  }

  private emit<K extends keyof ClientEvents>(name: K, ...args: Parameters<NonNullable<ClientEvents[K]>>): void {
    for (const listener of this.listeners) (listener[name] as ((...values: unknown[]) => void) | undefined)?.(...args);
  }

  private wire(): void {
    const { link, environmentId, token, cols, rows } = this.options;
    this.engine = new this.mods.PredictionEngine(this.term);
    this.sink = new this.mods.OutputSink(
      {
        write: (data, parsed) =>
          this.writeRows(data, () => {
            if (this.stopped) return;
            const at = performance.now();
            this.engine.drawn(data, at);
            this.update();
            this.emit('drawn', data, at);
            parsed();
          }),
        reset: () => {
          this.term.reset();
          this.engine.reset();
          this.update();
          this.emit('cleared', performance.now());
        },
      },
      () => this.connection.redraw(),
    );
    const storage = new Map<string, string>();
    this.connection = new this.mods.TerminalConnection({
      environmentId,
      sink: this.sink,
      accessToken: () => Promise.resolve(token),
      refresh: () => Promise.resolve('unreachable'),
      untilRunning: () => new Promise(() => undefined),
      size: () => ({ cols, rows }),
      socketOrigin: 'ws://127.0.0.1',
      // The link's port now: after a roam the client reaches the server through the new one.
      createSocket: (url: string, protocols: string[]): SocketLike => {
        this.sockets += 1;
        const path = url.replace(/^ws:\/\/[^/]+/, '');
        const open = (): WebSocket => {
          const socket = new WebSocket(link.url(path, 'ws'), protocols, { perMessageDeflate: false });
          // As in a browser, an error (one closed while still connecting, under load) is followed by
          // `close`, which the connection handles; Node's ws would otherwise throw it as unhandled.
          socket.on('error', () => undefined);
          return socket;
        };
        return this.roaming ? new DeferredSocket(this.roaming, open) : open();
      },
      storage: {
        getItem: (key: string) => storage.get(key) ?? null,
        setItem: (key: string, value: string) => void storage.set(key, value),
      },
      online: () => true,
      onState: (state: ConnectionState) => this.emit('state', state, performance.now()),
      onOutput: (data: string, offset: number, ack: number | null) => {
        const at = performance.now();
        this.emit('output', data, offset, ack, at);
        this.engine.output(data, ack, at);
        this.update();
      },
      onAck: (seq: number) => this.emit('ack', seq, performance.now()),
      onModes: (modes: Modes) => {
        this.modes = modes;
        this.engine.modes(modes);
        this.update();
        this.emit('modes', modes, performance.now());
      },
      onRoundTrip: (ms: number) => {
        this.engine.rtt(ms);
        // As the console does: `ack` frames reach the engine at the next pong.
        this.engine.output('', this.connection.acknowledged, performance.now());
        this.update();
      },
    });
  }

  /** Writes `data` to the terminal; with `onRow`, a line at a time, reading the rows at the cursor after each. */
  private writeRows(data: string, parsed: () => void): void {
    const onRow = this.options.onRow;
    if (!onRow) {
      this.term.write(data, parsed);
      return;
    }
    // A line at a time, and the line's end apart: tmux finishes a row, then may scroll with CSI S and move the cursor up.
    const pieces = data.split(/(?=\r)|(?<=\n)/).filter((piece) => piece !== '');
    pieces.forEach((piece, index) => {
      const last = index === pieces.length - 1;
      this.term.write(piece, () => {
        if (!this.stopped) {
          const buffer = this.term.buffer.active;
          for (const y of [buffer.cursorY - 1, buffer.cursorY]) {
            const row = y >= 0 ? buffer.getLine(buffer.baseY + y) : undefined;
            if (row) onRow(row.translateToString(true));
          }
        }
        if (last) parsed();
      });
    });
  }

  /** As the console's Predictor: after each engine call, wake up at its next deadline. */
  private update(): void {
    if (this.stopped) return;
    this.emit('engine', performance.now());
    if (this.engineTimer !== null) clearTimeout(this.engineTimer);
    this.engineTimer = null;
    const deadline = this.engine.nextDeadline();
    if (deadline === null) return;
    this.engineTimer = setTimeout(
      () => {
        this.engineTimer = null;
        this.engine.tick(performance.now());
        this.update();
      },
      Math.max(0, deadline - performance.now()),
    );
  }
}
