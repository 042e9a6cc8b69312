import { Duplex, PassThrough } from 'node:stream';
import type { EnvironmentSpec, ExecOptions, ExecSession, ExitStatus } from './runtime.provider.js';
import { paneProbeCommand } from './pane-modes.js';
import { clampTerminal, DEFAULT_TERMINAL_SIZE } from './terminal-size.js';
import { TMUX_REPAINT_KEYS } from './tmux-conf.js';
import { attachTmuxClient, TmuxCommand, tmuxSessionName } from './tmux-session.js';

const id = '0123456789abcdef01234567';

class RecordingSession implements ExecSession {
  readonly stream: Duplex = new PassThrough();
  readonly sizes: [number, number][] = [];
  readonly exit: Promise<ExitStatus> = Promise.resolve({ code: 0, signal: null });
  killed = false;

  resize(cols: number, rows: number): void {
    this.sizes.push([cols, rows]);
  }

  async kill(): Promise<void> {
    this.killed = true;
  }
}

/** A session that has not exited (yet), whose input goes nowhere and whose output the test pushes. */
class RunningSession extends RecordingSession {
  override readonly stream: Duplex = new Duplex({ read: () => undefined, write: (_chunk, _encoding, callback) => callback() });
  override readonly exit: Promise<ExitStatus> = new Promise(() => undefined);
}

describe('tmux session', () => {
  it('names the session after the environment id, and refuses anything else', () => {
    expect(tmuxSessionName(id)).toBe(`devpocket_${id}`);
    expect(() => tmuxSessionName('../etc')).toThrow(/environment id/i);
  });

  it('spells the tmux commands the runtimes run', () => {
    const name = tmuxSessionName(id);
    expect(TmuxCommand.attach(name)).toEqual(['new-session', '-A', '-s', name]);
    expect(TmuxCommand.hasSession(name)).toEqual(['has-session', '-t', `=${name}`]);
    expect(TmuxCommand.newDetached(name, '/home/x')).toEqual(['new-session', '-d', '-s', name, '-c', '/home/x']);
    expect(TmuxCommand.killServer()).toEqual(['kill-server']);
  });

  it('attaches a terminal as a tmux client through exec, on a TTY of the clamped size, and repaints with the private key', async () => {
    const session = new RecordingSession();
    const calls: [string[], ExecOptions][] = [];
    const attachment = await attachTmuxClient({ id } as EnvironmentSpec, { cols: 5000, rows: 0 }, async (argv, options) => {
      calls.push([argv, options]);
      return session;
    });
    expect(calls).toEqual([[['tmux', 'new-session', '-A', '-s', `devpocket_${id}`], { tty: true, cols: 4096, rows: 1 }]]);
    expect(attachment.sessionName).toBe(`devpocket_${id}`);
    expect(attachment.stream).toBe(session.stream);
    const written: string[] = [];
    session.stream.on('data', (chunk: Buffer) => written.push(chunk.toString()));
    attachment.repaint();
    attachment.resize(100, 30);
    await attachment.kill();
    await new Promise((resolve) => setImmediate(resolve));
    expect(written).toEqual([TMUX_REPAINT_KEYS]);
    expect(session.sizes).toEqual([[100, 30]]);
    expect(session.killed).toBe(true);
    expect(await attachment.exit).toEqual({ code: 0, signal: null });
  });

  it('starts the pane-modes probe through the same exec at the first probeModes(), and ends it with the attachment', async () => {
    const client = new RunningSession();
    const helper = new RunningSession();
    const calls: [string[], ExecOptions][] = [];
    const attachment = await attachTmuxClient(
      { id } as EnvironmentSpec,
      { cols: 80, rows: 24 },
      async (argv, options) => {
        calls.push([argv, options]);
        return calls.length === 1 ? client : helper;
      },
      'tmux-server',
    );
    expect(calls).toHaveLength(1);
    const probing = attachment.probeModes();
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls[1]).toEqual([paneProbeCommand(`devpocket_${id}`, 'tmux-server'), { tty: false }]);
    helper.stream.push('0 0 1 /dev/pts/4| icanon -echo\n');
    expect(await probing).toEqual({ echo: false, canonical: true, altScreen: false, cursorKeys: 'normal', copyMode: true });
    await attachment.kill();
    expect(helper.killed).toBe(true);
    expect(await attachment.probeModes()).toBeNull();
    expect(calls).toHaveLength(2);
  });

  it('clamps terminal sizes to 1…4096 and falls back to the default size', () => {
    expect(DEFAULT_TERMINAL_SIZE).toEqual({ cols: 80, rows: 24 });
    expect(clampTerminal(undefined, Number.NaN)).toEqual({ cols: 80, rows: 24 });
    expect(clampTerminal(120.4, -3)).toEqual({ cols: 120, rows: 1 });
    expect(clampTerminal(1e9, 50)).toEqual({ cols: 4096, rows: 50 });
  });
});
