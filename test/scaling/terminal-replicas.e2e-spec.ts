import { randomBytes } from 'node:crypto';
import { eventually } from '../support/eventually.js';
import { replicaSuite } from '../support/replica-suite.js';
import type { ApiClient } from '../support/server-cluster.js';
import { TerminalTestClient } from '../support/terminal-client.js';

/** The bytes of `client`'s stream from offset `from` on (its stream is contiguous: checked by the callers). */
function bytesFrom(client: TerminalTestClient, from: number): Buffer {
  if (client.streamStart === null) throw new Error('the client received no output');
  return Buffer.from(client.stream, 'utf8').subarray(from - client.streamStart);
}

/**
 * One terminal upstream per environment across three replicas of the built server on one
 * database, one DATA_DIR (the local runtime's tmux servers) and one Redis: one tmux client
 * whichever replicas the clients reach, the same offsets everywhere, exact resumes on another
 * replica, limits counted over all of them, and the owner's SIGKILL handed over to another replica
 * with the tmux session intact. Real tmux, real Redis; the SIGKILL test runs last (it kills a replica).
 */
describe('one terminal upstream per environment across replicas', () => {
  const TEST_TIMEOUT_MS = 90_000;
  const LIMIT = 3;
  const limits = { TERMINAL_MAX_CLIENTS_PER_ENVIRONMENT: String(LIMIT), TERMINAL_GRACE_SECONDS: '30' };
  // A free account holds one environment: each test has its own.
  const suite = replicaSuite('term-replicas', 3, limits);

  /** A terminal client of `api`, welcomed (or closed: the caller looks at `closed`). */
  const open = async (api: ApiClient, id: string, resume?: number): Promise<TerminalTestClient> => {
    const client = await TerminalTestClient.connect(api.baseUrl, id, { token: suite.account.tokens.access_token, resume });
    suite.clients.push(client);
    return client;
  };
  const welcomed = (client: TerminalTestClient) => client.waitForFrame((f) => f.type === 'welcome', 20_000);
  /** A client of `api` past its welcome. */
  const joined = async (api: ApiClient, id: string): Promise<TerminalTestClient> => {
    const client = await open(api, id);
    await welcomed(client);
    return client;
  };

  it(
    'runs one tmux client for clients on three replicas, with the same bytes at the same offsets, and input through any of them arrives once, in order',
    async () => {
      const env = await suite.apis[0].createRunning(suite.account);
      // All three at once: they race for the lease, one wins, the others follow it.
      const [a, b, c] = await Promise.all(suite.apis.map((api) => open(api, env.id)));
      await Promise.all([a, b, c].map(welcomed));
      expect(await suite.cluster.tmuxClients(env.id)).toHaveLength(1);

      // A line typed one character per frame through each of two replicas (at least one of them does not own
      // the terminal): the shell runs exactly that line, each character once and in order.
      for (const typist of [b, c]) {
        const word = `w${randomBytes(6).toString('hex')}`;
        // The shell prints the word whole, in one write (`echo` of `printf '%s'` of its characters), which the typed line never shows.
        for (const char of `echo $(printf '%s' ${word.split('').join(' ')})-end\r`) typist.input(char);
        const printed = new RegExp(`${word}-end`);
        for (const client of [a, b, c]) await client.waitForScreen(printed, 20_000);
      }
      await eventually(() => {
        expect(new Set([a.offset, b.offset, c.offset]).size).toBe(1);
      }, 10_000);
      for (const client of [a, b, c]) expect(client.gaps).toBe(0);
      // The same bytes at the same offsets on every replica: the shared stream's.
      const from = Math.max(a.streamStart ?? 0, b.streamStart ?? 0, c.streamStart ?? 0);
      expect(bytesFrom(b, from).equals(bytesFrom(a, from))).toBe(true);
      expect(bytesFrom(c, from).equals(bytesFrom(a, from))).toBe(true);
      expect(await suite.cluster.tmuxClients(env.id)).toHaveLength(1);

      // One size for the environment: the last resize through any replica is the one tmux client's.
      for (const [client, cols, rows] of [
        [b, 117, 41],
        [c, 93, 27],
      ] as const) {
        client.resize(cols, rows);
        await eventually(
          async () => expect(await suite.cluster.tmuxClients(env.id)).toEqual([expect.stringMatching(` ${cols}x${rows}$`)]),
          10_000,
        );
      }
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'resumes a client byte-exact on another replica',
    async () => {
      const env = await suite.apis[0].createRunning(suite.account);
      const watcher = await joined(suite.apis[0], env.id);
      const leaving = await joined(suite.apis[1], env.id);
      leaving.run('echo before-$((1+1))');
      await leaving.waitForScreen(/before-2/, 20_000);
      await eventually(() => expect(leaving.offset).toBe(watcher.offset), 10_000);
      const position = leaving.offset;
      await leaving.close();

      // Output it misses, typed on the first replica.
      watcher.run('for i in 1 2 3; do echo "missed-$i"; done');
      await watcher.waitForScreen(/missed-3/, 20_000);

      // Back on the third replica, which never served this environment before.
      const back = await open(suite.apis[2], env.id, position);
      const welcome = await welcomed(back);
      expect(welcome.session).toMatchObject({ resumed: true });
      await back.waitForScreen(/missed-3/, 20_000);
      expect(back.frames.some((frame) => frame.type === 'reset')).toBe(false);
      expect(back.gaps).toBe(0);
      const got = bytesFrom(back, position);
      expect(got.equals(bytesFrom(watcher, position).subarray(0, got.length))).toBe(true);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'counts the connection limit per environment over every replica',
    async () => {
      const env = await suite.apis[0].createRunning(suite.account);
      const admitted = [await open(suite.apis[0], env.id), await open(suite.apis[1], env.id), await open(suite.apis[2], env.id)];
      await Promise.all(admitted.map(welcomed));
      for (const api of suite.apis) {
        const refused = await open(api, env.id);
        expect((await refused.closed).code).toBe(4029);
      }
      // A slot given back on one replica can be taken on another (once that replica has written its count).
      await admitted[0].close();
      await eventually(async () => {
        const again = await open(suite.apis[1], env.id);
        const first = await again.waitForFrame((f) => f.type === 'welcome' || f.type === 'error', 10_000);
        expect(first.type).toBe('welcome');
      }, 20_000);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'hands the session over when its owner shuts down (SIGTERM): its clients get 1001, the others keep the same shell',
    async () => {
      const leaving = await suite.cluster.start(limits);
      const env = await suite.apis[0].createRunning(suite.account);
      const onOwner = await joined(leaving.api, env.id);
      onOwner.run('echo "pid-$$-$((3*5))"');
      await onOwner.waitForScreen(/pid-\d+-15/, 20_000);
      const pid = /pid-(\d+)-15/.exec(onOwner.screen)?.[1];
      const follower = await joined(suite.apis[1], env.id);
      const before = await suite.cluster.tmuxClients(env.id);
      expect(before).toHaveLength(1);

      leaving.server.kill('SIGTERM');
      expect((await onOwner.closed).code).toBe(1001);
      await eventually(async () => {
        const now = await suite.cluster.tmuxClients(env.id);
        expect(now).toHaveLength(1);
        expect(now).not.toEqual(before);
      }, 20_000);
      follower.run('echo "again-$$-$((4*5))"');
      await follower.waitForScreen(new RegExp(`again-${pid}-20`), 20_000);
      expect(follower.gaps).toBe(0);
      expect((await leaving.server.exited).code).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'hands the session over when its owner is killed: the same shell, offsets that go on, one tmux client',
    async () => {
      const env = await suite.apis[0].createRunning(suite.account);
      // The first client's replica takes the lease: replica 0 owns the terminal.
      const onOwner = await joined(suite.apis[0], env.id);
      const mark = `m${randomBytes(4).toString('hex')}`;
      onOwner.run(`export MARK=${mark}; echo "pid-$$-$MARK"`);
      await onOwner.waitForScreen(new RegExp(`pid-\\d+-${mark}`), 20_000);
      const pid = new RegExp(`pid-(\\d+)-${mark}`).exec(onOwner.screen)?.[1];
      expect(pid).toMatch(/^\d+$/);
      const follower = await joined(suite.apis[1], env.id);
      await eventually(() => expect(follower.offset).toBe(onOwner.offset), 10_000);
      const ownerTmuxClients = await suite.cluster.tmuxClients(env.id);
      expect(ownerTmuxClients).toHaveLength(1);

      suite.cluster.servers[0].kill('SIGKILL');
      await suite.cluster.servers[0].exited;
      expect((await onOwner.closed).code).toBe(1006);

      // The follower's replica takes over (it has a client) and attaches to the same tmux session.
      await eventually(async () => {
        const now = await suite.cluster.tmuxClients(env.id);
        expect(now).toHaveLength(1);
        expect(now).not.toEqual(ownerTmuxClients);
      }, 20_000);
      follower.run('echo "again-$$-$MARK"');
      await follower.waitForScreen(new RegExp(`again-${pid}-${mark}`), 20_000);
      expect(follower.gaps).toBe(0);

      // The owner's client comes back elsewhere and resumes exactly: its bytes survived in the stream.
      const back = await open(suite.apis[2], env.id, onOwner.offset);
      expect((await welcomed(back)).session).toMatchObject({ resumed: true });
      await back.waitForScreen(new RegExp(`again-${pid}-${mark}`), 20_000);
      expect(back.frames.some((frame) => frame.type === 'reset')).toBe(false);
      expect(back.gaps).toBe(0);
      expect(await suite.cluster.tmuxClients(env.id)).toHaveLength(1);
    },
    TEST_TIMEOUT_MS,
  );
});
