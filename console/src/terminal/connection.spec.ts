import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TerminalConnection, type ConnectionOptions, type ConnectionState } from './connection.js';
import type { SocketLike } from './connection-types.js';
import { MAX_FRAME_CHARS } from './input-log.js';
import { OutputSink } from './output-sink.js';

/**
 * The connection's state machine against a stand-in for the browser's WebSocket (the server side
 * is not under test here: test/console/ drives the real one). Timers and Date are vitest's fakes.
 */
class FakeSocket implements SocketLike {
  readyState = 0;
  onmessage: ((event: MessageEvent) => void) | null = null;
  onclose: ((event: CloseEvent) => void) | null = null;
  onerror: ((event: Event) => void) | null = null;
  readonly sent: Record<string, unknown>[] = [];
  closedWith: number | null = null;

  constructor(readonly url: string) {}

  send(data: string): void {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }

  close(code?: number): void {
    this.closedWith = code ?? 1000;
    this.readyState = 3;
  }

  /** The server's frame. */
  frame(message: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(message) } as MessageEvent);
  }

  welcome(input: { seq: number } | null, resumed = false): void {
    this.readyState = 1;
    this.frame({
      type: 'welcome',
      message: 'hi',
      session: { name: 's', offset: 0, cols: 80, rows: 24, resumed },
      ...(input ? { input: { client_id: 'x', seq: input.seq } } : {}),
    });
  }

  /** The link drops (a close event from the browser). */
  drop(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' } as CloseEvent);
  }

  of(type: string): Record<string, unknown>[] {
    return this.sent.filter((message) => message.type === type);
  }
}

class MemoryStorage {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
}

const inputs = (socket: FakeSocket): [unknown, unknown, unknown][] => socket.of('input').map((m) => [m.seq, m.data, m.part]);

