import { setTimeout as delay } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import { LineSplitter, LogPager } from '../log-lines.js';
import type { EnvironmentSpec, ExecSession, LogPage, LogQuery, Unsubscribe } from '../runtime.provider.js';
import { reasonOf } from './kubernetes-api.js';
import type { EnvironmentObjects } from './objects.js';
import type { PodExec } from './pod-exec.js';
import { FOLLOW_LOG_SCRIPT, LOG_SCRIPT } from './pod-scripts.js';
import type { StoppedLogs } from './stopped-log.js';

/**
 * The environment's log (`$HOME/.devpocket/environment.log` on its home volume), read through
 * exec while the environment runs: `logs()` is one `cat`, paged like the local runtime's;
 * `followLogs()` an exec of `tail -F`, opened again whenever the environment runs again. While no
 * pod runs, both serve the log the last stop kept (stopped-log.ts).
 */
export class PodLogs {
  private readonly logger = new Logger('KubernetesRuntime');

  constructor(
    private readonly objects: EnvironmentObjects,
    private readonly exec: PodExec,
    private readonly stopped: StoppedLogs,
  ) {}

  async page(spec: EnvironmentSpec, query: LogQuery): Promise<LogPage> {
    const { at, view } = await this.objects.locateAndInspect(spec);
    if (!at) return { lines: [], total: 0 };
    const pager = new LogPager(query);
    if (view.state !== 'running') {
      for (const line of (await this.stopped.read(at)) ?? []) pager.add(line);
      return pager.page();
    }
    const { text } = await this.exec.run(at, ['sh', '-c', LOG_SCRIPT]);
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    for (const line of lines) pager.add(line.replace(/\r$/, ''));
    return pager.page();
  }

  follow(spec: EnvironmentSpec, onLine: (line: string) => void, backlog = 0): Unsubscribe {
    let closed = false;
    let current: ExecSession | null = null;
    // The backlog comes from the same `tail` as the live lines (one ordered sequence); only the
    // first follow sends it, a follow that starts again after the pod came back starts at the end.
    // While no pod runs, the backlog is the log the last stop kept.
    let first = Math.max(0, Math.floor(backlog));
    const follow = async (): Promise<void> => {
      while (!closed) {
        try {
          const { at: located, view } = await this.objects.locateAndInspect(spec);
          const at = view.state === 'running' ? located : null;
          if (!at && located && first > 0) {
            const kept = (await this.stopped.read(located)) ?? [];
            for (const line of kept.slice(-first)) if (!closed) onLine(line);
            first = 0;
          }
          if (at) {
            const session = await this.exec.open(at, ['sh', '-c', FOLLOW_LOG_SCRIPT, 'follow-log', String(first)], false);
            first = 0;
            current = session;
            if (closed) break;
            const splitter = new LineSplitter((line) => {
              if (!closed) onLine(line);
            });
            session.stream.on('data', (chunk: Buffer) => splitter.write(chunk));
            await session.exit;
            splitter.end();
          }
        } catch (error) {
          this.logger.debug(`Following the log of ${spec.id}: ${reasonOf(error)}`);
        }
        if (!closed) await delay(2000);
      }
      await current?.kill();
    };
    void follow();
    return () => {
      closed = true;
      void current?.kill();
    };
  }
}
