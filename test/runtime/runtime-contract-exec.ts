/** The runtime contract (./runtime-contract.ts), exec and operations: exec with and without a TTY, variables, repeats, destroy, a second instance. */
import type { RuntimeProvider } from '../../src/runtime/runtime.provider.js';
import { eventually } from '../support/eventually.js';
import { capture, type ContractContext, runToEnd, type RuntimeUnderTest, typeUntil } from './runtime-contract-support.js';

export function execContract(context: ContractContext): void {
  let under: RuntimeUnderTest;
  let runtime: RuntimeProvider;
  const { newSpec, state, running, installed, allLogs } = context;

  beforeAll(() => {
    under = context.under;
    runtime = context.runtime;
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
    // Kubernetes applies a resize on a channel of its own, beside the input: a command typed
    // right after it may run before it lands, so each step types again until the size shows.
    const sizes = 'echo "size=$(stty size) cols=$(tput cols)"';
    await typeUntil(session.stream, screen, sizes, 'size=30 100 cols=100');
    session.resize(120, 40);
    await typeUntil(session.stream, screen, sizes, 'size=40 120 cols=120');
    session.resize(0, -3);
    await typeUntil(session.stream, screen, 'echo "size=$(stty size)"', 'size=1 1\r');
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
}
