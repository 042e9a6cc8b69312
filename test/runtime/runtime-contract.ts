import type { Duplex } from 'node:stream';
import type { EnvironmentSpec, ExecOptions, ExitStatus, RuntimeProvider, RuntimeStatus } from '../../src/runtime/runtime.provider.js';
import type { Template } from '../../src/templates/template.js';
import { eventually } from '../support/eventually.js';

/**
 * The runtime contract: what every RuntimeProvider must do, written once against the port only.
 * A runtime joins by calling describeRuntimeContract() with a factory (see
 * test/runtime/local-runtime.e2e-spec.ts). The environments it runs must have bash, coreutils,
 * `stty`/`tput` and tmux (`attachTerminal` is a tmux client, `tmux new-session -A`).
 */

export interface SpecOverrides {
  /** Replace parts of the test template (startup steps, required commands, shell, …). */
  template?: Partial<Omit<Template, 'startup'>> & { startup?: Partial<Template['startup']> };
  /** The environment's variables (template + user's, as the caller merges them). */
  environmentVariables?: Record<string, string>;
}

export interface RuntimeUnderTest {
  runtime: RuntimeProvider;
  /** A fresh spec (new id each call) for the small test template, with `overrides` applied. */
  spec(overrides?: SpecOverrides): EnvironmentSpec;
  /** A second runtime over the same storage and workloads, as after an API-server restart. */
  anotherInstance(): Promise<RuntimeProvider>;
  /** Releases everything the factory made (environments left over, instances, scratch storage). */
  cleanup(): Promise<void>;
}

/** The template the contract runs, for factories to build specs from. */
export function contractTemplate(overrides: SpecOverrides['template'] = {}): Template {
  const { startup, ...rest } = overrides;
  const now = new Date('2026-01-01T00:00:00Z');
  return {
    id: 'contract-test',
    name: 'contract-test',
    displayName: 'Contract test',
    description: 'The small template of the runtime contract suite',
    category: 'operating_system',
    tags: [],
    status: 'active',
    version: '1.0.0',
    defaultPort: null,
    documentationUrl: null,
    iconUrl: null,
    usageCount: 0,
    createdAt: now,
    updatedAt: now,
    deletedAt: null,
    // DevPocket's image of the debian template (images/debian): tmux, git and the user devpocket (uid 1000) baked in.
    image: 'devpocket/env-debian:1',
    user: { name: 'devpocket', uid: 1000, gid: 1000, home: '/home/devpocket' },
    shell: '/bin/bash',
    workingDirectory: '',
    ports: [],
    environmentVariables: {},
    startup: { system: [], user: [], ...startup },
    requiredCommands: [],
    defaultResources: { cpu: '500m', memory: '512Mi', storage: '1Gi' },
    runAsNonRoot: true,
    ...rest,
  };
}

export interface Output {
  text: string;
  exit: ExitStatus;
}

/** Runs argv to its end (stdin closed at once unless `input` is given) and collects its output. */
export async function runToEnd(
  runtime: RuntimeProvider,
  spec: EnvironmentSpec,
  argv: string[],
  options: Partial<ExecOptions> & { input?: string } = {},
): Promise<Output> {
  const session = await runtime.exec(spec, argv, { tty: false, ...options });
  session.stream.end(options.input);
  const chunks: Buffer[] = [];
  for await (const chunk of session.stream) chunks.push(chunk as Buffer);
  return { text: Buffer.concat(chunks).toString('utf8'), exit: await session.exit };
}

/** Everything a stream has output so far, to wait for text with eventually(). */
function capture(stream: Duplex): { text: () => string } {
  let text = '';
  stream.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8');
  });
  return { text: () => text };
}

/** Types `command` (again every second) until `expected` appears on the screen. */
async function typeUntil(stream: Duplex, screen: { text: () => string }, command: string, expected: string): Promise<void> {
  await eventually(
    async () => {
      stream.write(`${command}\r`);
      await eventually(() => expect(screen.text()).toContain(expected), 1_000);
    },
    15_000,
    100,
  );
}

const STARTUP_TIMEOUT_MS = 30_000;

