import { createHash } from 'node:crypto';
import { bothWays, FlakyLink } from '../support/flaky-link/flaky-link.js';
import { newClientId, SequencedInput, sha256OnScreen, welcomeSeq } from '../support/sequenced-input.js';
import { TerminalTestClient } from '../support/terminal-client.js';
import { terminalSuite } from '../support/terminal-suite.js';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * Exactly-once input through a bad link (the flaky-link proxy, its own process): a client that
 * keeps typing while its connection is reset and while it roams to another port (reset, then
 * reconnect through the new one), and that resends after each `welcome` what the server had not
 * written, as the console does (docs/terminal.md, "Low-latency additions"). Every line reaches the
 * shell once, in order.
 */
describe('terminal: exactly-once input through resets and roams', () => {
  const t = terminalSuite('Bad Link', {});
  let link: FlakyLink;

  beforeAll(async () => {
    link = await FlakyLink.start({ target: Number(new URL(t.app.baseUrl).port), seed: 7, ...bothWays({ delayMs: 20, jitterMs: 10 }) });
  });

  afterAll(() => link?.close());

  it('writes every typed line once, in order, across resets and roams', async () => {
    const id = newClientId();
    const input = new SequencedInput();
    const connect = async (): Promise<TerminalTestClient> => {
      const client = await TerminalTestClient.connect(link.url(), t.env.id, {
        token: t.owner.tokens.access_token,
        query: { client_id: id },
      });
      t.track(client);
      const welcome = await client.waitForFrame((f) => f.type === 'welcome', 20_000);
      // What the server had not written when the link broke goes again, in order.
      input.resend(client, welcomeSeq(welcome) ?? 0);
      return client;
    };

    let client = await connect();
    input.send(client, 'cd "$(mktemp -d)" && stty -echo && cat > typed.txt\r');
    let expected = '';
    const faults = ['reset', 'roam', 'reset', 'reset', 'roam'] as const;
    for (let round = 0; round <= faults.length; round += 1) {
      // A burst of lines, the fault in the middle of it: some are in flight when the link breaks.
      for (let line = 0; line < 20; line += 1) {
        const text = `r${round}-l${line}-${'x'.repeat(line)}\n`;
        expected += text;
        input.send(client, text);
        if (line === 10 && round < faults.length) {
          if (faults[round] === 'reset') await link.reset();
          else await link.roam();
          await client.closed;
          client = await connect();
        }
      }
    }
    input.send(client, '\x04');
    await input.acked(client);
    input.send(client, 'stty echo\r');
    const hash = await sha256OnScreen(client, 'typed.txt', (data) => input.send(client, data));
    expect(hash).toBe(sha256(expected));
    const stats = await link.stats();
    expect(stats.roams).toBe(2);
  }, 120_000);
});
