import { createHash, randomBytes } from 'node:crypto';
import { TerminalHub } from '../../src/terminal/terminal.hub.js';
import { eventually } from '../support/eventually.js';
import { ackOf, modesAfter, newClientId, SequencedInput, sendForModes, sha256OnScreen, welcomeSeq } from '../support/sequenced-input.js';
import type { ServerFrame, TerminalTestClient } from '../support/terminal-client.js';
import { terminalSuite } from '../support/terminal-suite.js';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
const NEW_FIELDS = ['ack', 'input', 'seq'];
const NEW_TYPES = ['ack', 'modes'];

/** The low-latency additions of the terminal protocol (docs/terminal.md), in one process, against real tmux. */
describe('terminal: low-latency additions', () => {
  const t = terminalSuite('Low Latency', { TERMINAL_CLIENT_WINDOW_BYTES: '65536' });

  const open = async (clientId: string | null): Promise<[TerminalTestClient, ServerFrame]> => {
    const client = await t.connect(clientId ? { query: { client_id: clientId } } : {});
    const welcome = await client.waitForFrame((f) => f.type === 'welcome');
    client.resize(200, 50);
    return [client, welcome];
  };

  it('an old client (none of the new fields) sees none of the new messages or fields', async () => {
    const [client, welcome] = await open(null);
    expect(welcome.input).toBeUndefined();
    client.run('printf "old-%s\\n" $((20+1)); stty -echo; stty echo');
    await client.waitForScreen(/old-21/);
    client.run('less /etc/passwd');
    await client.waitForScreen(/root/);
    client.input('q');
    client.run('echo back-$((1+1))');
    await client.waitForScreen(/back-2/);
    for (const frame of client.frames) {
      expect(NEW_TYPES).not.toContain(frame.type);
      for (const field of NEW_FIELDS) expect(frame).not.toHaveProperty(field);
    }
  });

  it('a bad client_id is refused like other bad parameters', async () => {
    const client = await t.connect({ query: { client_id: 'short' } });
    expect((await client.closed).code).toBe(4008);
  });

  it('writes input resent after a reconnect once: written seqs are dropped, the others written once, in order', async () => {
    const id = newClientId();
    const input = new SequencedInput();
    const [first, welcome] = await open(id);
    expect(welcome.input).toEqual({ client_id: id, seq: 0 });
    input.send(first, 'cd "$(mktemp -d)" && cat > once.txt\r');
    input.send(first, 'one\n');
    input.send(first, 'two\n');
    await input.acked(first);
    // Sent, but lost with the link: the server never saw them.
    input.lose('three\n');
    input.lose('four\n');
    await first.close();

    const [second, again] = await open(id);
    expect(welcomeSeq(again)).toBe(3);
    // The console resends what is not acknowledged; a careless client resends everything.
    input.resend(second, 0);
    input.send(second, '\x04');
    await input.acked(second);
    const hash = await sha256OnScreen(second, 'once.txt', (data) => input.send(second, data));
    expect(hash).toBe(sha256('one\ntwo\nthree\nfour\n'));
    expect(
      second.frames.filter((f) => f.type === 'output').every((f) => typeof f.ack === 'number'),
      'every output frame after the first seq carries ack',
    ).toBe(true);
  });

  it('acknowledges input without echo alone, and counts a resend as a duplicate', async () => {
    const id = newClientId();
    const input = new SequencedInput();
    const [client] = await open(id);
    input.send(client, 'read -s secret\r');
    await input.acked(client);
    input.send(client, 'x');
    await client.waitForFrame((f) => f.type === 'ack' && f.seq === 2);
    input.resend(client, 1);
    input.send(client, '\r');
    input.send(client, 'echo done-$((3+4))\r');
    await client.waitForScreen(/done-7/);
    expect(ackOf(client)).toBe(4);
  });

  it('keeps a multi-part paste of 1 MiB whole while another client types', async () => {
    const id = newClientId();
    const input = new SequencedInput();
    const [paster] = await open(id);
    const [typist] = await open(null);
    typist.run('cd "$(mktemp -d)" && stty -echo && cat > paste.txt');
    await eventually(() => expect(typist.screen).toMatch(/cat > paste\.txt/), 10_000, 20);
    // Lines (the terminal's line discipline takes at most 4 KiB per line) of random text, 1 MiB in all.
    const paste = Array.from({ length: 16_384 }, () => `${randomBytes(47).toString('base64').slice(0, 63)}\n`).join('');
    expect(paste.length).toBe(1024 * 1024);
    const CHUNK = 32 * 1024;
    const chunks = Array.from({ length: paste.length / CHUNK }, (_, i) => paste.slice(i * CHUNK, (i + 1) * CHUNK));
    input.send(paster, paste.slice(0, CHUNK), true);
    await input.acked(paster);
    typist.input('typed-1\n');
    for (const chunk of chunks.slice(1, -1)) input.send(paster, chunk, true);
    typist.input('typed-2\n');
    input.send(paster, paste.slice(-CHUNK));
    await input.acked(paster, 60_000);
    typist.input('\x04');
    typist.input('stty echo\r');
    const hash = await sha256OnScreen(typist, 'paste.txt', (data) => typist.input(data));
    expect(hash).toBe(sha256(`${paste}typed-1\ntyped-2\n`));
  }, 120_000);

  /**
   * A client paced by `received` (reporting each frame as it comes), whose reports then stop while
   * `yes` floods the pane, until the server finds it behind. `reporting(true)` reports again.
   */
  const pacedClientBehindAFlood = async () => {
    const input = new SequencedInput();
    const [client, welcome] = await open(newClientId());
    const state = { reporting: true, reported: (welcome.session as { offset: number }).offset };
    const report = (): void => {
      state.reported = client.offset;
      client.send({ type: 'received', offset: state.reported });
    };
    client.send({ type: 'received', offset: state.reported });
    client.socket.on('message', () => {
      if (state.reporting) report();
    });
    input.send(client, 'echo paced-$((2+3))\r');
    await client.waitForScreen(/paced-5/);
    state.reporting = false;
    input.send(client, 'yes flood-line\r');
    const session = t.app.app.get(TerminalHub).session(t.env.id);
    await eventually(() => expect([...(session?.clients ?? [])].some((c) => c.mode === 'behind')).toBe(true), 20_000, 20);
    const reporting = (on: boolean): void => {
      state.reporting = on;
      if (on) report();
    };
    return { client, input, reported: state.reported, reporting };
  };

  it('a client paced by `received` that stops reporting is sent no more, then jumps to the current screen', async () => {
    const { client, input, reported, reporting } = await pacedClientBehindAFlood();
    // Nothing beyond the window (and the frame that filled it) was sent unreported.
    expect(client.offset - reported).toBeLessThan(64 * 1024 + 512 * 1024);
    const frames = client.frames.length;
    reporting(true);
    await client.waitForFrame((f) => f.type === 'reset' && client.frames.indexOf(f) >= frames, 20_000);
    input.send(client, '\x03');
    input.send(client, 'echo stopped-$((6+1))\r');
    await client.waitForScreen(/stopped-7/, 20_000);
  }, 60_000);

  it('a paced client behind a flood that presses Ctrl-C jumps to the current screen right after it is written, before reporting', async () => {
    const { client, input, reporting } = await pacedClientBehindAFlood();
    const frames = client.frames.length;
    const seq = input.send(client, '\x03');
    // Nothing more was reported: the jump comes from the input.
    const reset = await client.waitForFrame((f) => f.type === 'reset' && client.frames.indexOf(f) >= frames, 20_000);
    reporting(true);
    input.send(client, 'echo stopped-$((4+4))\r');
    await client.waitForScreen(/stopped-8/, 20_000);
    // The stream goes on from the reset's offset, without a gap; what was read after Ctrl-C was written acknowledges it.
    const after = client.frames.slice(client.frames.indexOf(reset) + 1).filter((f) => f.type === 'output');
    const begins = (f: ServerFrame): number => (f.offset as number) - Buffer.byteLength(f.data as string);
    expect(begins(after[0])).toBe(reset.offset);
    after.slice(1).forEach((f, i) => expect(begins(f)).toBe(after[i].offset));
    expect(after.some((f) => (f.ack as number) >= seq)).toBe(true);
  }, 60_000);

  it('tells the pane modes: echo and canonical mode, the alternate screen', async () => {
    const id = newClientId();
    const input = new SequencedInput();
    const [client] = await open(id);
    const prompt = { echo: false, canonical: false, alt_screen: false };
    // After welcome, once known: a bash prompt is readline's (it echoes itself).
    await modesAfter(client, 0, prompt);
    // Each step waits for the prompt before the next command: typed ahead, it would go to the program.
    const step = (data: string, wanted: Record<string, unknown>): Promise<void> => sendForModes(client, input, data, wanted);
    await step('cat\r', { echo: true, canonical: true });
    await step('\x03', prompt);
    await step('stty -echo; cat\r', { echo: false, canonical: true });
    await step('\x03', prompt);
    input.send(client, 'stty echo\r');
    await step('read -s secret\r', { echo: false, canonical: true });
    await step('\r', prompt);
    await step('less /etc/passwd\r', { alt_screen: true, echo: false, canonical: false });
    await step('q', prompt);
  }, 60_000);
});
