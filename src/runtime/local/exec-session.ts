import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { constants } from 'node:os';
import { Duplex } from 'node:stream';
import type { IPty } from 'node-pty';
import { guardChildStdio } from '../../common/process/child-stdio.js';
import type { ExecSession, ExitStatus } from '../runtime.provider.js';
import { clampTerminal } from '../terminal-size.js';

/** Output buffered in `stream` before the process is paused (then the kernel buffer fills and the program blocks). */
export const OUTPUT_HIGH_WATER_MARK = 64 * 1024;
/** How long kill() waits after the polite signal before SIGKILL. */
export const KILL_GRACE_MS = 2000;
const SIGNAL_NAMES = new Map<number, string>(Object.entries(constants.signals).map(([name, number]) => [number, name]));

export function signalName(signal: number | string | null | undefined): string | null {
  if (signal === null || signal === undefined || signal === 0) return null;
  if (typeof signal === 'string') return signal;
  return SIGNAL_NAMES.get(signal) ?? `SIG${signal}`;
}

/**
 * Options of every session's stream. Output can end (the program closed it) a moment before the
 * program exits: ending both sides must not destroy the stream, whose destroy() kills the program.
 */
const STREAM_OPTIONS = { readableHighWaterMark: OUTPUT_HIGH_WATER_MARK, autoDestroy: false } as const;

abstract class BaseSession implements ExecSession {
  abstract readonly stream: Duplex;
  readonly exit: Promise<ExitStatus>;
  protected exited = false;
  private resolveExit!: (status: ExitStatus) => void;

  constructor() {
    this.exit = new Promise<ExitStatus>((resolve) => {
      this.resolveExit = resolve;
    });
  }

  abstract resize(cols: number, rows: number): void;
  protected abstract signal(name: NodeJS.Signals): void;
  protected abstract readonly politeSignal: NodeJS.Signals;

  protected finish(status: ExitStatus): void {
    if (this.exited) return;
    this.exited = true;
    this.resolveExit(status);
  }

  async kill(): Promise<void> {
    if (this.exited) return;
    this.signal(this.politeSignal);
    const timer = setTimeout(() => this.signal('SIGKILL'), KILL_GRACE_MS);
    try {
      await this.exit;
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * A process on a pseudo-terminal (node-pty). Output backpressure is real: when `stream`'s buffer
 * is full the PTY is paused, so nothing reads the terminal any more, the kernel's buffer fills and
 * the program blocks in write(); reading `stream` again resumes it. Input is queued by node-pty
 * and written as the terminal accepts it.
 */
export class PtySession extends BaseSession {
  readonly stream: Duplex;
  protected readonly politeSignal = 'SIGHUP';
  private paused = false;

  constructor(private readonly pty: IPty) {
    super();
    this.stream = new Duplex({
      ...STREAM_OPTIONS,
      read: () => {
        if (!this.paused) return;
        this.paused = false;
        if (!this.exited) pty.resume();
      },
      write: (chunk: Buffer | string, _encoding, callback) => {
        if (!this.exited) pty.write(typeof chunk === 'string' ? chunk : Buffer.from(chunk));
        callback();
      },
      final: (callback) => callback(),
      destroy: (error, callback) => {
        if (!this.exited) void this.kill();
        callback(error);
      },
    });
    pty.onData((data: string | Buffer) => {
      const chunk = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      if (!this.stream.push(chunk) && !this.paused && !this.exited) {
        this.paused = true;
        pty.pause();
      }
    });
    pty.onExit(({ exitCode, signal }) => {
      this.stream.push(null);
      const name = signalName(signal);
      this.finish({ code: name === null ? exitCode : null, signal: name });
    });
  }

  get pid(): number {
    return this.pty.pid;
  }

  resize(cols: number, rows: number): void {
    if (this.exited) return;
    try {
      const size = clampTerminal(cols, rows);
      this.pty.resize(size.cols, size.rows);
    } catch {
      // The terminal closed between the check and the call.
    }
  }

  protected signal(name: NodeJS.Signals): void {
    try {
      this.pty.kill(name);
    } catch {
      // Already gone.
    }
  }
}

/**
 * A process with pipes: stdin from `stream`'s writable side, stdout and stderr merged into its
 * readable side. When `stream`'s buffer is full both pipes are paused, so the pipe buffers fill
 * and the program blocks in write(). `exit` resolves when the process has exited; `stream` ends
 * once all of its output has been delivered.
 */
export class PipeSession extends BaseSession {
  readonly stream: Duplex;
  protected readonly politeSignal = 'SIGTERM';
  private paused = false;

  /** `group`: the child leads its own process group (spawned detached), and signals go to the whole group. */
  constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly group = false,
  ) {
    super();
    const outputs = [child.stdout, child.stderr];
    let open = outputs.length;
    this.stream = new Duplex({
      ...STREAM_OPTIONS,
      read: () => {
        if (!this.paused) return;
        this.paused = false;
        for (const output of outputs) output.resume();
      },
      write: (chunk: Buffer | string, encoding, callback) => {
        if (child.stdin.destroyed || !child.stdin.writable) {
          callback();
          return;
        }
        child.stdin.write(chunk, encoding, () => callback());
      },
      final: (callback) => {
        child.stdin.end();
        callback();
      },
      destroy: (error, callback) => {
        if (!this.exited) void this.kill();
        callback(error);
      },
    });
    // A program that exits without reading its input makes our writes fail with EPIPE: not an error of the session.
    guardChildStdio(child);
    for (const output of outputs) {
      output.on('data', (chunk: Buffer) => {
        if (!this.stream.push(chunk) && !this.paused) {
          this.paused = true;
          for (const each of outputs) each.pause();
        }
      });
      output.on('close', () => {
        open -= 1;
        if (open === 0) this.stream.push(null);
      });
    }
    child.on('exit', (code, signal) => this.finish({ code: signal === null ? code : null, signal }));
    child.on('error', () => this.finish({ code: null, signal: null }));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  resize(): void {
    // No terminal, nothing to resize.
  }

  protected signal(name: NodeJS.Signals): void {
    try {
      if (this.group && this.child.pid !== undefined) process.kill(-this.child.pid, name);
      else this.child.kill(name);
    } catch {
      // Already gone.
    }
  }
}
