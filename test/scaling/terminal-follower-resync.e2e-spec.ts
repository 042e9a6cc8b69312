import type { Socket } from 'node:net';
import { eventually } from '../support/eventually.js';
import { testRedisUrl } from '../support/redis.js';
import { ApiClient, ClusterAccount, ServerCluster } from '../support/server-cluster.js';
import { TerminalTestClient } from '../support/terminal-client.js';

/** The TCP socket under a test client's WebSocket: pausing it makes the client stop reading. */
const tcp = (client: TerminalTestClient): Socket => (client.socket as unknown as { _socket: Socket })._socket;

/** Random text in a large window: tmux sends megabytes a second (see test/terminal/terminal-backpressure.e2e-spec.ts). */
const FLOOD = 'while :; do head -c 3000000 /dev/urandom | base64 -w 990; done';

/**
 * How far the stream goes on while the follower's client does not read. Before its replica stops
 * reading the shared stream, that client takes at most what the kernel's socket buffers hold (a
 * few MiB on loopback) plus the server's high-water mark (1 MiB) and a frame; the stream keeps
 * only the last 64 KiB (TERMINAL_REPLAY_BUFFER_BYTES below). Far more than both together.
 */
const FLOOD_BYTES = 16 * 1024 * 1024;

/**
 * A replica that follows an environment's terminal (another replica owns its tmux client) and
 * whose clients all stop reading stops reading the shared output stream; the owner goes on and the
 * stream is trimmed past it. When its clients read again, the follower skips what it can no longer
 * have: its clients stay connected, get `reset` and a redraw, and the terminal works on, with the
 * stream's offsets and one tmux client.
 */
describe('a follower that falls behind the shared output stream', () => {
  const TEST_TIMEOUT_MS = 120_000;
  let cluster: ServerCluster;
  let owner: ApiClient;
  let follower: ApiClient;
  let account: ClusterAccount;
  const clients: TerminalTestClient[] = [];
  const env = { TERMINAL_REPLAY_BUFFER_BYTES: String(64 * 1024) };

  beforeAll(async () => {
    cluster = ServerCluster.create('follower-resync', { redisUrl: testRedisUrl() });
    [{ api: owner }, { api: follower }] = await Promise.all([cluster.start(env), cluster.start(env)]);
    account = await owner.register();
  }, 120_000);

  afterAll(async () => {
    for (const client of clients) tcp(client).resume();
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await cluster?.close();
  }, 60_000);

  const joined = (api: ApiClient, id: string): Promise<TerminalTestClient> =>
    TerminalTestClient.welcomed(api.baseUrl, id, { token: account.tokens.access_token }, (client) => clients.push(client));

  it(
    'keeps its clients when the stream was trimmed past it: a reset, a redraw, and the terminal goes on',
    async () => {
      const { id } = await owner.createRunning(account);
      // The first client's replica takes the lease: it owns the terminal, the other follows.
      const typist = await joined(owner, id);
      const behind = await joined(follower, id);
      typist.resize(1000, 400);
      typist.run('echo ready-$((1+1))');
      await behind.waitForScreen(/ready-2/, 20_000);
      expect(await cluster.tmuxClients(id)).toHaveLength(1);

      tcp(behind).pause();
      const from = typist.offset;
      typist.run(FLOOD);
      await eventually(() => expect(typist.offset - from).toBeGreaterThan(FLOOD_BYTES), 60_000, 50);
      typist.input('\x03');
      typist.run('clear; echo flood-$((2*3))-over');
      await typist.waitForScreen(/flood-6-over/, 20_000);

      tcp(behind).resume();
      const reset = await Promise.race([
        behind.waitForFrame((f) => f.type === 'reset', 60_000),
        behind.closed.then(({ code, reason }) => {
          throw new Error(`the follower's client was closed (${code} ${reason})`);
        }),
      ]);
      expect(reset.offset).toBeGreaterThan(from);

      behind.run('echo after-$((6*7))');
      await behind.waitForScreen(/after-42/, 20_000);
      await typist.waitForScreen(/after-42/, 20_000);
      // Output follows on without a gap from one frame to the next, but for a `reset`, which says where it goes on.
      let at: number | null = null;
      let skipped = 0;
      for (const frame of behind.frames) {
        if (frame.type === 'reset') {
          if (at !== null && (frame.offset as number) > at) skipped += 1;
          at = frame.offset as number;
        } else if (frame.type === 'output') {
          const offset = frame.offset as number;
          if (at !== null) expect(offset - Buffer.byteLength(frame.data as string)).toBe(at);
          at = offset;
        }
      }
      expect(skipped).toBeGreaterThan(0);
      await eventually(() => expect(behind.offset).toBe(typist.offset), 10_000);
      expect(behind.socket.readyState).toBe(behind.socket.OPEN);
      expect(await cluster.tmuxClients(id)).toHaveLength(1);
    },
    TEST_TIMEOUT_MS,
  );
});
