import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LineSplitter, lineTime } from '../log-lines.js';
import { readLogPage } from './environment-log.js';
import { assertEnvironmentId, EnvironmentPaths } from './environment-paths.js';
import { clampTerminalSize } from '../terminal-size.js';
import { signalName } from './exec-session.js';
import { parseStat, withDescendants } from './process-tree.js';
import { hiddenPaths, sandboxArguments } from './sandbox.js';
import { tmuxVersionAtLeast } from './tmux.js';

describe('local runtime helpers', () => {
  describe('environment ids and paths', () => {
    it('accepts 24 lower-case hex characters only', () => {
      expect(() => assertEnvironmentId('0123456789abcdef01234567')).not.toThrow();
      for (const bad of [
        '',
        '../etc',
        '0123456789ABCDEF01234567',
        '0123456789abcdef0123456',
        '0123456789abcdef012345678',
        'g'.repeat(24),
        42,
      ]) {
        expect(() => assertEnvironmentId(bad)).toThrow(/Invalid environment id/);
      }
    });

    it('lays out an environment and keeps the working directory inside the home', () => {
      const paths = new EnvironmentPaths('/data/environments', 'ab'.repeat(12), 1000);
      expect(paths.home).toBe(`/data/environments/${'ab'.repeat(12)}/home`);
      expect(paths.socket).toBe(`/data/environments/${'ab'.repeat(12)}/tmux/tmux-1000/default`);
      expect(paths.workdir('')).toBe(paths.home);
      expect(paths.workdir('projects/app')).toBe(`${paths.home}/projects/app`);
      expect(paths.workdir('a/../b')).toBe(`${paths.home}/b`);
      for (const escape of ['..', '../x', 'a/../../x', '/etc']) expect(() => paths.workdir(escape)).toThrow(/working directory/);
    });
  });

  describe('environment log', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'dp-log-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('returns the newest lines, counts what is available, and honours since', async () => {
      const file = join(dir, 'environment.log');
      const lines = Array.from({ length: 10 }, (_, i) => `2026-01-01T00:00:0${i}.000Z line ${i}`);
      writeFileSync(file, `${lines.slice(0, 5).join('\n')}\ncontinuation without a timestamp\n${lines.slice(5).join('\n')}\n`);
      expect(await readLogPage(file, { lines: 2 })).toEqual({ lines: [lines[8], lines[9]], total: 11 });
      expect(await readLogPage(file, { lines: 0 })).toEqual({ lines: [], total: 11 });
      expect(await readLogPage(file, { lines: 100, since: new Date('2026-01-01T00:00:04.000Z') })).toEqual({
        lines: [lines[4], 'continuation without a timestamp', ...lines.slice(5)],
        total: 7,
      });
      expect(await readLogPage(join(dir, 'missing.log'), { lines: 5 })).toEqual({ lines: [], total: 0 });
    });

    it('splits output into lines, across chunks and multi-byte characters', () => {
      const seen: string[] = [];
      const splitter = new LineSplitter((line) => seen.push(line));
      const euro = Buffer.from('€');
      splitter.write(Buffer.concat([Buffer.from('one\r\ntw'), euro.subarray(0, 1)]));
      splitter.write(Buffer.concat([euro.subarray(1), Buffer.from('o\nthree')]));
      splitter.end();
      expect(seen).toEqual(['one', 'tw€o', 'three']);
      expect(lineTime('2026-01-01T00:00:00.000Z x')).toBe(Date.parse('2026-01-01T00:00:00.000Z'));
      expect(lineTime('no time')).toBeNull();
    });
  });

  describe('processes', () => {
    it('parses /proc/<pid>/stat, names with spaces and parentheses included', () => {
      const stat = '1234 (tmux: server (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 555 1000 200 18446744073709551615';
      expect(parseStat(stat)).toEqual({ pid: 1234, ppid: 1, state: 'S', startTime: 555, cpuTicks: 10 });
    });

    it('finds descendants', () => {
      const info = (pid: number, ppid: number) => ({ pid, ppid, state: 'S', startTime: 0, cpuTicks: 0 });
      const table = new Map([1, 10, 11, 12, 20].map((pid) => [pid, info(pid, pid === 1 ? 0 : pid === 20 ? 1 : pid === 10 ? 1 : 10)]));
      expect([...withDescendants(table, [10])].sort()).toEqual([10, 11, 12]);
      expect([...withDescendants(table, [99])]).toEqual([]);
    });

    it('names signals and clamps terminal sizes', () => {
      expect(signalName(15)).toBe('SIGTERM');
      expect(signalName(0)).toBeNull();
      expect(clampTerminalSize(0, 80)).toBe(1);
      expect(clampTerminalSize(-5, 80)).toBe(1);
      expect(clampTerminalSize(Number.NaN, 80)).toBe(80);
      expect(clampTerminalSize(1e9, 80)).toBe(4096);
    });
  });

  describe('sandbox', () => {
    it('hides the data directory and the server’s own places, never the system', () => {
      const hidden = hiddenPaths({ dataDir: '/tmp', localRoot: '/tmp/environments' }, '/', '/');
      expect(hidden).toContain('/tmp');
      expect(hidden).not.toContain('/tmp/environments');
      expect(hidden).not.toContain('/');
      expect(hiddenPaths({ dataDir: '/usr', localRoot: '/usr/x' }, '/usr/lib', '/')).not.toContain('/usr');
    });

    it('binds the environment back after hiding, drops capabilities, and keeps the workload alive', () => {
      const layout = {
        dataDir: '/d',
        localRoot: '/d/environments',
        home: '/d/environments/x/home',
        tmuxDir: '/d/environments/x/tmux',
        workdir: '/d/environments/x/home',
        hostname: 'env',
      };
      const workload = sandboxArguments(layout, 'workload', ['/d']);
      expect(workload.join(' ')).toMatch(/--tmpfs \/d .*--bind \/d\/environments\/x\/home \/d\/environments\/x\/home/);
      expect(workload).toEqual(expect.arrayContaining(['--unshare-pid', '--cap-drop', 'ALL', '--new-session']));
      expect(workload).not.toContain('--die-with-parent');
      expect(workload.at(-1)).toBe('--');
      const terminal = sandboxArguments(layout, 'terminal', ['/d']);
      expect(terminal).toContain('--die-with-parent');
      expect(terminal).not.toContain('--new-session');
    });
  });

  it('reads tmux versions', () => {
    expect(tmuxVersionAtLeast('tmux 3.3a', 3, 2)).toBe(true);
    expect(tmuxVersionAtLeast('tmux 3.1c', 3, 2)).toBe(false);
    expect(tmuxVersionAtLeast('tmux 2.9', 3, 2)).toBe(false);
    expect(tmuxVersionAtLeast('tmux next-3.5', 3, 2)).toBe(true);
    expect(tmuxVersionAtLeast('tmux master', 3, 2)).toBe(true);
  });
});
