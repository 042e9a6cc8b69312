import { Duplex } from 'node:stream';
import { PANE_PROBE_MAX_WAITING, PaneProbe } from './pane-probe.js';
import type { ExecSession, ExitStatus } from './runtime.provider.js';

/** A helper that answers each request line with the next of `answers`, in pieces when it is a list (nothing when they run out). */
class FakeHelper implements ExecSession {
  readonly stream: Duplex;
  readonly exit: Promise<ExitStatus>;
  requests = 0;
  killed = false;
  private ended!: (status: ExitStatus) => void;

  constructor(private readonly answers: (string | string[])[]) {
    this.exit = new Promise((resolve) => {
      this.ended = resolve;
    });
    this.stream = new Duplex({
      read: () => undefined,
      write: (chunk: Buffer, _encoding, callback) => {
        for (const char of chunk.toString()) {
          if (char !== '\n') continue;
          this.requests += 1;
          const answer = this.answers.shift();
          if (answer !== undefined) for (const piece of [answer].flat()) setImmediate(() => this.stream.push(piece));
        }
        callback();
      },
    });
  }

  resize(): void {}

  die(): void {
    this.ended({ code: 0, signal: null });
  }

  async kill(): Promise<void> {
    this.killed = true;
    this.die();
  }
}

const PROMPT = '0 0 0 /dev/pts/1| -icanon -echo\n';
const PASSWORD = '0 0 0 /dev/pts/1| icanon -echo\n';

describe('PaneProbe', () => {
  it('starts the helper at the first probe, keeps it, and answers in order (an answer may come in pieces)', async () => {
    const helper = new FakeHelper([PROMPT, ['0 0 0 /dev/pts/1| ican', 'on -echo\n'], '1 1 0 /dev/pts/1| -icanon -echo\n']);
    let starts = 0;
    const probe = new PaneProbe(async () => {
      starts += 1;
      return helper;
    });
    expect(starts).toBe(0);
    expect(await probe.probe()).toMatchObject({ echo: false, canonical: false });
    const [second, third] = await Promise.all([probe.probe(), probe.probe()]);
    expect(second).toMatchObject({ echo: false, canonical: true });
    expect(third).toMatchObject({ altScreen: true, cursorKeys: 'application' });
    expect(starts).toBe(1);
    probe.close();
    expect(helper.killed).toBe(true);
    expect(await probe.probe()).toBeNull();
  });

  it('answers null, never rejects, when the helper cannot start, and tries again after the restart delay only', async () => {
    let starts = 0;
    const failing = new PaneProbe(async () => {
      starts += 1;
      throw new Error('not running');
    });
    expect(await failing.probe()).toBeNull();
    expect(await failing.probe()).toBeNull();
    expect(starts).toBe(1);
    const retrying = new PaneProbe(
      async () => {
        starts += 1;
        throw new Error('not running');
      },
      { restartMs: 0 },
    );
    expect(await retrying.probe()).toBeNull();
    expect(await retrying.probe()).toBeNull();
    expect(starts).toBe(3);
  });

  it('answers null to a probe not answered in time, drops its late answer, and ends a helper that keeps too many waiting', async () => {
    const slow = new FakeHelper([]);
    const next = new FakeHelper([PASSWORD]);
    const helpers = [slow, next];
    const probe = new PaneProbe(async () => helpers.shift()!, { timeoutMs: 20, restartMs: 0 });
    expect(await probe.probe()).toBeNull();
    expect(slow.killed).toBe(false);
    // The late answer belongs to the probe that timed out: the next probe gets its own.
    slow.stream.push(PASSWORD);
    const answered = probe.probe();
    await new Promise((resolve) => setImmediate(resolve));
    slow.stream.push(PROMPT);
    expect(await answered).toMatchObject({ echo: false, canonical: false });
    for (let i = 0; i < PANE_PROBE_MAX_WAITING; i += 1) expect(await probe.probe()).toBeNull();
    expect(slow.killed).toBe(false);
    expect(await probe.probe()).toMatchObject({ echo: false, canonical: true });
    expect(slow.killed).toBe(true);
    probe.close();
    expect(next.killed).toBe(true);
  });

  it('answers null to waiting probes when the helper dies', async () => {
    const helper = new FakeHelper([]);
    const probe = new PaneProbe(async () => helper, { restartMs: 60_000 });
    const waiting = probe.probe();
    await new Promise((resolve) => setImmediate(resolve));
    helper.die();
    expect(await waiting).toBeNull();
    expect(await probe.probe()).toBeNull();
  });

  it('answers null for a line that is not an answer (tmux gone), and keeps the helper', async () => {
    const helper = new FakeHelper(['   |\n', PROMPT]);
    const probe = new PaneProbe(async () => helper);
    expect(await probe.probe()).toBeNull();
    expect(await probe.probe()).toMatchObject({ echo: false });
    expect(helper.killed).toBe(false);
    probe.close();
  });
});
