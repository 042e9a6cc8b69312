/**
 * Exec through the API server for tests (client-node's WebSocket exec, `v5.channel.k8s.io`), and the
 * exit code of its final status, in both forms it comes in: a kubelet sends reason
 * `NonZeroExitCode` with an `ExitCode` cause; kwok sends `Failure` with the code only in the message
 * (`… exit status 3`).
 */
import { PassThrough, type Readable } from 'node:stream';

import { CoreV1Api, Exec, type KubeConfig, type V1Status } from '@kubernetes/client-node';

export interface ExecResult {
  stdout: string;
  stderr: string;
  status: V1Status;
  exitCode: number;
}

/** The exit code an exec's final status reports, or null when it reports none. */
export function exitCodeOf(status: V1Status): number | null {
  if (status.status === 'Success') return 0;
  const cause = status.details?.causes?.find((entry) => entry.reason === 'ExitCode');
  if (cause?.message !== undefined && /^\d+$/.test(cause.message)) return Number(cause.message);
  const match = /exit (?:status|code) (\d+)/.exec(status.message ?? '');
  return match === null ? null : Number(match[1]);
}

/** A stdout that client-node treats as a terminal: its size is sent at once and on every `resize` event. */
export class FakeTerminal extends PassThrough {
  constructor(
    public rows: number,
    public columns: number,
  ) {
    super();
  }

  resize(rows: number, columns: number): void {
    this.rows = rows;
    this.columns = columns;
    this.emit('resize');
  }
}

export interface ExecOptions {
  container?: string;
  stdin?: Readable;
  /** TTY mode; stdout is then the terminal (pass a {@link FakeTerminal} to resize it). */
  tty?: boolean;
  stdout?: PassThrough;
  timeoutMs?: number;
}

/** Runs a command in a pod and waits for its final status. */
export async function execInPod(
  kubeConfig: KubeConfig,
  namespace: string,
  pod: string,
  command: string[],
  options: ExecOptions = {},
): Promise<ExecResult> {
  const stdout = options.stdout ?? new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
  const container = options.container ?? (await firstContainer(kubeConfig, namespace, pod));
  const timeoutMs = options.timeoutMs ?? 20_000;
  const status = await new Promise<V1Status>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`exec ${JSON.stringify(command)} in ${pod}: no status after ${String(timeoutMs)} ms`)),
      timeoutMs,
    );
    new Exec(kubeConfig)
      .exec(
        namespace,
        pod,
        container,
        command,
        stdout,
        options.tty === true ? null : stderr,
        options.stdin ?? null,
        options.tty === true,
        (final) => {
          clearTimeout(timer);
          resolve(final);
        },
      )
      .catch((error: unknown) => {
        clearTimeout(timer);
        // client-node rejects with the WebSocket's ErrorEvent (e.g. `Unexpected server response: 403`).
        const message = error instanceof Error ? error.message : (error as { message?: unknown } | null)?.message;
        reject(
          new Error(`exec ${JSON.stringify(command)} in ${pod}: ${typeof message === 'string' ? message : String(error)}`, {
            cause: error,
          }),
        );
      });
  });
  // Output frames arrive before the status frame; let the streams flush.
  await new Promise((resolve) => setImmediate(resolve));
  const exitCode = exitCodeOf(status);
  if (exitCode === null) throw new Error(`exec ${JSON.stringify(command)} in ${pod}: no exit code in ${JSON.stringify(status)}`);
  return { stdout: out, stderr: err, status, exitCode };
}

async function firstContainer(kubeConfig: KubeConfig, namespace: string, pod: string): Promise<string> {
  const found = await kubeConfig.makeApiClient(CoreV1Api).readNamespacedPod({ name: pod, namespace });
  return found.spec!.containers[0].name;
}
