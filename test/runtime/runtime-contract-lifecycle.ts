/** The runtime contract (./runtime-contract.ts), lifecycle and logs: provision, startup steps, logs, stop and start. */
import type { RuntimeProvider } from '../../src/runtime/runtime.provider.js';
import { eventually } from '../support/eventually.js';
import { type ContractContext, runToEnd, STARTUP_TIMEOUT_MS } from './runtime-contract-support.js';

export function lifecycleContract(context: ContractContext): void {
  let runtime: RuntimeProvider;
  const { newSpec, state, running, installed, allLogs, count } = context;

  beforeAll(() => {
    runtime = context.runtime;
  });

  it('provisions an environment that reaches running and is listed', async () => {
    const spec = newSpec();
    await runtime.provision(spec);
    const status = await running(spec);
    expect(status.message).toBeNull();
    expect(await runtime.list()).toContain(spec.id);
    const echo = await runToEnd(runtime, spec, ['echo', 'hello']);
    expect(echo).toEqual({ text: 'hello\n', exit: { code: 0, signal: null } });
  });

  it('runs the user-level startup steps once, with their output in the log (lines, since, total)', async () => {
    // Each step prints text its command line does not contain, so output is told apart from the echo of the step.
    const spec = newSpec({
      template: { startup: { user: ['echo contract-step-$((40+2))', 'printf "contract-step-%s\\n" two three'] } },
    });
    await runtime.provision(spec);
    const status = await installed(spec);
    expect(status.installation).toEqual({ completed: true, failed: false, stepsDone: 2, stepsTotal: 2 });
    await runtime.provision(spec);
    await running(spec);

    const lines = await allLogs(spec);
    expect(count(lines, 'contract-step-42')).toBe(1);
    expect(count(lines, 'contract-step-two')).toBe(1);
    expect(count(lines, 'contract-step-three')).toBe(1);

    const all = await runtime.logs(spec, { lines: 100_000 });
    expect(all.total).toBe(all.lines.length);
    const newest = await runtime.logs(spec, { lines: 2 });
    expect(newest.lines).toEqual(all.lines.slice(-2));
    expect(newest.total).toBe(all.total);
    expect(await runtime.logs(spec, { lines: 10, since: new Date(Date.now() + 60_000) })).toEqual({ lines: [], total: 0 });
    expect((await runtime.logs(spec, { lines: 100_000, since: new Date(Date.now() - 3_600_000) })).total).toBe(all.total);

    // Only what happens after `since`: the stop and start events, not the startup output.
    const since = new Date(Date.now() + 1);
    await eventually(() => expect(Date.now()).toBeGreaterThan(since.getTime()));
    await runtime.stop(spec);
    await runtime.start(spec);
    await running(spec);
    const later = await runtime.logs(spec, { lines: 100_000, since });
    expect(later.total).toBeGreaterThan(0);
    expect(later.total).toBe(later.lines.length);
    expect(count(later.lines, 'contract-step-')).toBe(0);
    expect((await runtime.logs(spec, { lines: 100_000 })).total).toBe(all.total + later.total);
  });

  it('follows the log from a backlog on as one sequence: no line twice, none skipped, even while lines are written', async () => {
    const spec = newSpec({
      template: {
        startup: { user: ['i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo "tick-$i"; [ $((i % 20)) -eq 0 ] && sleep 0.1; done'] },
      },
    });
    await runtime.provision(spec);
    // Subscribe while the step is writing: the backlog and the live lines meet somewhere in the ticks.
    await eventually(async () => expect(count(await allLogs(spec), 'tick-')).toBeGreaterThan(40), STARTUP_TIMEOUT_MS, 20);
    const received: string[] = [];
    const unsubscribe = runtime.followLogs(spec, (line) => received.push(line), 30);
    try {
      await eventually(() => expect(received.some((line) => line.endsWith('tick-400'))).toBe(true), STARTUP_TIMEOUT_MS);
    } finally {
      unsubscribe();
    }
    const ticks = received
      .map((line) => /tick-(\d+)$/.exec(line)?.[1])
      .filter((n) => n !== undefined)
      .map(Number);
    const first = ticks[0] ?? 0;
    expect(first).toBeGreaterThan(1);
    expect(ticks).toEqual(Array.from({ length: 400 - first + 1 }, (_, i) => first + i));
    // The backlog is the newest lines at the moment of subscribing: never more than asked for.
    expect(received.indexOf(received.find((line) => line.endsWith(`tick-${first}`))!)).toBeLessThan(30);
  });

  it('continues a startup script cut short by a stop at its first unfinished step on the next start', async () => {
    const spec = newSpec({
      template: {
        startup: {
          user: [
            'echo resumed-step-$((1))',
            'echo waiting-$((2)); while [ ! -f "$HOME/go-on" ]; do sleep 0.05; done',
            'echo resumed-step-$((3)) > "$HOME/third"',
          ],
        },
      },
    });
    await runtime.provision(spec);
    await running(spec);
    await eventually(async () => expect(count(await allLogs(spec), 'waiting-2')).toBe(1), STARTUP_TIMEOUT_MS);
    await runtime.stop(spec);
    expect((await state(spec)).installation).toMatchObject({ completed: false, stepsDone: 1 });
    await runtime.start(spec);
    await running(spec);
    await runToEnd(runtime, spec, ['sh', '-c', 'touch "$HOME/go-on"']);
    const status = await installed(spec);
    expect(status.installation).toEqual({ completed: true, failed: false, stepsDone: 3, stepsTotal: 3 });
    const lines = await allLogs(spec);
    expect(count(lines, 'resumed-step-1')).toBe(1);
    expect(count(lines, 'waiting-2')).toBe(2);
    expect((await runToEnd(runtime, spec, ['cat', 'third'])).text).toBe('resumed-step-3\n');
  });

  it('records a failing step, runs the rest, and keeps the environment usable', async () => {
    const spec = newSpec({
      template: { startup: { user: ['echo before-$((0))', 'echo failing-$((1)) >&2; exit 3', 'echo after-$((2))'] } },
    });
    await runtime.provision(spec);
    const status = await installed(spec);
    expect(status.state).toBe('running');
    expect(status.installation).toEqual({ completed: true, failed: true, stepsDone: 3, stepsTotal: 3 });
    expect(status.message).toMatch(/step 2 of 3 failed/);
    const lines = await allLogs(spec);
    expect(count(lines, 'failing-1')).toBe(1);
    expect(count(lines, 'after-2')).toBe(1);
    expect((await runToEnd(runtime, spec, ['echo', 'usable'])).text).toBe('usable\n');
  });

  it('reports missing required commands in status.message and the log while running', async () => {
    const spec = newSpec({ template: { requiredCommands: ['bash', 'devpocket-missing-one', 'devpocket-missing-two'] } });
    await runtime.provision(spec);
    const status = await running(spec);
    expect(status.message).toContain('missing commands: devpocket-missing-one, devpocket-missing-two');
    expect((await allLogs(spec)).some((line) => line.includes('missing commands: devpocket-missing-one, devpocket-missing-two'))).toBe(
      true,
    );
  });

  it('keeps the files of the home across stop and start', async () => {
    const spec = newSpec();
    await runtime.provision(spec);
    await running(spec);
    expect((await runToEnd(runtime, spec, ['sh', '-c', 'echo kept > "$HOME/kept.txt"'])).exit.code).toBe(0);
    await runtime.stop(spec);
    expect((await state(spec)).state).toBe('stopped');
    await runtime.start(spec);
    await running(spec);
    expect((await runToEnd(runtime, spec, ['cat', 'kept.txt'])).text).toBe('kept\n');
  });

  it("keeps a stopped environment's log readable, ending with the stop event (logs and the followers' backlog)", async () => {
    const spec = newSpec({ template: { startup: { user: ['echo before-the-stop-$((6*7))'] } } });
    await runtime.provision(spec);
    await installed(spec);
    await runtime.stop(spec);
    expect((await state(spec)).state).toBe('stopped');
    const page = await runtime.logs(spec, { lines: 1000 });
    expect(count(page.lines, 'before-the-stop-42')).toBe(1);
    expect(page.lines.at(-1)).toMatch(/^\S+ \[runtime\] stopped$/);
    expect(page.total).toBe(page.lines.length);
    expect(await runtime.logs(spec, { lines: 2 })).toEqual({ lines: page.lines.slice(-2), total: page.total });
    // What the logs WebSocket of a stopped environment sends: the newest lines, the stop event last.
    const received: string[] = [];
    const unsubscribe = runtime.followLogs(spec, (line) => received.push(line), 3);
    try {
      await eventually(() => expect(received).toEqual(page.lines.slice(-3)));
    } finally {
      unsubscribe();
    }
  });

  it('stop ends every process of the environment', async () => {
    const spec = newSpec();
    await runtime.provision(spec);
    await running(spec);
    const sleeper = await runtime.exec(spec, ['sleep', '1000'], { tty: false });
    sleeper.stream.resume();
    const window = await runToEnd(runtime, spec, ['tmux', 'new-window', '-d', '-n', 'contract-sleeper', 'sleep', '1000']);
    expect(window.exit.code).toBe(0);
    expect((await runToEnd(runtime, spec, ['tmux', 'list-windows', '-F', '#{window_name}'])).text).toContain('contract-sleeper');

    await runtime.stop(spec);
    expect((await state(spec)).state).toBe('stopped');
    const ended = await sleeper.exit;
    expect(ended.code === 0).toBe(false);
    await expect(runtime.exec(spec, ['true'], { tty: false })).rejects.toThrow(/not running/);

    await runtime.start(spec);
    await running(spec);
    expect((await runToEnd(runtime, spec, ['tmux', 'list-windows', '-F', '#{window_name}'])).text).not.toContain('contract-sleeper');
  });
}
