import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { LineSplitter } from '../log-lines.js';
import type { EnvironmentSpec } from '../runtime.provider.js';
import { type KubernetesApi, reasonOf } from './kubernetes-api.js';
import type { KubernetesExecSession } from './kubernetes-exec.js';
import { labelsFor } from './manifests.js';
import type { Ownership } from './ownership.js';
import type { Located } from './placement.js';
import type { PodExec } from './pod-exec.js';
import { KEEP_LOG_SCRIPT } from './pod-scripts.js';

/**
 * The log of a stopped environment. The log lives on the home volume, which only a running pod can
 * read; so a stop keeps its tail in a ConfigMap of its own, `dp-<id>-log` (key `environment.log`,
 * labelled like the environment's other objects, deleted with them), and `logs()` and
 * `followLogs()` serve it while no pod runs.
 *
 * How a stop keeps it: before the StatefulSet is scaled to 0, an exec of `scripts/keep-log.sh` (the
 * log's newest 5000 lines, then `tail -F` from where they end) starts, and the stop waits until those
 * lines are out (a marker line follows them): on a real node the pod's end kills every process of
 * its container at once, an exec still starting included. It then receives every line written while
 * the pod ends (the entrypoint's `[runtime] stopping` and `[runtime] stopped`), and ends with the pod.
 * Once the pod is gone, the newest whole lines within 256 KiB are written to the ConfigMap, ending with
 * `[runtime] stopped` (the runtime adds it when the pod's own line did not arrive in time).
 */

/** At most this much of a stopped environment's log is kept (a ConfigMap holds at most 1 MiB). */
export const STOPPED_LOG_MAX_BYTES = 256 * 1024;
/** The ConfigMap's key. */
export const STOPPED_LOG_KEY = 'environment.log';
/** Lines asked of `tail` before it follows: more than 256 KiB of ordinary lines. */
const CAPTURE_LINES = 5000;
/** Raw bytes held while capturing: twice the kept size, so that whole lines can be cut from it. */
const CAPTURE_MAX_BYTES = 2 * STOPPED_LOG_MAX_BYTES;
/** How long a capture may still deliver after the pod is gone. */
const CAPTURE_DRAIN_MS = 5_000;
/** How long a stop waits for the capture's backlog before it goes on regardless (a container that answers slowly). */
const CAPTURE_BACKLOG_MS = 5_000;
/** The line keep-log.sh writes once the backlog is out (never a log line: those start with a time). */
const BACKLOG_SENT = 'devpocket:keep-log:backlog-sent';

const STOPPED_LINE = /^\S+ \[runtime\] stopped$/;

export function stoppedLogName(id: string): string {
  return `dp-${id}-log`;
}

/** The ConfigMap holding a stopped environment's log. */
export function stoppedLogConfigMap(spec: EnvironmentSpec, namespace: string, text: string): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: stoppedLogName(spec.id), namespace, labels: labelsFor(spec), annotations: { 'devpocket.io/slug': spec.slug } },
    data: { [STOPPED_LOG_KEY]: text },
  };
}

/** The newest of `lines` whose total size (each with its newline) is at most `maxBytes`. */
export function newestLines(lines: readonly string[], maxBytes = STOPPED_LOG_MAX_BYTES): string[] {
  let bytes = 0;
  let first = lines.length;
  while (first > 0) {
    const size = Buffer.byteLength(lines[first - 1] ?? '') + 1;
    if (bytes + size > maxBytes) break;
    bytes += size;
    first -= 1;
  }
  return lines.slice(first);
}

/** The log as a stop leaves it: the captured lines (or, without them, the ones kept before), then the stop event. */
export function stoppedLogText(captured: string[] | null, previous: string[], problem: string | null, now: Date): string {
  const at = now.toISOString();
  const lines = captured ?? [...previous, ...(problem ? [`${at} [runtime] the log of this run could not be kept: ${problem}`] : [])];
  if (!STOPPED_LINE.test(lines.at(-1) ?? '')) lines.push(`${at} [runtime] stopped`);
  return `${newestLines(lines).join('\n')}\n`;
}

/** Lines of a log text (a last empty line dropped). */
function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.map((line) => line.replace(/\r$/, ''));
}

/** A log being captured while the pod ends. */
export interface LogCapture {
  /** Ends the capture (waiting a little for what is still on its way) and returns the newest lines; null when it never started. */
  finish(): Promise<string[] | null>;
  /** Why it could not start, if so. */
  readonly problem: string | null;
}

