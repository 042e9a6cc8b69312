import { Duplex, PassThrough } from 'node:stream';
import { Registry } from 'prom-client';
import { WebSocket } from 'ws';
import { FakeSocket, fakeTerminalClient } from '../../test/support/fake-socket.js';
import type { MetricsService } from '../common/metrics/metrics.service.js';
import type { EnvironmentSpec, ExecSession, ExitStatus, RuntimeProvider, TerminalSize } from '../runtime/runtime.provider.js';
import { TMUX_REPAINT_KEYS } from '../runtime/tmux-conf.js';
import { attachTmuxClient } from '../runtime/tmux-session.js';
import { eventually } from '../../test/support/eventually.js';
import { HIGH_WATER_BYTES } from './fan-out.js';
import { TerminalClient } from './terminal-clients.js';
import { TerminalMetrics } from './terminal-metrics.js';
import { TerminalSession } from './terminal-session.js';

/** The tmux client a runtime's exec would start: output is pushed by the test, input is recorded. */
class FakeUpstream implements ExecSession {
  readonly output = new PassThrough();
  readonly input: string[] = [];
  readonly sizes: [number, number][] = [];
  readonly stream: Duplex;
  readonly exit: Promise<ExitStatus>;
  private finish!: (status: ExitStatus) => void;

  constructor() {
    const input = this.input;
    const output = this.output;
    this.stream = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        input.push(chunk.toString());
        callback();
      },
    });
    output.on('data', (chunk: Buffer) => this.stream.push(chunk));
    this.exit = new Promise((resolve) => (this.finish = resolve));
  }

  resize(cols: number, rows: number): void {
    this.sizes.push([cols, rows]);
  }

  async kill(): Promise<void> {
    this.finish({ code: 0, signal: null });
  }

  /** Ends as a process does: with an exit code, or without one (a connection lost). */
  end(status: ExitStatus): void {
    this.finish(status);
  }
}

const spec = { id: '0123456789abcdef01234567' } as EnvironmentSpec;
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function setup(environmentRunning?: () => Promise<boolean>): {
  session: TerminalSession;
  upstream: FakeUpstream;
  client: (cols?: number, rows?: number) => Promise<[TerminalClient, FakeSocket]>;
} {
  const upstream = new FakeUpstream();
  // The runtimes' own attachment (tmux-session.ts) around the fake exec session: the session sees what it sees in production.
  const runtime = {
    attachTerminal: (attached: EnvironmentSpec, size: TerminalSize) => attachTmuxClient(attached, size, async () => upstream),
  } as unknown as RuntimeProvider;
  const metrics = new TerminalMetrics({ registry: new Registry() } as MetricsService);
  const session = new TerminalSession(spec, {
    runtime,
    metrics,
    replayBufferBytes: 1 << 20,
    graceMs: 60_000,
    onInput: () => undefined,
    onClosed: () => undefined,
    environmentRunning,
  });
  let nextId = 1;
  const client = async (cols = 80, rows = 24): Promise<[TerminalClient, FakeSocket]> => {
    const [c, socket] = fakeTerminalClient(nextId++);
    Object.assign(c, { cols, rows, queue: [{ type: 'input', data: '' }] });
    await session.attach(
      c,
      { type: 'welcome', message: 'hi', environment: { id: spec.id, name: 'n', template: 't', status: 'running' } },
      null,
    );
    return [c, socket];
  };
  return { session, upstream, client };
}

const outputs = (socket: FakeSocket): string =>
  socket.sent
    .filter((m) => m.type === 'output')
    .map((m) => String(m.data))
    .join('');

