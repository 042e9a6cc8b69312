import { Registry } from 'prom-client';
import { WebSocket } from 'ws';
import { FakeSocket, fakeTerminalClient } from '../../test/support/fake-socket.js';
import type { MetricsService } from '../common/metrics/metrics.service.js';
import { INPUT_BURST_BYTES, INPUT_BYTES_PER_SECOND, MAX_VIOLATIONS, TerminalClient, TerminalClients } from './terminal-clients.js';
import { TerminalMetrics } from './terminal-metrics.js';

let nextId = 1;
function client(mode: TerminalClient['mode'] = 'live'): [TerminalClient, FakeSocket] {
  const [created, socket] = fakeTerminalClient(nextId++);
  Object.assign(created, { mode, inputTokens: INPUT_BURST_BYTES });
  return [created, socket];
}

function setup(): { clients: TerminalClients; metrics: TerminalMetrics } {
  const metrics = new TerminalMetrics({ registry: new Registry() } as MetricsService);
  return { clients: new TerminalClients(metrics), metrics };
}

const gauge = async (metrics: TerminalMetrics): Promise<number> => (await metrics.clients.get()).values[0]?.value ?? 0;

describe('TerminalClients', () => {
  it('counts its clients, lists the live ones with the active client first, and forgets one that leaves', async () => {
    const { clients, metrics } = setup();
    const [a] = client();
    const [b] = client();
    const [c] = client('behind');
    for (const each of [a, b, c]) clients.add(each);
    expect(await gauge(metrics)).toBe(3);
    expect(clients.live()).toEqual([a, b]);
    clients.active = b;
    expect(clients.live()).toEqual([b, a]);
    expect(clients.anyBehind()).toBe(true);
    b.firstMessageTimer = setTimeout(() => expect.fail('the timer of a client that left must not fire'), 10);
    expect(clients.remove(b)).toBe(true);
    expect(clients.remove(b)).toBe(false);
    expect(clients.active).toBeNull();
    expect([...clients]).toEqual([a, c]);
    expect(clients.size).toBe(2);
    expect(await gauge(metrics)).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 20));
  });

  it('sends only to open sockets, and counts output bytes once per client', async () => {
    const { clients, metrics } = setup();
    const [open, openSocket] = client();
    const [closed, closedSocket] = client();
    closedSocket.readyState = WebSocket.CLOSED;
    const frame = Buffer.from(JSON.stringify({ type: 'output', data: 'abc', offset: 3 }));
    for (const each of [open, closed]) {
      clients.sendFrame(each, frame, 3, 3);
      clients.send(each, { type: 'pong' });
    }
    expect(openSocket.sent).toEqual([{ type: 'output', data: 'abc', offset: 3 }, { type: 'pong' }]);
    expect(closedSocket.sent).toEqual([]);
    expect((await metrics.bytesOut.get()).values[0]?.value).toBe(3);
  });

  it('spends input from a token bucket: a burst, then the sustained rate; input over budget is a violation', () => {
    const { clients } = setup();
    const [c, socket] = client();
    let now = 1_000_000;
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => now);
    try {
      c.inputRefilledAt = now;
      expect(clients.spendInput(c, 'x'.repeat(INPUT_BURST_BYTES - 2))).toBe(INPUT_BURST_BYTES - 2);
      expect(clients.spendInput(c, 'é')).toBe(2);
      expect(clients.spendInput(c, 'x')).toBeNull();
      expect(socket.sent).toEqual([{ type: 'error', message: 'Input is arriving too fast; some was dropped' }]);
      expect(c.violations).toBe(1);
      now += 500;
      expect(clients.spendInput(c, 'x'.repeat(INPUT_BYTES_PER_SECOND / 2))).toBe(INPUT_BYTES_PER_SECOND / 2);
      expect(clients.spendInput(c, 'x')).toBeNull();
      now += 60_000;
      expect(clients.spendInput(c, 'x'.repeat(INPUT_BURST_BYTES))).toBe(INPUT_BURST_BYTES);
    } finally {
      clock.mockRestore();
    }
  });

  it('closes a client after repeated violations (4008), and only that client', () => {
    const { clients } = setup();
    const [bad, badSocket] = client();
    const [, goodSocket] = client();
    for (let i = 1; i < MAX_VIOLATIONS; i += 1) clients.violation(bad, `bad ${i}`);
    expect(badSocket.closedWith).toBeNull();
    clients.violation(bad, 'once more');
    expect(badSocket.closedWith).toBe(4008);
    expect(badSocket.sent.at(-1)).toEqual({ type: 'error', message: 'Too many invalid messages; closing this connection' });
    expect(goodSocket.closedWith).toBeNull();
  });
});
