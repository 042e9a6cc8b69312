/** The runtime contract (./runtime-contract.ts), terminals and observation: attaching terminals, metrics, watchers, invalid ids. */
import type { RuntimeProvider, RuntimeStatus } from '../../src/runtime/runtime.provider.js';
import { eventually } from '../support/eventually.js';
import { capture, type ContractContext, runToEnd, type RuntimeUnderTest, typeUntil } from './runtime-contract-support.js';

export function terminalContract(context: ContractContext): void {
  let under: RuntimeUnderTest;
  let runtime: RuntimeProvider;
  const { newSpec, state, running } = context;

  beforeAll(() => {
    under = context.under;
    runtime = context.runtime;
  });

  it('lets a terminal attach to the tmux session, which outlives the terminal', async () => {
    const spec = newSpec();
    await runtime.provision(spec);
    await running(spec);
    const session = `devpocket_${spec.id}`;
    const terminal = await runtime.exec(spec, ['tmux', 'new-session', '-A', '-s', session], { tty: true, cols: 90, rows: 25 });
    const screen = capture(terminal.stream);
    await eventually(() => expect(screen.text().length).toBeGreaterThan(0));
    terminal.stream.write('echo attached-$((6*7)) "$DEVPOCKET_ENVIRONMENT_ID"\r');
    await eventually(() => expect(screen.text()).toContain(`attached-42 ${spec.id}`));
    await terminal.kill();
    expect((await state(spec)).state).toBe('running');
    expect((await runToEnd(runtime, spec, ['tmux', 'has-session', '-t', `=${session}`])).exit.code).toBe(0);
  });

  it('attachTerminal: typed input echoes, on a terminal of the size asked for, and resizing it reaches the programs', async () => {
    const spec = newSpec();
    await runtime.provision(spec);
    await running(spec);
    const terminal = await runtime.attachTerminal(spec, { cols: 91, rows: 27 });
    try {
      expect(terminal.sessionName).toBe(`devpocket_${spec.id}`);
      const screen = capture(terminal.stream);
      await eventually(() => expect(screen.text().length).toBeGreaterThan(0));
      terminal.stream.write('echo attached-$((6*7)) "$DEVPOCKET_ENVIRONMENT_ID"\r');
      await eventually(() => expect(screen.text()).toContain(`attached-42 ${spec.id}`));
      await typeUntil(terminal.stream, screen, 'echo size-$(tput cols)x$(tput lines)', 'size-91x27');
      terminal.resize(100, 31);
      // The new size travels from the terminal through tmux to the shell's pane: ask until it has arrived.
      await typeUntil(terminal.stream, screen, 'echo resized-$(tput cols)x$(tput lines)', 'resized-100x31');
    } finally {
      await terminal.kill();
    }
  });

  it('attachTerminal: two attachments share one session; detaching leaves the session and its shell running', async () => {
    const spec = newSpec();
    await runtime.provision(spec);
    await running(spec);
    const first = await runtime.attachTerminal(spec, { cols: 80, rows: 24 });
    const second = await runtime.attachTerminal(spec, { cols: 80, rows: 24 });
    expect(second.sessionName).toBe(first.sessionName);
    const seenBySecond = capture(second.stream);
    first.stream.write('shared=from-$((1+1))-first; echo "typed-$shared"\r');
    await eventually(() => expect(seenBySecond.text()).toContain('typed-from-2-first'));

    await first.kill();
    expect((await state(spec)).state).toBe('running');
    second.stream.write('echo still-"$shared"\r');
    await eventually(() => expect(seenBySecond.text()).toContain('still-from-2-first'));
    await second.kill();

    expect((await state(spec)).state).toBe('running');
    expect((await runToEnd(runtime, spec, ['tmux', 'list-sessions', '-F', '#{session_name}'])).text).toBe(`${first.sessionName}\n`);
    const again = await runtime.attachTerminal(spec, { cols: 80, rows: 24 });
    try {
      const screen = capture(again.stream);
      again.stream.write('echo again-"$shared"\r');
      await eventually(() => expect(screen.text()).toContain('again-from-2-first'));
    } finally {
      await again.kill();
    }
  });

  it('attachTerminal refuses invalid ids and environments that are not running', async () => {
    const size = { cols: 80, rows: 24 };
    await expect(runtime.attachTerminal({ ...under.spec(), id: '../../../../etc' }, size)).rejects.toThrow(/environment id/i);
    const spec = newSpec();
    await expect(runtime.attachTerminal(spec, size)).rejects.toThrow(/not running/);
    await runtime.provision(spec);
    await running(spec);
    await runtime.stop(spec);
    await expect(runtime.attachTerminal(spec, size)).rejects.toThrow(/not running/);
  });

  it('reports metrics: memory and disk as numbers', async () => {
    const spec = newSpec();
    await runtime.provision(spec);
    await running(spec);
    const metrics = await runtime.metrics(spec);
    expect(metrics.memoryBytes).toEqual(expect.any(Number));
    expect(metrics.memoryBytes).toBeGreaterThan(0);
    expect(metrics.diskBytes).toEqual(expect.any(Number));
    expect(metrics.at).toBeInstanceOf(Date);
  });

  it('reports the CPU a busy process uses, in cores', async () => {
    const spec = newSpec();
    await runtime.provision(spec);
    await running(spec);
    const busy = await runtime.exec(spec, ['sh', '-c', 'while :; do :; done'], { tty: false });
    try {
      // Rates come from two samples: each call is one; a busy loop keeps about one core in use.
      await eventually(
        async () => {
          const metrics = await runtime.metrics(spec);
          expect(metrics.cpuCores).toEqual(expect.any(Number));
          expect(metrics.cpuCores).toBeGreaterThan(0.3);
        },
        30_000,
        500,
      );
    } finally {
      await busy.kill();
    }
  });

  it('tells watchers about state changes', async () => {
    const spec = newSpec();
    await runtime.provision(spec);
    await running(spec);
    const seen: RuntimeStatus[] = [];
    const unsubscribe = runtime.watch((id, status) => {
      if (id === spec.id) seen.push(status);
    });
    try {
      // A watcher may need a moment to learn the current state: change it until one change is seen.
      await eventually(
        async () => {
          if ((await state(spec)).state !== 'running') await runtime.start(spec);
          await runtime.stop(spec);
          await eventually(() => expect(seen.map((status) => status.state)).toContain('stopped'), 2_000);
        },
        20_000,
        100,
      );
    } finally {
      unsubscribe();
    }
  });

  it('refuses invalid environment ids', async () => {
    const valid = under.spec();
    for (const id of [
      '',
      '../../../../etc',
      'ABCDEFABCDEFABCDEFABCDEF',
      '0123456789abcdef0123456',
      `${'a'.repeat(24)}/x`,
      'a'.repeat(25),
    ]) {
      const spec = { ...valid, id };
      await expect(runtime.provision(spec)).rejects.toThrow(/environment id/i);
      await expect(runtime.start(spec)).rejects.toThrow(/environment id/i);
      await expect(runtime.stop(spec)).rejects.toThrow(/environment id/i);
      await expect(runtime.destroy(spec)).rejects.toThrow(/environment id/i);
      await expect(runtime.status(spec)).rejects.toThrow(/environment id/i);
      await expect(runtime.exec(spec, ['true'], { tty: false })).rejects.toThrow(/environment id/i);
      await expect(runtime.logs(spec, { lines: 1 })).rejects.toThrow(/environment id/i);
      await expect(runtime.metrics(spec)).rejects.toThrow(/environment id/i);
      expect(() => runtime.followLogs(spec, () => undefined)).toThrow(/environment id/i);
    }
  });
}
