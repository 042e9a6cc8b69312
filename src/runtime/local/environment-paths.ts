import { readdir } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';

import { AppError } from '../../common/errors/app-error.js';
import { RuntimeError } from '../runtime.errors.js';
import { assertEnvironmentId, ENVIRONMENT_ID_PATTERN } from '../runtime.provider.js';

/** Nothing but an environment id (ENVIRONMENT_ID_PATTERN) reaches a path or a tmux name. */
export { assertEnvironmentId, ENVIRONMENT_ID_PATTERN };

/** Unix socket paths are limited to 108 bytes including the terminating NUL (sun_path on Linux). */
export const MAX_SOCKET_PATH_BYTES = 107;

/**
 * Where one environment lives on this host:
 *
 * ```
 * <localRoot>/<id>/home              the environment's HOME (0700)
 * <localRoot>/<id>/tmux/             TMUX_TMPDIR: its own tmux server socket (tmux-<uid>/default)
 * <localRoot>/<id>/environment.log   startup output and runtime events, one ISO timestamp per line
 * <localRoot>/<id>/state.json        what the runtime remembers (spec hash, startup progress, …)
 * ```
 */
export class EnvironmentPaths {
  readonly root: string;
  readonly home: string;
  readonly tmuxDir: string;
  /** The socket tmux derives from TMUX_TMPDIR for this OS user. */
  readonly socket: string;
  readonly log: string;
  readonly state: string;

  constructor(
    localRoot: string,
    readonly id: string,
    uid: number = process.getuid?.() ?? 0,
  ) {
    assertEnvironmentId(id);
    this.root = join(localRoot, id);
    this.home = join(this.root, 'home');
    this.tmuxDir = join(this.root, 'tmux');
    this.socket = join(this.tmuxDir, `tmux-${uid}`, 'default');
    this.log = join(this.root, 'environment.log');
    this.state = join(this.root, 'state.json');
  }

  /**
   * The template's working directory inside the home ('' = the home itself). Refuses absolute
   * paths and anything that would leave the home.
   */
  workdir(workingDirectory: string): string {
    const wanted = workingDirectory.trim();
    if (wanted === '') return this.home;
    const target = resolve(this.home, wanted);
    const inside = relative(this.home, target);
    if (isAbsolute(wanted) || inside.startsWith('..') || isAbsolute(inside)) {
      throw new AppError(
        RuntimeError.InvalidWorkingDirectory,
        `Invalid working directory ${JSON.stringify(workingDirectory)}: it must stay inside the home directory`,
      );
    }
    return target;
  }
}

/** The ids of every environment with a directory under `localRoot` (what `list()` reports, orphans included). */
export async function listEnvironmentIds(localRoot: string): Promise<string[]> {
  try {
    const entries = await readdir(localRoot, { withFileTypes: true });
    return entries.filter((entry) => entry.isDirectory() && ENVIRONMENT_ID_PATTERN.test(entry.name)).map((entry) => entry.name);
  } catch {
    return [];
  }
}
