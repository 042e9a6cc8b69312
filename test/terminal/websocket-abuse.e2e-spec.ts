import type { Server } from 'node:http';
import { AuthService } from '../../src/auth/auth.service.js';
import { EnvironmentsService } from '../../src/environments/environments.service.js';
import type { TestAccount } from '../support/accounts.js';
import { createEnvironmentsApp, EnvironmentBody, EnvironmentsApp } from '../support/environments.js';
import { eventually } from '../support/eventually.js';
import { RawWebSocket } from '../support/raw-websocket.js';
import { TerminalTestClient } from '../support/terminal-client.js';

/** Frames the WebSocket library itself refuses, with the close code it answers them with. */
const BAD_FRAMES: { name: string; bytes: () => Buffer; code: number }[] = [
  { name: 'a frame over the 1 MiB limit', bytes: () => RawWebSocket.announce(2 * 1024 * 1024), code: 1009 },
  { name: 'a text frame that is not UTF-8', bytes: () => RawWebSocket.text(Buffer.from([0xe2, 0x28, 0xa1])), code: 1007 },
  { name: 'a frame with a reserved opcode', bytes: () => RawWebSocket.frame(0x3, Buffer.from('x')), code: 1002 },
];

type Moment = 'at once, with a bad token' | 'at once, before anything was checked' | 'right after welcome' | 'mid-stream';

/**
 * A frame the protocol library refuses, from anyone at any moment of a connection, closes only
 * that socket: the server keeps serving and other clients keep their output.
 */
describe('WebSocket frames the protocol refuses', () => {
  let app: EnvironmentsApp;
  let owner: TestAccount & { id: string };
  let attacker: TestAccount & { id: string };
  let bystanderEnv: EnvironmentBody;
  let attackerEnv: EnvironmentBody;
  let bystander: TerminalTestClient;
  let round = 0;

  beforeAll(async () => {
    app = await createEnvironmentsApp({ env: { TERMINAL_MAX_CONNECTIONS_PER_USER: '4' } });
    owner = await app.account('pro');
    attacker = await app.account('pro');
    [bystanderEnv, attackerEnv] = await Promise.all([
      app.createRunning(owner, { name: 'Bystander' }),
      app.createRunning(attacker, { name: 'Attacker' }),
    ]);
    bystander = await TerminalTestClient.connect(app.baseUrl, bystanderEnv.id, { token: owner.tokens.access_token });
    await bystander.waitForFrame((f) => f.type === 'welcome');
  }, 120_000);

  afterAll(async () => {
    await bystander?.close();
    await app?.close();
  }, 120_000);

  const url = (path: 'terminal' | 'logs', token: string): string =>
    `${app.baseUrl.replace(/^http/, 'ws')}/api/v1/ws/${path}/${attackerEnv.id}?token=${encodeURIComponent(token)}`;

  /** The server still answers HTTP and the bystander's terminal still echoes. */
  async function stillServing(): Promise<void> {
    expect((await fetch(`${app.baseUrl}/health`)).status).toBe(200);
    round += 1;
    bystander.run(`echo alive-${round}-$((6*7))`);
    await bystander.waitForScreen(new RegExp(`alive-${round}-42`));
  }

  async function attack(path: 'terminal' | 'logs', moment: Moment, bytes: Buffer): Promise<number | null> {
    if (moment === 'at once, with a bad token') return (await RawWebSocket.open(url(path, 'not-a-token'), bytes)).ended;
    if (moment === 'at once, before anything was checked')
      return (await RawWebSocket.open(url(path, attacker.tokens.access_token), bytes)).ended;
    const socket = await RawWebSocket.open(url(path, attacker.tokens.access_token));
    try {
      if (path === 'terminal') {
        await waitFor(() => socket.messages.some((m) => m.includes('"type":"welcome"')));
        if (moment === 'mid-stream') {
          socket.write(RawWebSocket.text(JSON.stringify({ type: 'input', data: 'echo mid-$((6*7))\r' })));
          await waitFor(() => socket.messages.some((m) => m.includes('mid-42')));
        }
      } else {
        // The logs socket sends its backlog first: the provisioning lines are there.
        await waitFor(() => socket.messages.some((m) => m.includes('[runtime]')));
      }
      socket.write(bytes);
      return await socket.ended;
    } finally {
      socket.destroy();
    }
  }

  const cases: [path: 'terminal' | 'logs', moment: Moment][] = [
    ['terminal', 'at once, with a bad token'],
    ['terminal', 'at once, before anything was checked'],
    ['terminal', 'right after welcome'],
    ['terminal', 'mid-stream'],
    ['logs', 'at once, with a bad token'],
    ['logs', 'at once, before anything was checked'],
    ['logs', 'mid-stream'],
  ];
  for (const [path, moment] of cases) {
    describe(`on the ${path} WebSocket, ${moment}`, () => {
      it.each(BAD_FRAMES)('$name closes only that socket, with $code', async ({ bytes, code }) => {
        expect(await attack(path, moment, bytes())).toBe(code);
        await stillServing();
      });
    });
  }

  it('a terminal socket that leaves while it is being checked takes no connection slot', async () => {
    const auth = app.app.get(AuthService);
    const checks: Promise<unknown>[] = [];
    const authenticate = auth.authenticate.bind(auth);
    const spy = vi.spyOn(auth, 'authenticate').mockImplementation((token: string) => {
      const check = authenticate(token);
      checks.push(check.catch(() => undefined));
      return check;
    });
    try {
      // Twice the per-user limit of sockets that hang up at once, before their token was checked.
      for (let i = 0; i < 8; i += 1) {
        const socket = await RawWebSocket.open(url('terminal', attacker.tokens.access_token));
        socket.destroy();
      }
      await waitFor(() => checks.length === 8);
      await Promise.all(checks);
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      spy.mockRestore();
    }
    const clients = await Promise.all(
      [1, 2, 3, 4].map(() => TerminalTestClient.connect(app.baseUrl, attackerEnv.id, { token: attacker.tokens.access_token })),
    );
    try {
      for (const client of clients) await client.waitForFrame((f) => f.type === 'welcome');
    } finally {
      await Promise.all(clients.map((client) => client.close()));
    }
  });

  it('a logs socket that leaves while it is being checked starts no follow', async () => {
    const environments = app.app.get(EnvironmentsService);
    const server: Server = app.app.getHttpServer();
    const connections = (): Promise<number> =>
      new Promise((resolve, reject) => server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
    // The check is held until the server has seen the clients leave: a client that leaves later is
    // indistinguishable from one that stays, and gets its log.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const specFor = environments.specFor.bind(environments);
    const specSpy = vi.spyOn(environments, 'specFor').mockImplementation(async (environment) => {
      const spec = await specFor(environment);
      await released;
      return spec;
    });
    const followSpy = vi.spyOn(environments, 'followLogs');
    try {
      const before = await connections();
      for (let i = 0; i < 3; i += 1) (await RawWebSocket.open(url('logs', attacker.tokens.access_token))).destroy();
      await waitFor(() => specSpy.mock.calls.length === 3);
      await eventually(async () => expect(await connections()).toBeLessThanOrEqual(before));
      release();
      await Promise.all(specSpy.mock.results.map((result) => (result.value as Promise<unknown>).catch(() => undefined)));
      await new Promise((resolve) => setImmediate(resolve));
      expect(followSpy).not.toHaveBeenCalled();
    } finally {
      release();
      specSpy.mockRestore();
      followSpy.mockRestore();
    }
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  await eventually(() => {
    if (!condition()) throw new Error('condition not met');
  }, timeoutMs);
}