export function describeRuntimeContract(name: string, factory: () => Promise<RuntimeUnderTest>): void {
  describe(`runtime contract: ${name}`, () => {
    let under: RuntimeUnderTest;
    let runtime: RuntimeProvider;
    const created: EnvironmentSpec[] = [];

    beforeAll(async () => {
      under = await factory();
      runtime = under.runtime;
    });

    afterEach(async () => {
      for (const spec of created.splice(0)) await runtime.destroy(spec);
    });

    afterAll(async () => {
      await under?.cleanup();
    });

    const newSpec = (overrides?: SpecOverrides): EnvironmentSpec => {
      const spec = under.spec(overrides);
      created.push(spec);
      return spec;
    };

    const state = async (spec: EnvironmentSpec): Promise<RuntimeStatus> => runtime.status(spec);

    const running = async (spec: EnvironmentSpec): Promise<RuntimeStatus> =>
      eventually(async () => {
        const status = await state(spec);
        expect(status.state).toBe('running');
        return status;
      }, STARTUP_TIMEOUT_MS);

    const installed = async (spec: EnvironmentSpec): Promise<RuntimeStatus> =>
      eventually(
        async () => {
          const status = await state(spec);
          expect(status.installation?.completed).toBe(true);
          return status;
        },
        STARTUP_TIMEOUT_MS,
        200,
      );

    const allLogs = async (spec: EnvironmentSpec): Promise<string[]> => (await runtime.logs(spec, { lines: 100_000 })).lines;
    const count = (lines: string[], text: string): number => lines.filter((line) => line.includes(text)).length;

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

    it('exec without a TTY: output, input and exit codes', async () => {
      const spec = newSpec();
      await runtime.provision(spec);
      await running(spec);
      const both = await runToEnd(runtime, spec, ['sh', '-c', 'echo out; echo err >&2']);
      expect(both.text.split('\n').sort()).toEqual(['', 'err', 'out']);
      expect(both.exit).toEqual({ code: 0, signal: null });
      expect((await runToEnd(runtime, spec, ['sh', '-c', 'exit 7'])).exit).toEqual({ code: 7, signal: null });
      expect((await runToEnd(runtime, spec, ['cat'], { input: 'through stdin\n' })).text).toBe('through stdin\n');
      expect((await runToEnd(runtime, spec, ['pwd'])).text.trim()).toMatch(/\S/);
    });

    it('exec with a TTY: the size reaches the program, and so does a resize', async () => {
      const spec = newSpec();
      await runtime.provision(spec);
      await running(spec);
      const session = await runtime.exec(spec, ['bash', '--noprofile', '--norc'], { tty: true, cols: 100, rows: 30 });
      const screen = capture(session.stream);
      session.stream.write('stty size; tput cols\n');
      await eventually(() => expect(screen.text()).toMatch(/30 100\r?\n100/));
      session.resize(120, 40);
      session.stream.write('stty size; tput cols\n');
      await eventually(() => expect(screen.text()).toMatch(/40 120\r?\n120/));
      session.resize(0, -3);
      session.stream.write('stty size\n');
      await eventually(() => expect(screen.text()).toMatch(/1 1\r?\n/));
      session.stream.write('exit 5\n');
      expect(await session.exit).toEqual({ code: 5, signal: null });
    });

    it('passes environment variables as an environment, never through a shell', async () => {
      const hostile = {
        DEVPOCKET_CONTRACT_SUBST: '$(touch "$HOME/pwned-subst")',
        DEVPOCKET_CONTRACT_CHAIN: '; touch "$HOME/pwned-chain"; rm -rf ~',
        DEVPOCKET_CONTRACT_QUOTES: `'"\`touch "$HOME/pwned-quotes"\` \\ \n second line`,
      };
      const spec = newSpec({
        environmentVariables: hostile,
        template: { startup: { user: ['printenv DEVPOCKET_CONTRACT_SUBST', 'printenv DEVPOCKET_CONTRACT_CHAIN'] } },
      });
      await runtime.provision(spec);
      await installed(spec);
      for (const [key, value] of Object.entries(hostile)) {
        expect((await runToEnd(runtime, spec, ['printenv', key])).text).toBe(`${value}\n`);
      }
      const perExec = '`touch "$HOME/pwned-exec"`; $(rm -rf ~)';
      expect(
        (await runToEnd(runtime, spec, ['printenv', 'DEVPOCKET_CONTRACT_EXEC'], { env: { DEVPOCKET_CONTRACT_EXEC: perExec } })).text,
      ).toBe(`${perExec}\n`);
      const lines = await allLogs(spec);
      expect(lines.some((line) => line.endsWith(` ${hostile.DEVPOCKET_CONTRACT_SUBST}`))).toBe(true);
      expect(lines.some((line) => line.endsWith(` ${hostile.DEVPOCKET_CONTRACT_CHAIN}`))).toBe(true);
      // The interactive shell's tmux server has them verbatim too.
      expect((await runToEnd(runtime, spec, ['tmux', 'show-environment', '-g', 'DEVPOCKET_CONTRACT_SUBST'])).text).toBe(
        `DEVPOCKET_CONTRACT_SUBST=${hostile.DEVPOCKET_CONTRACT_SUBST}\n`,
      );
      expect((await runToEnd(runtime, spec, ['find', '.', '-maxdepth', '1', '-name', 'pwned-*'])).text).toBe('');
    });

    for (const tty of [false, true]) {
      it(`holds back a process writing a lot when the reader stops reading (${tty ? 'TTY' : 'pipes'})`, async () => {
        const spec = newSpec();
        await runtime.provision(spec);
        await running(spec);
        const writer = 'i=0; line=$(printf "%01000d" 0); while :; do i=$((i+1)); echo "$i" > "$HOME/progress"; echo "$line"; done';
        const session = await runtime.exec(spec, ['bash', '-c', writer], { tty, cols: 200, rows: 50 });
        const progress = async (): Promise<number> => Number((await runToEnd(runtime, spec, ['cat', 'progress'])).text.trim() || '0');

        // Nobody reads `stream`: the writer must come to a halt, with little buffered on our side.
        let last = -1;
        const stalled = await eventually(
          async () => {
            const now = await progress();
            const unchanged = now > 0 && now === last;
            last = now;
            expect(unchanged).toBe(true);
            return now;
          },
          20_000,
          400,
        );
        expect(session.stream.readableLength).toBeLessThanOrEqual(1024 * 1024);

        // Reading again lets it go on.
        let received = 0;
        session.stream.on('data', (chunk: Buffer) => {
          received += chunk.length;
        });
        await eventually(async () => expect(await progress()).toBeGreaterThan(stalled + 1000), 20_000);
        expect(received).toBeGreaterThan(1000 * 1000);
        await session.kill();
        const exit = await session.exit;
        expect(exit.code === 0 && exit.signal === null).toBe(false);
      });
    }

    it('repeats every operation harmlessly', async () => {
      const spec = newSpec({ template: { startup: { user: ['echo idempotent-step-$((1+1))'] } } });
      await Promise.all([runtime.provision(spec), runtime.provision(spec)]);
      await runtime.provision(spec);
      await installed(spec);
      await running(spec);
      expect((await allLogs(spec)).filter((line) => line.endsWith(' idempotent-step-2'))).toHaveLength(1);

      expect((await runToEnd(runtime, spec, ['tmux', 'new-window', '-d', '-n', 'still-here', 'sleep', '1000'])).exit.code).toBe(0);
      await runtime.start(spec);
      expect((await state(spec)).state).toBe('running');
      expect((await runToEnd(runtime, spec, ['tmux', 'list-windows', '-F', '#{window_name}'])).text).toContain('still-here');

      await runtime.stop(spec);
      await runtime.stop(spec);
      expect((await state(spec)).state).toBe('stopped');
      await runtime.start(spec);
      await runtime.start(spec);
      await running(spec);
      expect((await allLogs(spec)).filter((line) => line.endsWith(' idempotent-step-2'))).toHaveLength(1);

      await runtime.destroy(spec);
      await runtime.destroy(spec);
      expect((await state(spec)).state).toBe('absent');
    });

    it('destroy removes everything', async () => {
      const spec = newSpec({ template: { startup: { user: ['echo something-to-log'] } } });
      await runtime.provision(spec);
      await installed(spec);
      await runToEnd(runtime, spec, ['sh', '-c', 'echo data > "$HOME/data.txt"']);
      await runtime.destroy(spec);
      expect(await state(spec)).toEqual({ state: 'absent', message: null, installation: null });
      expect(await runtime.list()).not.toContain(spec.id);
      expect(await runtime.logs(spec, { lines: 100 })).toEqual({ lines: [], total: 0 });
      await expect(runtime.exec(spec, ['true'], { tty: false })).rejects.toThrow();

      // Provisioning the same id again starts from nothing.
      await runtime.provision(spec);
      await running(spec);
      expect((await runToEnd(runtime, spec, ['sh', '-c', 'test -e "$HOME/data.txt" && echo present || echo gone'])).text).toBe('gone\n');
    });

    it('a second runtime instance (an API-server restart) finds the running environment and its session', async () => {
      const spec = newSpec();
      await runtime.provision(spec);
      await running(spec);
      await runToEnd(runtime, spec, ['sh', '-c', 'echo from-first > "$HOME/first.txt"']);
      const other = await under.anotherInstance();
      expect((await other.status(spec)).state).toBe('running');
      expect(await other.list()).toContain(spec.id);
      const session = `devpocket_${spec.id}`;
      expect((await runToEnd(other, spec, ['tmux', 'has-session', '-t', `=${session}`])).exit.code).toBe(0);
      expect((await runToEnd(other, spec, ['cat', 'first.txt'])).text).toBe('from-first\n');
      await other.stop(spec);
      expect((await runtime.status(spec)).state).toBe('stopped');
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
  });
}
