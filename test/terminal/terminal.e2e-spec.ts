import { terminalSuite } from '../support/terminal-suite.js';
import { eventually } from '../support/eventually.js';
import { TerminalTestClient } from '../support/terminal-client.js';
import { TerminalHub } from '../../src/terminal/terminal.hub.js';

/**
 * The terminal, end to end, written against the runtime port only: a real tmux session per
 * environment, real WebSockets.
 */
describe('terminal', () => {
  const t = terminalSuite('Terminal Test', {
    TERMINAL_MAX_CLIENTS_PER_ENVIRONMENT: '60',
    TERMINAL_MAX_CONNECTIONS_PER_USER: '80',
    TERMINAL_REPLAY_BUFFER_BYTES: '65536',
  });
  const connect = t.connect;

  it("follows the mobile client's flow: welcome first, input echoed, resize applied, ping answered", async () => {
    const client = await connect();
    const welcome = await client.waitForFrame((f) => f.type === 'welcome');
    expect(client.frames[0]?.type).toBe('welcome');
    expect(welcome).toMatchObject({
      message: 'Connected to Terminal Test',
      environment: { id: t.env.id, name: 'Terminal Test', template: 'debian', status: 'running' },
    });
    client.input('\n');
    client.run('echo hello-$((40 + 2))');
    await client.waitForScreen(/hello-42/);
    const outputs = client.frames.filter((f) => f.type === 'output');
    expect(outputs.every((f) => typeof f.data === 'string' && typeof f.offset === 'number')).toBe(true);

    client.resize(123, 37);
    await client.runUntil('echo cols=$(tput cols) rows=$(tput lines)', /cols=123 rows=37/);

    client.send({ type: 'ping', timestamp: Date.now() });
    await client.waitForFrame((f) => f.type === 'pong');
  });

  it('accepts the token as Authorization: Bearer and as the subprotocol bearer.<token>', async () => {
    const byHeader = await connect({ token: undefined, headers: { authorization: `Bearer ${t.owner.tokens.access_token}` } });
    await byHeader.waitForFrame((f) => f.type === 'welcome');
    const byProtocol = await connect({ token: undefined, protocols: [`bearer.${t.owner.tokens.access_token}`] });
    await byProtocol.waitForFrame((f) => f.type === 'welcome');
  });

  it('shares ONE session: two clients see the same output and either one can type', async () => {
    const a = await connect();
    const b = await connect();
    await a.waitForFrame((f) => f.type === 'welcome');
    await b.waitForFrame((f) => f.type === 'welcome');
    a.run('echo from-a-$((1+1))');
    await a.waitForScreen(/from-a-2/);
    await b.waitForScreen(/from-a-2/);
    b.run('echo from-b-$((2+2))');
    await a.waitForScreen(/from-b-4/);
    await b.waitForScreen(/from-b-4/);
    expect(t.app.app.get(TerminalHub).session(t.env.id)?.clients.size).toBe(2);
  });

  it('fans out to fifty clients: every byte, in order', async () => {
    const many = await Promise.all(Array.from({ length: 50 }, () => connect()));
    await Promise.all(many.map((c) => c.waitForFrame((f) => f.type === 'welcome')));
    await eventually(() => expect(many.every((c) => c.frames.some((f) => f.type === 'output'))).toBe(true));
    const start = Math.max(...many.map((c) => c.offset));
    many[7].run('for i in $(seq 1 300); do echo fan-$i; done; echo fan-done');
    await Promise.all(many.map((c) => c.waitForScreen(/fan-done\b/, 20_000)));
    // Every client received the same stream after `start`, in the same order.
    const tail = (c: TerminalTestClient): string => {
      const skip = start - (c.streamStart ?? start);
      return Buffer.from(c.stream).subarray(Math.max(0, skip)).toString();
    };
    const reference = tail(many[0]);
    // tmux sends screen updates, not the program's bytes: when output comes faster than it draws, it
    // redraws only the cells that changed (so "fan-300" may arrive as "300" after a cursor move).
    // The last line is new text either way.
    expect(reference).toMatch(/fan-done\b/);
    for (const c of many) expect(tail(c)).toBe(reference);
  }, 60_000);

  it('resumes a dropped client with exactly the bytes it missed: nothing lost, nothing repeated', async () => {
    const steady = await connect();
    const flaky = await connect();
    await steady.waitForFrame((f) => f.type === 'welcome');
    await flaky.waitForFrame((f) => f.type === 'welcome');
    await eventually(() => expect(flaky.offset).toBeGreaterThan(0));
    steady.run('for i in $(seq 1 1500); do echo resume-line-$i; sleep 0.002; done; echo resume-done');
    await flaky.waitForScreen(/resume-line-1\d\d\b/);
    const before = flaky.stream;
    const from = flaky.streamStart!;
    const droppedAt = flaky.offset;
    await flaky.close();

    const back = await connect({ resume: droppedAt });
    const welcome = await back.waitForFrame((f) => f.type === 'welcome');
    expect(welcome.session).toMatchObject({ resumed: true });
    await steady.waitForScreen(/resume-done\b/, 30_000);
    await eventually(() => expect(back.offset).toBe(steady.offset), 20_000);
    expect(back.frames.some((f) => f.type === 'reset')).toBe(false);

    // Compare over the range both received: from whichever of the two joined the stream later.
    const common = Math.max(from, steady.streamStart!);
    const uninterrupted = Buffer.from(steady.stream)
      .subarray(common - steady.streamStart!)
      .toString();
    const resumed = Buffer.concat([Buffer.from(before).subarray(common - from), Buffer.from(back.stream)]).toString();
    expect(back.gaps).toBe(0);
    expect(steady.gaps).toBe(0);
    expect(resumed).toBe(uninterrupted);
  }, 60_000);

  it('also resumes with {"type":"resume"} as the first message', async () => {
    const first = await connect();
    await eventually(() => expect(first.offset).toBeGreaterThan(0));
    first.run('echo first-message-resume');
    await first.waitForScreen(/first-message-resume\b/);
    const offset = first.offset;
    await first.close();
    const second = await connect({});
    second.send({ type: 'resume', offset });
    // Whether the message arrived before welcome (resumed: true) or in the 150 ms after it
    // (resumed: false) depends on how fast the sign-in check was; either way it resumes exactly.
    await second.waitForFrame((f) => f.type === 'welcome');
    second.run('echo after-resume');
    await second.waitForScreen(/after-resume/);
    expect(second.frames.some((f) => f.type === 'reset')).toBe(false);
    expect(second.screen).not.toMatch(/first-message-resume\b/);
  });

  it('answers a resume older than the replay buffer with reset and a redraw of the current screen', async () => {
    const client = await connect();
    await client.waitForFrame((f) => f.type === 'welcome');
    // A large window of changing text makes tmux send far more than the 64 KiB replay buffer.
    client.resize(1000, 400);
    client.run(
      "echo overflow-1; timeout 2 sh -c 'while :; do head -c 300000 /dev/urandom | base64 -w 990; done'; clear; echo screen-marker-$((6*7))",
    );
    await client.waitForScreen(/screen-marker-42/, 30_000);
    expect(client.offset - client.streamStart!).toBeGreaterThan(2 * 65_536);
    await client.close();
    const late = await connect({ resume: 1 });
    // the redraw comes from tmux: the current screen, not the raw history
    await late.waitForScreen(/screen-marker-42/);
    const resetIndex = late.frames.findIndex((f) => f.type === 'reset');
    const firstOutput = late.frames.findIndex((f) => f.type === 'output');
    expect(resetIndex).toBeGreaterThanOrEqual(0);
    expect(resetIndex).toBeLessThan(firstOutput);
    expect(late.screen).not.toMatch(/overflow-1\b/);
  }, 60_000);

  it("the most recently active client's size wins", async () => {
    const a = await connect();
    const b = await connect();
    await a.waitForFrame((f) => f.type === 'welcome');
    await b.waitForFrame((f) => f.type === 'welcome');
    a.resize(101, 31);
    b.resize(91, 21);
    // Typing makes a client the active one; the new size reaches the shell a moment later.
    b.run('true');
    await b.runUntil('echo size-b=$(tput cols)x$(tput lines)', /size-b=91x21/);
    a.run('true');
    await a.runUntil('echo size-a=$(tput cols)x$(tput lines)', /size-a=101x31/);
  });

  it('marks the environment active on input, keeps the upstream through the grace period, and exports metrics', async () => {
    const hub = t.app.app.get(TerminalHub);
    const client = await connect();
    await client.waitForFrame((f) => f.type === 'welcome');
    client.run('echo active');
    await client.waitForScreen(/active/);
    await eventually(async () => expect((await t.app.get(t.owner, t.env.id)).last_accessed).not.toBeNull());
    const session = hub.session(t.env.id);
    await t.closeAll();
    await eventually(() => expect(session?.clients.size).toBe(0));
    // within the grace period a reconnect joins the same upstream
    const again = await connect();
    await again.waitForFrame((f) => f.type === 'welcome');
    expect(hub.session(t.env.id)).toBe(session);
    const metrics = await (await fetch(`${t.app.baseUrl}/metrics`)).text();
    for (const name of [
      'terminal_sessions',
      'terminal_clients',
      'terminal_input_bytes_total',
      'terminal_output_bytes_total',
      'terminal_resumes_total',
      'terminal_redraws_total',
    ]) {
      expect(metrics).toContain(name);
    }
    expect(metrics).toMatch(/^terminal_clients [1-9]/m);
  });

  it('a new client joining mid-session gets a redraw of the current screen', async () => {
    const a = await connect();
    await a.waitForFrame((f) => f.type === 'welcome');
    a.run('clear; echo joined-screen-$((3*3))');
    await a.waitForScreen(/joined-screen-9/);
    const b = await connect();
    await b.waitForScreen(/joined-screen-9/);
  });
});
