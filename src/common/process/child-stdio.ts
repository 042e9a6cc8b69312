import type { ChildProcess } from 'node:child_process';

/**
 * Gives a child process's pipes an 'error' listener. A pipe can fail on its own, e.g. with
 * ECONNRESET or EPIPE when the child exits with input unread, and an 'error' event nobody listens
 * to ends the whole server. What went wrong with the child is reported by its 'exit' or 'close'
 * (and by a read or write that needs the pipe), so the pipe's own error is dropped here.
 */
export function guardChildStdio(child: ChildProcess): ChildProcess {
  for (const stream of [child.stdin, child.stdout, child.stderr]) stream?.on('error', ignore);
  return child;
}

const ignore = (): void => undefined;
