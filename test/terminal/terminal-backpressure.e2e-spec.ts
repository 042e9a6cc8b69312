import type { Socket } from 'node:net';
import { TerminalHub } from '../../src/terminal/terminal.hub.js';
import { HIGH_WATER_BYTES } from '../../src/terminal/fan-out.js';
import { createEnvironmentsApp, EnvironmentBody, EnvironmentsApp } from '../support/environments.js';
import { eventually } from '../support/eventually.js';
import { TerminalTestClient } from '../support/terminal-client.js';
import type { TestAccount } from '../support/accounts.js';

/**
 * tmux sends a client the screen, not every byte a program prints: plain text that scrolls fast is
 * mostly skipped. A large window full of changing random text makes it send megabytes a second,
 * more than the kernel's socket buffers absorb, so the server's own queues come into play.
 */
const FLOOD = "timeout 6 sh -c 'while :; do head -c 3000000 /dev/urandom | base64 -w 990; done'";

/** The TCP socket under a test client's WebSocket: pausing it makes the client stop reading. */
const tcp = (client: TerminalTestClient): Socket => (client.socket as unknown as { _socket: Socket })._socket;

describe('terminal backpressure', () => {
  let app: EnvironmentsApp;
  let owner: TestAccount & { id: string };
  let env: EnvironmentBody;
  const clients: TerminalTestClient[] = [];

  const connect = async (): Promise<TerminalTestClient> => {
    const client = await TerminalTestClient.connect(app.baseUrl, env.id, { token: owner.tokens.access_token });
    clients.push(client);
    await client.waitForFrame((f) => f.type === 'welcome');
    return client;
  };

  beforeAll(async () => {
    app = await createEnvironmentsApp();
    owner = await app.account('pro');
    env = await app.createRunning(owner, { name: 'Backpressure' });
  }, 120_000);

  afterEach(async () => {
    for (const c of clients) tcp(c).resume();
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  afterAll(() => app?.close(), 120_000);

  it('a client that stops reading never holds the others back, stays bounded, and is redrawn when it drains', async () => {
    const fast = await connect();
    const slow = await connect();
    fast.resize(1000, 400);
    tcp(slow).pause();
    fast.run(`${FLOOD}; clear; echo bulk-$((20+3))-done`);
    await fast.waitForScreen(/bulk-23-done/, 60_000);

    // the server never queued more than about the high-water mark for the slow client
    const session = app.app.get(TerminalHub).session(env.id)!;
    const slowOnServer = [...session.clients].find((c) => c.mode === 'behind');
    expect(slowOnServer).toBeDefined();
    expect(slowOnServer!.ws.bufferedAmount).toBeLessThan(HIGH_WATER_BYTES + 1024 * 1024);

    tcp(slow).resume();
    await slow.waitForFrame((f) => f.type === 'reset', 30_000);
    await slow.waitForScreen(/bulk-23-done/, 30_000);
  }, 120_000);

  it('when the only client stops reading, the hub stops reading the upstream instead of buffering', async () => {
    const only = await connect();
    only.resize(1000, 400);
    only.run('echo ready-$((1+1))');
    await only.waitForScreen(/ready-2/);
    tcp(only).pause();
    only.run(`${FLOOD}; clear; echo alone-$((30+3))-done`);
    const session = app.app.get(TerminalHub).session(env.id)!;
    await eventually(() => expect((session as unknown as { paused: boolean }).paused).toBe(true), 20_000);
    const client = [...session.clients][0];
    // nothing piles up on the server: at most one frame beyond the high-water mark
    expect(client.ws.bufferedAmount).toBeLessThan(HIGH_WATER_BYTES + 1024 * 1024);
    expect(client.mode).toBe('live');
    tcp(only).resume();
    await only.waitForScreen(/alone-33-done/, 60_000);
    expect(only.gaps).toBe(0);
    expect(only.frames.some((f) => f.type === 'reset')).toBe(false);
  }, 120_000);
});