describe('TerminalConnection', () => {
  let sockets: FakeSocket[];
  let states: ConnectionState[];
  let notices: string[];
  let storage: MemoryStorage;
  let sink: OutputSink;
  let online: boolean;

  const create = (extra: Partial<ConnectionOptions> = {}): TerminalConnection => {
    sink = new OutputSink({ write: (_data, parsed) => parsed(), reset: () => undefined }, () => undefined);
    return new TerminalConnection({
      environmentId: 'env1',
      sink,
      accessToken: () => Promise.resolve('token'),
      refresh: () => Promise.resolve('refreshed'),
      untilRunning: () => new Promise(() => undefined),
      size: () => ({ cols: 80, rows: 24 }),
      onState: (state) => states.push(state),
      onNotice: (text) => notices.push(text),
      socketOrigin: 'ws://server',
      createSocket: (url) => {
        const socket = new FakeSocket(url);
        sockets.push(socket);
        return socket;
      },
      storage,
      online: () => online,
      ...extra,
    });
  };
  const latest = (): FakeSocket => sockets[sockets.length - 1];
  /** A connection started, its first socket open (not welcomed yet). */
  const started = async (extra: Partial<ConnectionOptions> = {}): Promise<TerminalConnection> => {
    const connection = create(extra);
    connection.start();
    await vi.advanceTimersByTimeAsync(0);
    return connection;
  };
  /** Lets the access token's promise settle and timers due now run. */
  const settle = (ms = 0): Promise<void> => vi.advanceTimersByTimeAsync(ms).then(() => undefined);

  beforeEach(() => {
    vi.useFakeTimers();
    sockets = [];
    states = [];
    notices = [];
    storage = new MemoryStorage();
    online = true;
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends a random client_id per tab and environment, kept in sessionStorage across connections and reloads', async () => {
    const first = await started();
    const id = new URL(latest().url).searchParams.get('client_id');
    expect(id).toMatch(/^[A-Za-z0-9_-]{16,64}$/);
    first.stop();
    const reloaded = await started();
    expect(new URL(latest().url).searchParams.get('client_id')).toBe(id);
    reloaded.stop();
    storage = new MemoryStorage(); // another tab
    const other = await started();
    expect(new URL(latest().url).searchParams.get('client_id')).not.toBe(id);
    other.stop();
  });

  it('numbers input 1, 2, 3… and returns the seq; input typed before the welcome is sent after it, in order', async () => {
    const connection = await started();
    expect(connection.send('e')).toBe(1);
    expect(connection.send('c')).toBe(2);
    expect(latest().of('input')).toEqual([]);
    latest().welcome({ seq: 0 });
    expect(connection.send('h')).toBe(3);
    expect(inputs(latest())).toEqual([
      [1, 'e', undefined],
      [2, 'c', undefined],
      [3, 'h', undefined],
    ]);
    connection.stop();
  });

  it('after a drop, resends in order exactly what the new welcome\u2019s input.seq does not cover, with what was typed meanwhile', async () => {
    const connection = await started();
    latest().welcome({ seq: 0 });
    for (const key of ['l', 's', '\r']) connection.send(key);
    latest().frame({ type: 'output', data: 'l', offset: 1, ack: 1 });
    latest().drop();
    connection.send('x'); // typed while reconnecting
    await settle();
    expect(sockets).toHaveLength(2); // reconnected at once
    latest().welcome({ seq: 2 }, true); // the server had written `l` and `s`
    expect(inputs(latest())).toEqual([
      [3, '\r', undefined],
      [4, 'x', undefined],
    ]);
    expect(connection.acknowledged).toBe(2);
    connection.stop();
  });

  it('forgets input once acknowledged: by an output frame\u2019s ack or an ack message', async () => {
    const connection = await started();
    latest().welcome({ seq: 0 });
    connection.send('a');
    connection.send('b');
    connection.send('pw');
    latest().frame({ type: 'output', data: 'ab', offset: 2, ack: 2 });
    latest().frame({ type: 'ack', seq: 3 });
    expect(connection.acknowledged).toBe(3);
    latest().drop();
    await settle();
    latest().welcome({ seq: 0 }); // a server that lost its memory: nothing left to send again
    expect(inputs(latest())).toEqual([]);
    connection.stop();
  });

  it('sends a paste longer than one frame as several input messages, part "more" on all but the last', async () => {
    const connection = await started();
    latest().welcome({ seq: 0 });
    const paste = 'p'.repeat(2 * MAX_FRAME_CHARS + 10);
    expect(connection.send(paste)).toBe(3);
    const sent = latest().of('input');
    expect(sent.map((m) => [m.seq, m.part, (m.data as string).length])).toEqual([
      [1, 'more', MAX_FRAME_CHARS],
      [2, 'more', MAX_FRAME_CHARS],
      [3, undefined, 10],
    ]);
    connection.stop();
  });

  it('refuses, with a visible message, input that would keep more than a few MiB unacknowledged', async () => {
    const connection = await started();
    const mib = 'm'.repeat(1024 * 1024);
    for (let i = 0; i < 4; i += 1) expect(connection.send(mib)).not.toBeNull();
    expect(connection.send('one more')).toBeNull();
    expect(notices).toHaveLength(1);
    connection.stop();
  });

  it('reports received at the first output, every 16 KiB, and 100 ms after its last report when output is unreported', async () => {
    const connection = await started();
    latest().welcome({ seq: 0 });
    const socket = latest();
    socket.frame({ type: 'output', data: 'a', offset: 1 });
    expect(socket.of('received')).toEqual([{ type: 'received', offset: 1 }]);
    socket.frame({ type: 'output', data: 'b', offset: 2 });
    socket.frame({ type: 'output', data: 'c', offset: 3 });
    expect(socket.of('received')).toHaveLength(1);
    await settle(99);
    expect(socket.of('received')).toHaveLength(1);
    await settle(1);
    expect(socket.of('received').at(-1)).toEqual({ type: 'received', offset: 3 });
    socket.frame({ type: 'output', data: 'x'.repeat(16 * 1024), offset: 3 + 16 * 1024 });
    expect(socket.of('received').at(-1)).toEqual({ type: 'received', offset: 3 + 16 * 1024 });
    await settle(1000);
    expect(socket.of('received')).toHaveLength(3); // nothing new, nothing more
    connection.stop();
  });

  it('keeps an older server\u2019s protocol: no received, and what was sent is not kept (it cannot be acknowledged)', async () => {
    const connection = await started();
    latest().welcome(null);
    connection.send('a');
    latest().frame({ type: 'output', data: 'a', offset: 1 });
    await settle(500);
    expect(latest().of('received')).toEqual([]);
    latest().drop();
    connection.send('b');
    await settle();
    latest().welcome(null, true);
    expect(inputs(latest())).toEqual([[2, 'b', undefined]]);
    connection.stop();
  });

  it('shows reconnecting within 3 s of a silent link, and reconnects at once, then after 250 ms, 500 ms, 1 s…', async () => {
    const connection = await started();
    latest().welcome({ seq: 0 });
    latest().frame({ type: 'output', data: '$ ', offset: 2 });
    // The link goes silent: nothing more arrives, nothing closes.
    const silentAt = Date.now();
    let shownAt: number | null = null;
    while (shownAt === null && Date.now() - silentAt < 10_000) {
      await settle(50);
      if (connection.state.kind !== 'connected') shownAt = Date.now();
    }
    expect(shownAt! - silentAt).toBeLessThanOrEqual(3000);
    await settle();
    expect(sockets[0].closedWith).toBe(4000);
    expect(sockets[0].of('ping').length).toBeGreaterThan(0);
    expect(states.some((state) => state.kind === 'reconnecting')).toBe(true);
    expect(sockets).toHaveLength(2); // at once
    expect(new URL(latest().url).searchParams.get('resume')).toBe('2');
    // Each attempt fails at once: the next comes after 250 ms, 500 ms, 1 s.
    const attemptsAt: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      const before = sockets.length;
      latest().drop();
      const droppedAt = Date.now();
      while (sockets.length === before) await settle(10);
      attemptsAt.push(Date.now() - droppedAt);
    }
    expect(attemptsAt[0]).toBeGreaterThanOrEqual(200);
    expect(attemptsAt[0]).toBeLessThanOrEqual(310);
    expect(attemptsAt[1]).toBeGreaterThanOrEqual(400);
    expect(attemptsAt[1]).toBeLessThanOrEqual(610);
    expect(attemptsAt[2]).toBeGreaterThanOrEqual(800);
    expect(attemptsAt[2]).toBeLessThanOrEqual(1210);
    connection.stop();
  });

  it('pings every second while input awaits its acknowledgement, and measures the round trip', async () => {
    const trips: number[] = [];
    const connection = await started({ onRoundTrip: (ms) => trips.push(ms) });
    const socket = latest();
    socket.welcome({ seq: 0 });
    connection.send('a');
    await settle(250);
    expect(socket.of('ping')).toHaveLength(1);
    await settle(120);
    socket.frame({ type: 'pong' });
    expect(trips).toHaveLength(1);
    expect(connection.roundTripMs).toBe(trips[0]);
    await settle(1000);
    expect(socket.of('ping')).toHaveLength(2);
    socket.frame({ type: 'ack', seq: 1 });
    socket.frame({ type: 'pong' });
    await settle(1500); // nothing awaits, the server spoke less than 2 s ago
    expect(socket.of('ping')).toHaveLength(2);
    connection.stop();
  });

  it('gives up a socket that is never welcomed (a handshake lost in a dead link) and tries again', async () => {
    const connection = await started();
    expect(sockets).toHaveLength(1);
    await settle(10_000);
    expect(sockets[0].closedWith).toBe(4000);
    await settle();
    expect(sockets).toHaveLength(2);
    connection.stop();
  });

  it('passes output with its ack and modes to the predictor before the sink, and drops input once no reconnection is coming', async () => {
    const seen: unknown[] = [];
    const connection = await started({
      onOutput: (data, offset, ack) => seen.push(['output', data, offset, ack, sink.position]),
      onModes: (modes) => seen.push(['modes', modes.echo, modes.canonical]),
    });
    latest().welcome({ seq: 0 });
    latest().frame({ type: 'output', data: 'a', offset: 1 });
    latest().frame({
      type: 'modes',
      offset: 1,
      echo: false,
      canonical: true,
      alt_screen: false,
      cursor_keys: 'normal',
      bracketed_paste: true,
      copy_mode: false,
    });
    latest().frame({ type: 'output', data: 'b', offset: 2, ack: 4 });
    expect(seen).toEqual([
      ['output', 'a', 1, null, null],
      ['modes', false, true],
      ['output', 'b', 2, 4, 1],
    ]);
    latest().drop(4004);
    expect(connection.state.kind).toBe('disconnected');
    expect(connection.send('lost')).toBeNull();
    connection.stop();
  });
});
