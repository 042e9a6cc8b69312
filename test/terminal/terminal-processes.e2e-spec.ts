import { existsSync } from 'node:fs';
import { environmentProcesses } from '../../src/runtime/local/process-tree.js';
import { eventually } from '../support/eventually.js';
import { ApiClient, ClusterAccount, ServerCluster } from '../support/server-cluster.js';
import { ServerFrame, TerminalTestClient } from '../support/terminal-client.js';

/**
 * The terminal across API server processes (the compiled server, as deployed): the tmux server of
 * an environment outlives the process that started it, so a crash, a restart or a second replica
 * never costs the user their shell.
 */
describe('the terminal across server processes', () => {
  const COUNTER = 'i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.2; done';
  const TEST_TIMEOUT_MS = 90_000;

  let cluster: ServerCluster | undefined;
  const clients: TerminalTestClient[] = [];

  const connect = async (api: ApiClient, environmentId: string, account: ClusterAccount): Promise<TerminalTestClient> => {
    const client = await TerminalTestClient.connect(api.baseUrl, environmentId, { token: account.tokens.access_token });
    clients.push(client);
    return client;
  };

  /** Connected, greeted, and the session's first output (the prompt or a redraw) arrived. */
  const attach = async (
    api: ApiClient,
    environmentId: string,
    account: ClusterAccount,
  ): Promise<{ client: TerminalTestClient; welcome: ServerFrame }> => {
    const client = await connect(api, environmentId, account);
    const welcome = await client.waitForFrame((f) => f.type === 'welcome', 20_000);
    await eventually(() => expect(client.offset).toBeGreaterThan(0), 20_000, 20);
    return { client, welcome };
  };

  /** The highest `tick-N` the client has seen (a number cut at a frame boundary only ever reads lower). */
  const maxTick = (client: TerminalTestClient): number =>
    Math.max(-1, ...[...client.screen.matchAll(/tick-(\d+)/g)].map((match) => Number(match[1])));

  /** Deletes through the API, then checks that nothing of the environment is left on the host. */
  const deleteAndVerify = async (api: ApiClient, account: ClusterAccount, id: string): Promise<void> => {
    const terminated = await api.deleteAndWait(account, id);
    expect(terminated.status).toBe('terminated');
    expect(existsSync(cluster!.environmentDir(id))).toBe(false);
    expect(await cluster!.hasTmuxSession(id)).toBe(false);
    await eventually(async () => expect([...(await environmentProcesses(id)).pids]).toEqual([]), 10_000);
  };

  beforeEach(() => {
    cluster = ServerCluster.create('terminal_processes');
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await cluster?.close();
    cluster = undefined;
  }, 60_000);

  it(
    'survives a SIGKILL of the API server: the next process serves the same tmux session, nothing typed is lost',
    async () => {
      const first = await cluster!.start();
      const account = await first.api.register();
      const env = await first.api.createRunning(account);

      const { client: before } = await attach(first.api, env.id, account);
      before.run('echo typed-before-kill-$((40+2))');
      await before.waitForScreen(/typed-before-kill-42/);
      before.run(COUNTER);
      await eventually(() => expect(maxTick(before)).toBeGreaterThanOrEqual(3), 20_000, 20);

      first.server.kill('SIGKILL');
      expect(await first.server.exited).toMatchObject({ signal: 'SIGKILL' });
      expect((await before.closed).code).toBe(1006);
      const seenBeforeKill = maxTick(before);
      // The tmux server is no child of the API server: the session outlived it.
      expect(await cluster!.hasTmuxSession(env.id)).toBe(true);

      const second = await cluster!.start();
      // The access token is still valid: same secret, and the token store is in the shared database.
      const { client: after, welcome } = await attach(second.api, env.id, account);
      expect(welcome).toMatchObject({
        environment: { id: env.id, status: 'running' },
        session: { name: `devpocket_${env.id}`, resumed: false },
      });
      // The same loop in the same shell kept counting while no API server was there.
      await eventually(() => expect(maxTick(after)).toBeGreaterThan(seenBeforeKill), 20_000, 20);
      expect(await second.api.get(account, env.id)).toMatchObject({ phase: 'running', status: 'running' });

      after.input('\u0003');
      after.run('echo loop-stopped-$((3*3))');
      await after.waitForScreen(/loop-stopped-9/);
      // `[e]cho` keeps this very line out of the count: only the line typed before the kill matches.
      after.run("echo history-count=$(history | grep -c '[e]cho typed-before-kill')");
      await after.waitForScreen(/history-count=1\b/);

      await deleteAndVerify(second.api, account, env.id);
      expect((await after.closed).code).toBe(4009);
      expect((await second.server.stop()).code).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'serves one environment from two API server processes at once: each types, both see',
    async () => {
      const [one, two] = await Promise.all([cluster!.start(), cluster!.start()]);
      const account = await one.api.register();
      // Created through the second process, used through both: all state is in the database and under DATA_DIR.
      const env = await two.api.createRunning(account);

      const [{ client: a }, { client: b }] = await Promise.all([attach(one.api, env.id, account), attach(two.api, env.id, account)]);
      a.run('echo from-one-$((6*7))');
      await a.waitForScreen(/from-one-42/);
      await b.waitForScreen(/from-one-42/);
      b.run('echo from-two-$((7*8))');
      await b.waitForScreen(/from-two-56/);
      await a.waitForScreen(/from-two-56/);

      // Deleting through one process ends the terminals of both: each loses its upstream.
      await deleteAndVerify(one.api, account, env.id);
      expect((await a.closed).code).toBe(4009);
      expect((await b.closed).code).toBe(4009);
      const [oneExit, twoExit] = await Promise.all([one.server.stop(), two.server.stop()]);
      expect(oneExit.code).toBe(0);
      expect(twoExit.code).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'closes terminals with 1001 on SIGTERM and leaves the tmux session running for the next process',
    async () => {
      const first = await cluster!.start();
      const account = await first.api.register();
      const env = await first.api.createRunning(account);

      const { client: before } = await attach(first.api, env.id, account);
      before.run('survivor=alive-$((3*11)); echo marker-$((9*9))');
      await before.waitForScreen(/marker-81/);

      first.server.kill('SIGTERM');
      expect(await before.closed).toMatchObject({ code: 1001 });
      expect((await first.server.exited).code).toBe(0);
      expect(await cluster!.hasTmuxSession(env.id)).toBe(true);

      const second = await cluster!.start();
      const { client: after } = await attach(second.api, env.id, account);
      // tmux redraws the screen as it was, and the shell still holds its variables.
      await after.waitForScreen(/marker-81/);
      after.run('echo "still-$survivor"');
      await after.waitForScreen(/still-alive-33/);

      await deleteAndVerify(second.api, account, env.id);
      expect((await after.closed).code).toBe(4009);
      expect((await second.server.stop()).code).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );
});