describe('TerminalSession', () => {
  it('greets first, fans one encoded frame out to every live client, and asks tmux for a repaint for newcomers', async () => {
    const { session, upstream, client } = setup();
    const [, a] = await client();
    const [, b] = await client();
    expect(a.sent[0]?.type).toBe('welcome');
    await flush();
    expect(upstream.input).toContain(TMUX_REPAINT_KEYS);
    upstream.output.write('hello');
    await flush();
    await flush();
    expect(outputs(a)).toBe('hello');
    expect(outputs(b)).toBe('hello');
    session.close();
  });

  it('cuts a lagging client over while others keep up, then redraws it (reset first) once it drains', async () => {
    const { session, upstream, client } = setup();
    const [slowClient, slow] = await client();
    const [, fast] = await client();
    slow.bufferedAmount = HIGH_WATER_BYTES + 1;
    upstream.output.write('one');
    await flush();
    await flush();
    expect(slowClient.mode).toBe('behind');
    expect(outputs(fast)).toBe('one');
    expect(outputs(slow)).toBe('');
    upstream.output.write('two');
    await flush();
    await flush();
    expect(outputs(slow)).toBe('');
    slow.bufferedAmount = 0;
    await eventually(() => expect(slowClient.mode).toBe('live'));
    expect(slow.sent.some((m) => m.type === 'reset')).toBe(true);
    upstream.output.write('three');
    await flush();
    await flush();
    expect(outputs(slow)).toBe('three');
    session.close();
  });

  it('jumps a paced client that types while behind a flood to the current screen at once, and not again until it reports that jump', async () => {
    const { session, upstream, client } = setup();
    const [paced, socket] = await client();
    const [plain, plainSocket] = await client();
    session.handle(paced, { type: 'received', offset: session.offset });
    const flood = async (): Promise<void> => {
      upstream.output.write('y\r\n'.repeat(20_000));
      await flush();
      await flush();
    };
    const resets = (of: FakeSocket) => of.sent.filter((m) => m.type === 'reset');
    await flood();
    expect(paced.mode).toBe('behind');

    // Ctrl-C: written, then at once a reset at the current end of the stream (what was in flight is skipped).
    session.handle(paced, { type: 'input', data: '\x03', seq: 1 });
    expect(upstream.input).toContain('\x03');
    expect(resets(socket)).toEqual([{ type: 'reset', offset: session.offset }]);
    expect(paced.mode).toBe('live');
    const jumpedTo = session.offset;

    // Behind again before it reported the jump: its next key does not jump it again.
    await flood();
    expect(paced.mode).toBe('behind');
    session.handle(paced, { type: 'input', data: 'x', seq: 2 });
    expect(resets(socket)).toHaveLength(1);
    // Once it reported the jump, it does.
    session.handle(paced, { type: 'received', offset: jumpedTo });
    session.handle(paced, { type: 'input', data: 'x', seq: 3 });
    expect(resets(socket)).toHaveLength(2);

    // A client that does not report `received` keeps the old flow control: typing does not make it jump.
    plainSocket.bufferedAmount = HIGH_WATER_BYTES + 1;
    await flood();
    expect(plain.mode).toBe('behind');
    session.handle(plain, { type: 'input', data: 'z', seq: 1 });
    expect(resets(plainSocket)).toHaveLength(0);
    expect(plain.mode).toBe('behind');
    session.close();
  });

  it('pauses the upstream when every client is behind and resumes when one drains, losing nothing', async () => {
    const { session, upstream, client } = setup();
    const [only, socket] = await client();
    socket.bufferedAmount = HIGH_WATER_BYTES + 1;
    upstream.output.write('first');
    await flush();
    await flush();
    expect(upstream.stream.isPaused()).toBe(true);
    expect(only.mode).toBe('live');
    socket.bufferedAmount = 0;
    await eventually(() => expect(upstream.stream.isPaused()).toBe(false));
    upstream.output.write('second');
    await flush();
    await flush();
    expect(outputs(socket)).toBe('firstsecond');
    session.close();
  });

  it("applies the most recently active client's size", async () => {
    const { session, upstream, client } = setup();
    const [a] = await client(100, 30);
    const [b] = await client(90, 20);
    session.handle(b, { type: 'resize', cols: 91, rows: 21 });
    session.handle(a, { type: 'input', data: 'x' });
    expect(upstream.sizes.slice(-2)).toEqual([
      [91, 21],
      [100, 30],
    ]);
    session.close();
  });

  it('drops input beyond the rate budget with an error, and closes a client after repeated violations (4008)', async () => {
    const { session, upstream, client } = setup();
    const [c, socket] = await client();
    // 10 bytes left, and no refill before the input arrives however slow this machine is.
    c.inputTokens = 10;
    c.inputRefilledAt = Date.now() + 60_000;
    session.handle(c, { type: 'input', data: 'x'.repeat(11) });
    expect(upstream.input.filter((i) => i.includes('x'))).toEqual([]);
    expect(socket.sent.some((m) => m.type === 'error' && /too fast/.test(String(m.message)))).toBe(true);
    for (let i = 0; i < 9; i += 1) session.violation(c, 'bad');
    expect(socket.closedWith).toBe(4008);
    session.close();
  });

  it('resumes exactly from an offset it holds, and resets for one it does not', async () => {
    const { session, upstream, client } = setup();
    const [, first] = await client();
    upstream.output.write('abc');
    await flush();
    await flush();
    const offset = Number(first.sent.filter((m) => m.type === 'output').at(-1)?.offset);
    upstream.output.write('def');
    await flush();
    await flush();
    const socket = new FakeSocket();
    const late: TerminalClient = { ...(await client())[0], id: 99, ws: socket as unknown as WebSocket, mode: 'connecting', queue: [] };
    await session.attach(
      late,
      { type: 'welcome', message: 'hi', environment: { id: spec.id, name: 'n', template: 't', status: 'running' } },
      offset,
    );
    expect(outputs(socket)).toBe('def');
    const stale = new FakeSocket();
    const old: TerminalClient = { ...late, id: 100, ws: stale as unknown as WebSocket, mode: 'connecting', queue: [] };
    await session.attach(
      old,
      { type: 'welcome', message: 'hi', environment: { id: spec.id, name: 'n', template: 't', status: 'running' } },
      3,
    );
    expect(stale.sent.map((m) => m.type)).toEqual(['welcome', 'reset']);
    session.close();
  });

  it('an upstream that exits (the environment stopped, the shell exited) closes its clients with 4009', async () => {
    const { session, upstream, client } = setup(() => Promise.resolve(true));
    const [, socket] = await client();
    upstream.end({ code: 0, signal: null });
    await eventually(() => expect(socket.closedWith).toBe(4009));
    expect(socket.sent.at(-1)).toEqual({ type: 'error', message: 'The terminal session ended (exit code 0); reconnect to start it again' });
    expect(session.isClosed).toBe(true);
  });

  it('an upstream lost while the environment runs (a dead exec connection) closes its clients with 4500, to reconnect', async () => {
    const { session, upstream, client } = setup(() => Promise.resolve(true));
    const [, a] = await client();
    const [, b] = await client();
    upstream.end({ code: null, signal: 'SIGHUP' });
    // The session is forgotten at once: a client that reconnects meanwhile gets a new upstream.
    await eventually(() => expect(session.isClosed).toBe(true));
    await eventually(() => expect([a.closedWith, b.closedWith]).toEqual([4500, 4500]));
    expect(a.sent.at(-1)).toEqual({ type: 'error', message: 'The connection to the terminal was lost; reconnect to resume' });
  });

  it('an upstream lost because the environment is going away closes its clients with 4009', async () => {
    const { upstream, client } = setup(() => Promise.resolve(false));
    const [, socket] = await client();
    upstream.end({ code: null, signal: 'SIGHUP' });
    await eventually(() => expect(socket.closedWith).toBe(4009));
    expect(socket.sent.at(-1)).toEqual({ type: 'error', message: 'The terminal session ended; reconnect to start it again' });
  });
});
