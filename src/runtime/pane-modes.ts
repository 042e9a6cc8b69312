/**
 * The terminal modes of the pane a terminal attachment shows (the active pane of the session's
 * current window), read from the environment by a small helper process (pane-probe.ts): what the
 * terminal needs to predict keystroke echo safely. See docs/runtime.md, "Pane modes".
 */

/** The modes of the pane a terminal shows. */
export interface PaneModes {
  /**
   * ECHO of the pane's terminal (termios): the kernel echoes what is typed. Null when it could not
   * be read. A shell prompt (readline) and full-screen programs run with echo off and echo
   * themselves; a password prompt runs with echo off and canonical mode on.
   */
  echo: boolean | null;
  /** ICANON of the pane's terminal (termios): line editing by the kernel. Null when it could not be read. */
  canonical: boolean | null;
  /** The pane shows its alternate screen (full-screen programs: vim, less, top): tmux `#{alternate_on}`. */
  altScreen: boolean;
  /** DECCKM as the pane's program set it: tmux `#{keypad_cursor_flag}`. tmux translates the client's arrow keys to it. */
  cursorKeys: 'normal' | 'application';
  /** The pane is in a tmux mode (copy mode, view mode, a chooser): keys go to tmux, not to the program. tmux `#{pane_in_mode}`. */
  copyMode: boolean;
}

/**
 * Where the probe reads the pane's termios:
 * - `pane-tty`: `stty -a -F <pane tty>` in the probe itself, which shares the tmux server's
 *   `/dev/pts` (a container; the local runtime without a sandbox);
 * - `tmux-server`: through a `tmux run-shell` job, which runs in the tmux server's own sandbox:
 *   bubblewrap gives every sandbox its own `/dev/pts`, so the probe's sandbox cannot open the pane's
 *   terminal. The job leaves the flags in the pane option `@devpocket_termios`.
 */
export type TermiosSource = 'pane-tty' | 'tmux-server';

/**
 * The probe: a POSIX sh loop that answers each line read on stdin with one line,
 * `<alternate_on> <keypad_cursor_flag> <pane_in_mode> <pane_tty>|<termios flags>` (the flags being
 * the words echo/-echo/icanon/-icanon of `stty -a`; empty when unreadable; the tmux part blank when
 * the session is gone). Constant text: the session name and the termios source come as `$1` and
 * `$2` (argv), never inside the script. `#{pane_tty}` and `#{pane_id}` in the job are expanded by
 * tmux (its own `/dev/pts/N` and `%N`). The job prints nothing and always succeeds, since tmux
 * would show a job's output or failure in the pane. With `tmux-server`, one tmux command reads
 * everything: clear the option, run the job (tmux waits for it), print the flags and the option.
 * Nothing but answers reaches the output: each command's stderr goes to /dev/null (the runtimes
 * merge stderr into stdout). The script's own stderr stays open: on Kubernetes (containerd) a
 * helper that had closed it (`exec 2>/dev/null`) saw the end of its input after its first answer.
 */
export const PANE_PROBE_SCRIPT = `session=$1
source=$2
format='#{alternate_on} #{keypad_cursor_flag} #{pane_in_mode} #{pane_tty}'
job='exec >/dev/null 2>&1; set -f; f=; for w in $(stty -a -F #{pane_tty}); do case $w in echo|-echo|icanon|-icanon) f="$f $w" ;; esac; done; tmux set-option -p -t "#{pane_id}" @devpocket_termios "$f"; true'
set -f
while IFS= read -r request; do
  pane=''
  termios=''
  case $source in
  pane-tty)
    pane=$(tmux display-message -p -t "=$session:" "$format" 2>/dev/null) || pane=''
    set -- $pane
    if [ $# -eq 4 ]; then termios=$(stty -a -F "$4" 2>/dev/null) || termios=''; fi ;;
  tmux-server)
    answer=$(tmux set-option -p -t "=$session:" @devpocket_termios '' \\; run-shell -t "=$session:" "$job" \\; display-message -p -t "=$session:" "$format|#{@devpocket_termios}" 2>/dev/null) || answer=''
    case $answer in *'|'*) pane=\${answer%%'|'*} termios=\${answer#*'|'} ;; esac ;;
  esac
  flags=''
  for word in $termios; do
    case $word in echo|-echo|icanon|-icanon) flags="$flags $word" ;; esac
  done
  printf '%s|%s\\n' "$pane" "$flags"
done
`;

/** argv of the probe for the session (run by the runtime's exec, without a TTY). */
export function paneProbeCommand(session: string, source: TermiosSource): string[] {
  return ['sh', '-c', PANE_PROBE_SCRIPT, 'devpocket-pane-probe', session, source];
}

/**
 * A termios flag in `stty -a` output (GNU coreutils or busybox): `word` set, `-word` cleared;
 * null when absent. Words are matched whole (`echo` is not `echoe`), across spaces, `;` and lines.
 */
export function sttyFlag(stty: string, word: string): boolean | null {
  let found: boolean | null = null;
  for (const token of stty.split(/[\s;]+/)) {
    if (token === word) found = true;
    else if (token === `-${word}`) found = false;
  }
  return found;
}

function flag(value: string | undefined): boolean | null {
  if (value === '1') return true;
  if (value === '0') return false;
  return null;
}

/** One answer of the probe; null when tmux did not answer (the session is gone) or the line is not one. */
export function parsePaneProbeAnswer(line: string): PaneModes | null {
  const bar = line.indexOf('|');
  if (bar < 0) return null;
  const [alternate, keypadCursor, inMode] = line.slice(0, bar).trim().split(/\s+/);
  const altScreen = flag(alternate);
  const cursorKeys = flag(keypadCursor);
  const copyMode = flag(inMode);
  if (altScreen === null || cursorKeys === null || copyMode === null) return null;
  const termios = line.slice(bar + 1);
  return {
    echo: sttyFlag(termios, 'echo'),
    canonical: sttyFlag(termios, 'icanon'),
    altScreen,
    cursorKeys: cursorKeys ? 'application' : 'normal',
    copyMode,
  };
}
