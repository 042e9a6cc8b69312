import { readFileSync } from 'node:fs';

/**
 * The shell scripts of an environment's pod, kept as files beside this module (`scripts/*.sh`,
 * copied into dist by the build). They are constants: nothing a user typed is ever spliced into
 * them. Per-environment data reaches them as files of the environment's ConfigMap (the template's
 * steps, one file each; the required commands, one per line; `counts`) and through the container's
 * environment (see manifests.ts).
 *
 * Everything an environment keeps lives under `$HOME/.devpocket/` on its home volume:
 * `environment.log` (startup output and runtime events, each line prefixed with an ISO time) and
 * `installation` (progress of the user-level startup steps: `<spec hash> <done> <total> <failed>`).
 * What lives only as long as the pod (the tmux socket, the ready and failure markers) is in
 * `$TMUX_TMPDIR`, an emptyDir.
 */

/** Where the ConfigMap is mounted in the container (the container's `DEVPOCKET_CONFIG_DIR`). */
export const CONFIG_MOUNT_PATH = '/etc/devpocket';
/** The emptyDir for the tmux socket and per-pod markers (the container's `TMUX_TMPDIR`). */
export const RUN_MOUNT_PATH = '/run/devpocket';

function script(name: string): string {
  return readFileSync(new URL(`./scripts/${name}`, import.meta.url), 'utf8');
}

/**
 * PID 1 of the workspace container: system-level steps (as root, when the container runs as
 * root), the required-commands check, the tmux server with the DevPocket session (as the
 * environment's user), the ready marker, then the user-level steps from the first unfinished one.
 * Failures are logged to the home volume and the container lives on until SIGTERM.
 */
export const ENTRYPOINT_SCRIPT = script('entrypoint.sh');
/** One exec per status(): ready/failure markers, installation progress, missing commands (`key=value` lines). */
export const STATUS_SCRIPT = script('status.sh');
/** Prints the environment's log. */
export const LOG_SCRIPT = script('log.sh');
/** Prints the newest `$1` lines of the log, then follows it until the stream is closed. */
export const FOLLOW_LOG_SCRIPT = script('follow-log.sh');
/** Memory, CPU time, home size and network counters from inside the container (`key=value` lines). */
export const METRICS_SCRIPT = script('metrics.sh');
/** Ends the tmux server before a stop, so shells get a hangup and save their history. */
export const STOP_SCRIPT = script('stop.sh');
/** The log a stop keeps: the newest `$1` lines, the line `$2` once they are out, then every new line, gap-free. */
export const KEEP_LOG_SCRIPT = script('keep-log.sh');

/** Parses `key=value` lines (the output of the scripts above). */
export function parseKeyValues(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of text.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) values.set(line.slice(0, at).trim(), line.slice(at + 1).replace(/\r$/, ''));
  }
  return values;
}
