import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { GeneratorReply, GeneratorRequest } from './load-protocol.js';
import { REPO_ROOT } from './server.js';

type Reply<T extends GeneratorReply['type']> = Extract<GeneratorReply, { type: T }>;

/**
 * The load bench's client process (load-generator.ts, run with tsx): the suite asks, it answers,
 * one request at a time over IPC. Its own process, so that reading 1,000 sockets never shares an
 * event loop with the suite's echo measurement.
 */
export class LoadClients {
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;

  constructor() {
    this.child = fork(join(REPO_ROOT, 'bench', 'support', 'load-generator.ts'), [], {
      cwd: REPO_ROOT,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
  }

  get pid(): number {
    return this.child.pid!;
  }

  async request<T extends GeneratorReply['type']>(message: GeneratorRequest, answer: T): Promise<Reply<T>> {
    const reply = new Promise<Reply<T>>((resolve, reject) => {
      const onMessage = (received: GeneratorReply): void => {
        cleanup();
        if (received.type === answer) resolve(received as Reply<T>);
        else reject(new Error(received.type === 'failed' ? received.message : `load generator answered ${received.type}`));
      };
      const onExit = (code: number | null): void => {
        cleanup();
        reject(new Error(`load generator exited (${code})`));
      };
      const cleanup = (): void => {
        this.child.off('message', onMessage);
        this.child.off('exit', onExit);
      };
      this.child.on('message', onMessage);
      this.child.once('exit', onExit);
    });
    this.child.send(message);
    return reply;
  }

  /** Closes every connection and ends the process (killed if it does not end within 15 s). */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await Promise.race([
      this.request({ type: 'close' }, 'closed').catch(() => undefined),
      new Promise((resolve) => setTimeout(resolve, 15_000)),
    ]);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}