class ExecCapture implements LogCapture {
  readonly problem = null;
  private readonly lines: string[] = [];
  private bytes = 0;
  private readonly splitter = new LineSplitter((line) => this.add(line));
  private readonly ended: Promise<unknown>;
  private onBacklog: () => void = () => undefined;
  private readonly backlog = new Promise<void>((resolve) => (this.onBacklog = resolve));

  constructor(private readonly session: KubernetesExecSession) {
    session.stream.on('data', (chunk: Buffer) => this.splitter.write(chunk));
    this.ended = once(session.stream, 'end').catch(() => undefined);
    void this.ended.then(() => this.onBacklog());
    session.stream.end();
  }

  /** Resolves once the log's newest lines have arrived (or the exec ended, or `timeoutMs` passed). */
  async backlogSent(timeoutMs: number): Promise<void> {
    const timer = new AbortController();
    await Promise.race([this.backlog, delay(timeoutMs, undefined, { signal: timer.signal }).catch(() => undefined)]);
    timer.abort();
  }

  private add(line: string): void {
    if (line === BACKLOG_SENT) return this.onBacklog();
    this.lines.push(line);
    this.bytes += Buffer.byteLength(line) + 1;
    while (this.bytes > CAPTURE_MAX_BYTES && this.lines.length > 1) this.bytes -= Buffer.byteLength(this.lines.shift() ?? '') + 1;
  }

  async finish(): Promise<string[]> {
    const timer = new AbortController();
    await Promise.race([this.ended, delay(CAPTURE_DRAIN_MS, undefined, { signal: timer.signal }).catch(() => undefined)]);
    timer.abort();
    await this.session.kill();
    this.splitter.end();
    return newestLines(this.lines);
  }
}

/** Keeps, reads and (through EnvironmentObjects.remove) deletes the logs of stopped environments. */
export class StoppedLogs {
  private readonly logger = new Logger('KubernetesRuntime');

  constructor(
    private readonly api: KubernetesApi,
    private readonly exec: PodExec,
    /** The stopped log's ConfigMap carries the installation's label, like every other object. */
    private readonly ownership: Ownership,
  ) {}

  /** Starts capturing the log of a running pod (never rejects: a capture that cannot start says why). */
  async capture(at: Located): Promise<LogCapture> {
    try {
      const session = await this.exec.open(at, ['sh', '-c', KEEP_LOG_SCRIPT, 'keep-log', String(CAPTURE_LINES), BACKLOG_SENT], false);
      const capture = new ExecCapture(session);
      await capture.backlogSent(CAPTURE_BACKLOG_MS);
      return capture;
    } catch (error) {
      const problem = reasonOf(error);
      return { problem, finish: () => Promise.resolve(null) };
    }
  }

  /**
   * Writes the log a stop leaves (see stoppedLogText); `capture` is null when no pod ran. A failure
   * is logged, never thrown: the stop itself succeeded.
   */
  async keep(spec: EnvironmentSpec, at: Located, capture: LogCapture | null): Promise<void> {
    try {
      const captured = capture ? await capture.finish() : null;
      const previous = captured ? [] : ((await this.read(at)) ?? []);
      const text = stoppedLogText(captured, previous, capture?.problem ?? null, new Date());
      const name = stoppedLogName(at.id);
      const patched = await this.api.find(`update ConfigMap ${name}`, () =>
        this.api.core.patchNamespacedConfigMap({
          name,
          namespace: at.namespace,
          body: { metadata: { labels: this.ownership.labels }, data: { [STOPPED_LOG_KEY]: text } },
        }),
      );
      if (patched === null) {
        const body = this.ownership.label(stoppedLogConfigMap(spec, at.namespace, text));
        await this.api.call(`create ConfigMap ${name}`, () => this.api.core.createNamespacedConfigMap({ namespace: at.namespace, body }));
      }
    } catch (error) {
      this.logger.warn(`Could not keep the log of the stopped environment ${at.id}: ${reasonOf(error)}`);
    }
  }

  /** The log the last stop kept; null when there is none. */
  async read(at: Located): Promise<string[] | null> {
    const name = stoppedLogName(at.id);
    const config = await this.api.find(`read ConfigMap ${name}`, () =>
      this.api.core.readNamespacedConfigMap({ name, namespace: at.namespace }),
    );
    const text = config?.data?.[STOPPED_LOG_KEY];
    return text === undefined ? null : splitLines(text);
  }
}
