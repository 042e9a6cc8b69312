import { createHash } from 'node:crypto';
import { eventually } from '../support/eventually.js';
import { modesAfter, newClientId, SequencedInput, sendForModes, sha256OnScreen, welcomeSeq } from '../support/sequenced-input.js';
import { replicaSuite } from '../support/replica-suite.js';
import type { ApiClient } from '../support/server-cluster.js';
import type { ServerFrame } from '../support/terminal-client.js';
import { TerminalTestClient } from '../support/terminal-client.js';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * The low-latency additions across two replicas of the built server on one Redis (docs/terminal.md,
 * "Several replicas"): the owner writes each seq once whichever replica a client reaches, the last
 * seq per client_id lives in Redis for `welcome`, and acks and modes reach a follower's clients
 * through the output stream. Replica 0 owns each terminal (its client connects first).
 */
describe('terminal low-latency additions across replicas', () => {
  const suite = replicaSuite('term-low-latency', 2);

  const open = async (api: ApiClient, id: string, clientId: string | null): Promise<[TerminalTestClient, ServerFrame]> => {
    const query: Record<string, string> = clientId ? { client_id: clientId } : {};
    const client = await TerminalTestClient.connect(api.baseUrl, id, { token: suite.account.tokens.access_token, query });
    suite.clients.push(client);
    const welcome = await client.waitForFrame((f) => f.type === 'welcome', 20_000);
    client.resize(200, 50);
    return [client, welcome];
  };

  it('writes input resent on another replica once: follower to owner, owner to follower', async () => {
    const env = await suite.apis[0].createRunning(suite.account);
    // Replica 0 owns the terminal: its client came first.
    const [watcher] = await open(suite.apis[0], env.id, null);
    const id = newClientId();
    const input = new SequencedInput();

    const [onFollower, first] = await open(suite.apis[1], env.id, id);
    expect(welcomeSeq(first)).toBe(0);
    input.send(onFollower, 'cd "$(mktemp -d)" && cat > replicas.txt\r');
    input.send(onFollower, 'one\n');
    input.send(onFollower, 'two\n');
    await input.acked(onFollower);
    input.lose('three\n');
    await onFollower.close();

    const [onOwner, second] = await open(suite.apis[0], env.id, id);
    expect(welcomeSeq(second)).toBe(3);
    input.resend(onOwner, 0);
    input.send(onOwner, 'four\n');
    await input.acked(onOwner);
    input.lose('five\n');
    await onOwner.close();

    const [back, third] = await open(suite.apis[1], env.id, id);
    expect(welcomeSeq(third)).toBe(5);
    input.resend(back, 2);
    input.send(back, '\x04');
    await input.acked(back);
    const hash = await sha256OnScreen(back, 'replicas.txt', (data) => input.send(back, data));
    expect(hash).toBe(sha256('one\ntwo\nthree\nfour\nfive\n'));
    expect(watcher.frames.some((f) => 'ack' in f || f.type === 'ack' || f.type === 'modes')).toBe(false);
  }, 90_000);

  it("tells a follower's client the owner's acks (alone, without echo) and the pane's modes", async () => {
    const env = await suite.apis[0].createRunning(suite.account);
    await open(suite.apis[0], env.id, null);
    const input = new SequencedInput();
    const [client] = await open(suite.apis[1], env.id, newClientId());
    await modesAfter(client, 0, { echo: false, canonical: false, alt_screen: false });
    await sendForModes(client, input, 'read -s secret\r', { echo: false, canonical: true });
    input.send(client, 'x');
    await client.waitForFrame((f) => f.type === 'ack' && f.seq === 2, 20_000);
    await sendForModes(client, input, '\r', { echo: false, canonical: false });
    await sendForModes(client, input, 'less /etc/passwd\r', { alt_screen: true });
    input.send(client, 'q');
  }, 90_000);
  // Last: it kills replica 0.
  it('a replica that takes the terminal over knows what its predecessor wrote: a resend is still written once', async () => {
    const env = await suite.apis[0].createRunning(suite.account);
    const [onOwner] = await open(suite.apis[0], env.id, null);
    const input = new SequencedInput();
    const [client] = await open(suite.apis[1], env.id, newClientId());
    input.send(client, 'cd "$(mktemp -d)" && cat > takeover.txt\r');
    input.send(client, 'one\n');
    input.send(client, 'two\n');
    await input.acked(client);
    const ownerTmuxClients = await suite.cluster.tmuxClients(env.id);

    suite.cluster.servers[0].kill('SIGKILL');
    await suite.cluster.servers[0].exited;
    await onOwner.closed;
    // Replica 1 takes over (it has a client) with the seqs its predecessor recorded in Redis.
    await eventually(async () => {
      const now = await suite.cluster.tmuxClients(env.id);
      expect(now).toHaveLength(1);
      expect(now).not.toEqual(ownerTmuxClients);
    }, 20_000);
    input.resend(client, 0);
    input.send(client, 'three\n');
    input.send(client, '\x04');
    await input.acked(client);
    const hash = await sha256OnScreen(client, 'takeover.txt', (data) => input.send(client, data));
    expect(hash).toBe(sha256('one\ntwo\nthree\n'));
  }, 90_000);
});
