import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EnvironmentPaths } from '../../src/runtime/local/environment-paths.js';
import { environmentProcesses } from '../../src/runtime/local/process-tree.js';
import type { EnvironmentSpec, RuntimeStatus } from '../../src/runtime/runtime.provider.js';
import { eventually } from '../support/eventually.js';
import { localRuntimeUnderTest, type LocalUnderTest, newId, specFor } from './local-runtime-under-test.js';
import { describeRuntimeContract, runToEnd, SpecOverrides } from './runtime-contract.js';

describeRuntimeContract('local, no sandbox', () => localRuntimeUnderTest('none'));
describeRuntimeContract('local, bubblewrap sandbox', () => localRuntimeUnderTest('bwrap'));

describe('local runtime', () => {
  for (const sandbox of ['none', 'bwrap'] as const) {
    describe(`sandbox: ${sandbox}`, () => {
      let under: LocalUnderTest;
      const created: EnvironmentSpec[] = [];

      beforeAll(async () => {
        under = await localRuntimeUnderTest(sandbox, { watchIntervalMs: 200 });
      });
      afterEach(async () => {
        for (const spec of created.splice(0)) await under.runtime.destroy(spec);
      });
      afterAll(async () => {
        await under?.cleanup();
      });

      const newSpec = (overrides?: SpecOverrides): EnvironmentSpec => {
        const spec = specFor(overrides);
        created.push(spec);
        return spec;
      };
      const running = (spec: EnvironmentSpec): Promise<void> =>
        eventually(async () => expect((await under.runtime.status(spec)).state).toBe('running'), 20_000);

      it('lays an environment out under localRoot/<id>', async () => {
        const spec = newSpec();
        await under.runtime.provision(spec);
        await running(spec);
        const paths = new EnvironmentPaths(join(under.dataDir, 'environments'), spec.id);
        expect(existsSync(paths.home)).toBe(true);
        expect(existsSync(paths.socket)).toBe(true);
        expect(existsSync(paths.log)).toBe(true);
        expect(existsSync(paths.state)).toBe(true);
        expect((await runToEnd(under.runtime, spec, ['sh', '-c', 'echo "$HOME|$TMUX_TMPDIR|$TERM|$LANG|$PATH"'])).text).toBe(
          `${paths.home}|${paths.tmuxDir}|xterm-256color|C.UTF-8|${paths.home}/.local/bin:${paths.home}/bin:${process.env.PATH}\n`,
        );
        const { lines } = await under.runtime.logs(spec, { lines: 1000 });
        for (const line of lines) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /);
      });

      it('never runs system-level steps on the host', async () => {
        const marker = join(under.dataDir, `system-step-${newId()}`);
        const spec = newSpec({ template: { startup: { system: [`touch ${marker}`], user: ['echo user-step-ran'] } } });
        await under.runtime.provision(spec);
        await eventually(async () => expect((await under.runtime.status(spec)).installation?.completed).toBe(true), 20_000);
        const { lines } = await under.runtime.logs(spec, { lines: 1000 });
        expect(lines.some((line) => line.includes('skipped 1 system-level startup step'))).toBe(true);
        expect(lines.some((line) => line.endsWith(' user-step-ran'))).toBe(true);
        expect(existsSync(marker)).toBe(false);
      });

      it('leaves no process behind after stop', async () => {
        const spec = newSpec({ template: { startup: { user: ['sleep 1000'] } } });
        await under.runtime.provision(spec);
        await running(spec);
        const sleeper = await under.runtime.exec(spec, ['sh', '-c', 'sleep 1000 & sleep 1000'], { tty: false });
        sleeper.stream.resume();
        expect((await runToEnd(under.runtime, spec, ['tmux', 'new-window', '-d', 'nohup', 'sleep', '1000'])).exit.code).toBe(0);
        expect((await environmentProcesses(spec.id)).pids.size).toBeGreaterThan(3);
        await under.runtime.stop(spec);
        expect((await environmentProcesses(spec.id)).pids.size).toBe(0);
        const status = await under.runtime.status(spec);
        expect(status.state).toBe('stopped');
        expect(status.installation).toMatchObject({ completed: false, failed: true });
        expect(status.message).toMatch(/interrupted/);
      });

      it('watch() notices a stop behind its back, and start recovers even from a killed server', async () => {
        const spec = newSpec();
        await under.runtime.provision(spec);
        await running(spec);
        const seen: Array<RuntimeStatus['state']> = [];
        const unsubscribe = under.runtime.watch((id, status) => {
          if (id === spec.id) seen.push(status.state);
        });
        try {
          const paths = new EnvironmentPaths(join(under.dataDir, 'environments'), spec.id);
          // The watcher may need a moment to learn that it runs: pull the rug until a change is seen.
          await eventually(async () => {
            if ((await under.runtime.status(spec)).state !== 'running') await under.runtime.start(spec);
            expect(spawnSync('tmux', ['-S', paths.socket, 'kill-server']).status).toBe(0);
            await eventually(() => expect(seen).toContain('stopped'), 2_000);
          }, 15_000);
          expect((await under.runtime.status(spec)).state).toBe('stopped');

          await under.runtime.start(spec);
          await running(spec);
          await eventually(() => expect(seen.at(-1)).toBe('running'), 10_000);
          seen.length = 0;
          for (const pid of (await environmentProcesses(spec.id)).pids) process.kill(pid, 'SIGKILL');
          await eventually(() => expect(seen).toContain('stopped'), 10_000);
          await under.runtime.start(spec);
          await running(spec);
        } finally {
          unsubscribe();
        }
      });

      it('keeps environments running when the API server shuts down, for the next instance', async () => {
        const spec = newSpec();
        const first = under.instance();
        await first.provision(spec);
        await running(spec);
        await first.onApplicationShutdown();
        const next = under.instance();
        expect((await next.status(spec)).state).toBe('running');
        expect((await runToEnd(next, spec, ['tmux', 'has-session', '-t', `=devpocket_${spec.id}`])).exit.code).toBe(0);
      });

      it('reports a shell that does not exist as failed', async () => {
        const spec = newSpec({ template: { shell: '/usr/bin/devpocket-no-such-shell' } });
        await under.runtime.provision(spec);
        const status = await under.runtime.status(spec);
        expect(status.state).toBe('failed');
        expect(status.message).toContain('/usr/bin/devpocket-no-such-shell');
        await expect(under.runtime.exec(spec, ['true'], { tty: false })).rejects.toThrow(/not running/);
      });

      it('refuses a working directory outside the home', async () => {
        await expect(under.runtime.provision(newSpec({ template: { workingDirectory: '../../escape' } }))).rejects.toThrow(
          /working directory/,
        );
        await expect(under.runtime.provision(newSpec({ template: { workingDirectory: '/etc' } }))).rejects.toThrow(/working directory/);
        const spec = newSpec({ template: { workingDirectory: 'projects/app' } });
        await under.runtime.provision(spec);
        await running(spec);
        expect((await runToEnd(under.runtime, spec, ['pwd'])).text).toBe(
          `${join(under.dataDir, 'environments', spec.id, 'home', 'projects', 'app')}\n`,
        );
      });

      it('follows the log as lines are appended', async () => {
        const spec = newSpec();
        const lines: string[] = [];
        const unsubscribe = under.runtime.followLogs(spec, (line) => lines.push(line));
        try {
          await under.runtime.provision(spec);
          await running(spec);
          await eventually(() => expect(lines.some((line) => line.includes('[runtime] started'))).toBe(true));
          await under.runtime.stop(spec);
          await eventually(() => expect(lines.some((line) => line.endsWith('[runtime] stopped'))).toBe(true));
        } finally {
          unsubscribe();
        }
      });
    });
  }

  describe('bubblewrap sandbox isolation', () => {
    let under: LocalUnderTest;
    const created: EnvironmentSpec[] = [];

    beforeAll(async () => {
      under = await localRuntimeUnderTest('bwrap');
      mkdirSync(join(under.dataDir, 'db'));
      writeFileSync(join(under.dataDir, 'db', 'secret'), 'database secret\n');
    });
    afterEach(async () => {
      for (const spec of created.splice(0)) await under.runtime.destroy(spec);
    });
    afterAll(async () => {
      await under?.cleanup();
    });

    const provisioned = async (): Promise<EnvironmentSpec> => {
      const spec = specFor();
      created.push(spec);
      await under.runtime.provision(spec);
      await eventually(async () => expect((await under.runtime.status(spec)).state).toBe('running'), 20_000);
      return spec;
    };

    it('confines exec: own home writable, the system read-only, other environments, DATA_DIR and the server invisible', async () => {
      const [a, b] = [await provisioned(), await provisioned()];
      const bHome = join(under.dataDir, 'environments', b.id, 'home');
      expect((await runToEnd(under.runtime, b, ['sh', '-c', 'echo b-secret > "$HOME/secret"'])).exit.code).toBe(0);
      const run = (argv: string[]): ReturnType<typeof runToEnd> => runToEnd(under.runtime, a, argv);

      expect((await run(['cat', join(bHome, 'secret')])).exit.code).not.toBe(0);
      expect((await run(['cat', join(under.dataDir, 'db', 'secret')])).exit.code).not.toBe(0);
      expect((await run(['ls', join(under.dataDir, 'environments')])).text.trim()).toBe(a.id);
      expect((await run(['cat', join(process.cwd(), 'package.json')])).exit.code).not.toBe(0);
      expect((await run(['touch', '/usr/devpocket-sandbox-test'])).exit.code).not.toBe(0);
      expect(existsSync('/usr/devpocket-sandbox-test')).toBe(false);
      expect((await run(['sh', '-c', 'echo mine > "$HOME/mine" && cat "$HOME/mine"'])).text).toBe('mine\n');
      expect((await run(['kill', '-0', String(process.pid)])).exit.code).not.toBe(0);
      expect((await run(['grep', '^CapEff', '/proc/self/status'])).text).toMatch(/^CapEff:\s+0+\n$/);
    });

    it('confines the interactive shell in the tmux session too', async () => {
      const [a, b] = [await provisioned(), await provisioned()];
      const bHome = join(under.dataDir, 'environments', b.id, 'home');
      expect((await runToEnd(under.runtime, b, ['sh', '-c', 'echo b-secret > "$HOME/secret"'])).exit.code).toBe(0);
      const probe = [
        'tmux',
        'new-window',
        '-d',
        'sh',
        '-c',
        'cat "$1" "$2" > "$HOME/probe.out" 2>&1; grep ^CapEff /proc/self/status >> "$HOME/probe.out"; touch /usr/x 2>> "$HOME/probe.out"; echo done >> "$HOME/probe.out"',
        'sh',
        join(bHome, 'secret'),
        join(under.dataDir, 'db', 'secret'),
      ];
      expect((await runToEnd(under.runtime, a, probe)).exit.code).toBe(0);
      const output = await eventually(async () => {
        const text = (await runToEnd(under.runtime, a, ['cat', 'probe.out'])).text;
        expect(text).toContain('done');
        return text;
      });
      expect(output).not.toContain('b-secret');
      expect(output).not.toContain('database secret');
      expect(output).toMatch(/CapEff:\s+0+\n/);
      expect(output).toMatch(/Read-only file system/);
    });
  });
});
