import { PassThrough } from 'node:stream';
import { Registry } from 'prom-client';
import { FakeSocket, fakeTerminalClient } from '../../test/support/fake-socket.js';
import type { MetricsService } from '../common/metrics/metrics.service.js';
import { eventually } from '../../test/support/eventually.js';
import { FanOutParts, HIGH_WATER_BYTES, OutputFanOut } from './fan-out.js';
import { AckBook } from './input/ack-book.js';
import { PacingWindow } from './pacing-window.js';
import { ReplayBudget, SendQueueBudget } from './memory-budget.js';
import { ReplayBuffer } from './replay-buffer.js';
import { TerminalClient, TerminalClients } from './terminal-clients.js';
import { TerminalMetrics } from './terminal-metrics.js';

/** One session's fan-out over fake sockets; `budgets` are the process's, shared by several setups. */
function setup(budgets: Pick<FanOutParts, 'sendBudget' | 'replayBudget' | 'acks' | 'windowBytes'> = {}): {
  fanOut: OutputFanOut;
  buffer: ReplayBuffer;
  upstream: PassThrough;
  caughtUp: TerminalClient[];
  join: () => [TerminalClient, FakeSocket];
  clients: TerminalClients;
} {
  const metrics = new TerminalMetrics({ registry: new Registry() } as MetricsService);
  const clients = new TerminalClients(metrics);
  const buffer = new ReplayBuffer(1 << 20, 1000);
  const upstream = new PassThrough();
  const caughtUp: TerminalClient[] = [];
  const fanOut = new OutputFanOut({
    clients,
    buffer,
    metrics,
    upstream: () => upstream,
    caughtUp: (client) => {
      caughtUp.push(client);
      client.mode = 'live';
    },
    ...budgets,
  });
  let id = 1;
  const join = (): [TerminalClient, FakeSocket] => {
    const [client, socket] = fakeTerminalClient(id++);
    client.mode = 'live';
    clients.add(client);
    return [client, socket];
  };
  return { fanOut, buffer, upstream, caughtUp, join, clients };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('OutputFanOut', () => {
  it('sends a lone small chunk at once, and coalesces what follows in the same turn into one frame', async () => {
    const { fanOut, buffer, join } = setup();
    const [, socket] = join();
    fanOut.write(Buffer.from('a'));
    expect(socket.sent).toEqual([{ type: 'output', data: 'a', offset: 1001 }]);
    fanOut.write(Buffer.from('b'));
    fanOut.write(Buffer.from('c'));
    expect(socket.sent).toHaveLength(1);
    await turn();
    expect(socket.sent).toEqual([
      { type: 'output', data: 'a', offset: 1001 },
      { type: 'output', data: 'bc', offset: 1003 },
    ]);
    expect(buffer.end).toBe(1003);
    fanOut.close();
  });

  it("puts on each frame, for a client that sent seqs, the input written before the frame's first byte was read", async () => {
    const acks = new AckBook();
    const { fanOut, join } = setup({ acks });
    const [, plainSocket] = join();
    const [typist, typistSocket] = join();
    typist.extras.ackSent = 0;
    acks.record(typist.extras.writer, 1, fanOut.mark);
    fanOut.write(Buffer.from('x'.repeat(600)));
    // Written while that frame was being read: only frames read after it carry it.
    acks.record(typist.extras.writer, 2, fanOut.mark);
    await turn();
    fanOut.write(Buffer.from('y'));
    expect(typistSocket.sent.map((frame) => frame.ack)).toEqual([1, 2]);
    expect(plainSocket.sent.every((frame) => !('ack' in frame))).toBe(true);
    fanOut.close();
  });

  it('stops sending a client that reports `received` once a window is unreported, and hands it back once it reported everything', async () => {
    const { fanOut, join, caughtUp } = setup({ windowBytes: 1000 });
    const [paced, socket] = join();
    paced.extras.received = 1000;
    for (let i = 0; i < 3; i += 1) {
      fanOut.write(Buffer.from('z'.repeat(600)));
      await turn();
    }
    // 600 unreported; the next frame would make 1200, over the window: not sent.
    expect(socket.sent).toHaveLength(1);
    expect(paced.mode).toBe('behind');
    paced.extras.received = 1300;
    fanOut.progress();
    expect(caughtUp).toEqual([]);
    paced.extras.received = paced.extras.sentEnd;
    fanOut.progress();
    expect(caughtUp).toEqual([paced]);
    fanOut.close();
  });

  it("paces a reporting client by its own adapted window (pacing-window.ts), started at its first report", async () => {
    const { fanOut, join } = setup({ windowBytes: 1000 });
    const [paced, socket] = join();
    paced.extras.received = 1000;
    fanOut.reported(paced);
    expect(paced.extras.pacing?.bytes).toBe(1000);
    // A window grown to 2000 lets three frames of 600 through, where the initial one stopped at two.
    paced.extras.pacing = new PacingWindow(2000, 0);
    for (let i = 0; i < 3; i += 1) {
      fanOut.write(Buffer.from('z'.repeat(600)));
      await turn();
    }
    expect(socket.sent).toHaveLength(3);
    expect(paced.mode).toBe('live');
    fanOut.close();
  });

  it('starts a client that reconnects with the window its client_id had, and others with the initial one', () => {
    const { fanOut, clients } = setup({ windowBytes: 32 * 1024 });
    const [phone] = fakeTerminalClient(1, 'phone');
    phone.extras.received = 0;
    phone.extras.pacing = new PacingWindow(32 * 1024, 0, 100 * 1024);
    fanOut.clientLeft(phone);
    const [again] = fakeTerminalClient(2, 'phone');
    const [other] = fakeTerminalClient(3, 'tablet');
    for (const client of [again, other]) {
      clients.add(client);
      client.extras.received = 0;
      fanOut.reported(client);
    }
    expect(again.extras.pacing?.bytes).toBe(100 * 1024);
    expect(other.extras.pacing?.bytes).toBe(32 * 1024);
    fanOut.close();
  });

  it('sends a flood in frames of at most 16 Ki characters while a paced client is live, never splitting a surrogate pair', async () => {
    const { fanOut, join } = setup({ windowBytes: 1024 * 1024 });
    const [paced, socket] = join();
    paced.extras.received = paced.extras.sentEnd;
    const text = `${'a'.repeat(16 * 1024 - 1)}😀${'b'.repeat(20_000)}`;
    fanOut.write(Buffer.from(text));
    await turn();
    const frames = socket.sent.map((frame) => String(frame.data));
    expect(frames.every((data) => data.length <= 16 * 1024)).toBe(true);
    expect(frames.length).toBeGreaterThan(1);
    expect(frames.join('')).toBe(text);
    expect(frames[0]).toBe('a'.repeat(16 * 1024 - 1));
    fanOut.close();
  });

  it('decodes UTF-8 split across chunks, and counts offsets in bytes', async () => {
    const { fanOut, join } = setup();
    const [, socket] = join();
    const euro = Buffer.from('€');
    fanOut.write(euro.subarray(0, 1));
    fanOut.write(euro.subarray(1));
    await turn();
    expect(socket.sent).toEqual([{ type: 'output', data: '€', offset: 1003 }]);
    fanOut.close();
  });

  it('cuts over a client that is behind while another keeps up, and hands it back once it drains', async () => {
    const { fanOut, upstream, caughtUp, join } = setup();
    const [slow, slowSocket] = join();
    const [, fastSocket] = join();
    slowSocket.bufferedAmount = HIGH_WATER_BYTES + 1;
    fanOut.write(Buffer.from('one'));
    await turn();
    expect(slow.mode).toBe('behind');
    expect(fastSocket.sent.map((m) => m.data)).toEqual(['one']);
    expect(slowSocket.sent).toEqual([]);
    expect(upstream.isPaused()).toBe(false);
    slowSocket.bufferedAmount = 0;
    await eventually(() => expect(caughtUp).toEqual([slow]));
    fanOut.close();
  });

  it('pauses the upstream when every live client is behind, and resumes it when one drains or the last one leaves', async () => {
    const { fanOut, upstream, join, clients } = setup();
    const [only, socket] = join();
    socket.bufferedAmount = HIGH_WATER_BYTES + 1;
    fanOut.write(Buffer.from('first'));
    await turn();
    expect(socket.sent.map((m) => m.data)).toEqual(['first']);
    expect(fanOut.paused).toBe(true);
    expect(upstream.isPaused()).toBe(true);
    socket.bufferedAmount = 0;
    await eventually(() => expect(fanOut.paused).toBe(false));
    expect(upstream.isPaused()).toBe(false);

    socket.bufferedAmount = HIGH_WATER_BYTES + 1;
    fanOut.write(Buffer.from('second'));
    await turn();
    expect(fanOut.paused).toBe(true);
    clients.remove(only);
    fanOut.clientLeft(only);
    expect(fanOut.paused).toBe(false);
    fanOut.close();
  });

  it('keeps every session queued output under the process budget, cutting over the largest queues first', async () => {
    const sendBudget = new SendQueueBudget(1024 * 1024);
    const one = setup({ sendBudget });
    const two = setup({ sendBudget });
    const [big, bigSocket] = one.join();
    const [, smallSocket] = one.join();
    const [other, otherSocket] = two.join();
    // Each is under the per-client limit; together they are over the budget.
    bigSocket.bufferedAmount = 600 * 1024;
    smallSocket.bufferedAmount = 100 * 1024;
    otherSocket.bufferedAmount = 400 * 1024;
    two.fanOut.write(Buffer.from('x'));
    expect(big.mode).toBe('behind');
    expect(other.mode).toBe('live');
    expect(otherSocket.sent.map((m) => m.data)).toEqual(['x']);
    one.fanOut.write(Buffer.from('y'));
    expect(bigSocket.sent).toEqual([]);
    expect(smallSocket.sent.map((m) => m.data)).toEqual(['y']);
    // The cut-over client drains, and is handed back (a redraw in the session) as with the per-client limit.
    bigSocket.bufferedAmount = 0;
    await eventually(() => expect(one.caughtUp).toEqual([big]));
    // Under the budget nobody is cut over.
    await turn();
    two.fanOut.write(Buffer.from('z'));
    expect(otherSocket.sent.map((m) => m.data)).toEqual(['x', 'z']);
    expect(other.mode).toBe('live');
    one.fanOut.close();
    two.fanOut.close();
  });

  it('records output against the process replay budget, which trims the largest buffers first', async () => {
    const replayBudget = new ReplayBudget(1000 * 1024);
    const one = setup({ replayBudget });
    const two = setup({ replayBudget });
    for (let i = 0; i < 7; i += 1) {
      one.fanOut.write(Buffer.alloc(100 * 1024, 'a'));
      if (i < 5) two.fanOut.write(Buffer.alloc(100 * 1024, 'b'));
      await turn();
    }
    await turn();
    // 700 and 500 KiB over a budget of 1000: the larger one loses its oldest 200 KiB, the other nothing.
    expect(one.buffer.size).toBe(500 * 1024);
    expect(two.buffer.size).toBe(500 * 1024);
    expect(one.buffer.since(1000)).toBeNull();
    expect(two.buffer.since(1000)).toHaveLength(5);
    one.fanOut.close();
    two.fanOut.close();
    expect(replayBudget.size).toBe(0);
  });
});
