import { PANE_PROBE_SCRIPT, type PaneModes, paneProbeCommand, parsePaneProbeAnswer, sttyFlag } from './pane-modes.js';

/** The modes at a bash prompt. */
const PROMPT: PaneModes = { echo: false, canonical: false, altScreen: false, cursorKeys: 'normal', copyMode: false };

/** `stty -a -F` of a pane at a bash prompt (GNU coreutils 9, this machine). */
const GNU_PROMPT = [
  'speed 38400 baud; rows 23; columns 80; line = 0;',
  'intr = ^C; quit = ^\\; erase = ^?; kill = ^U; eof = ^D; eol = <undef>; eol2 = <undef>; swtch = <undef>; start = ^Q;',
  'stop = ^S; susp = ^Z; rprnt = ^R; werase = ^W; lnext = <undef>; discard = <undef>; min = 1; time = 0;',
  '-parenb -parodd -cmspar cs8 -hupcl -cstopb cread -clocal -crtscts',
  '-ignbrk -brkint -ignpar -parmrk -inpck -istrip -inlcr -igncr -icrnl ixon -ixoff -iuclc -ixany -imaxbel iutf8',
  'opost -olcuc -ocrnl onlcr -onocr -onlret -ofill -ofdel nl0 cr0 tab0 bs0 vt0 ff0',
  'isig -icanon iexten -echo echoe echok -echonl -noflsh -xcase -tostop -echoprt echoctl echoke -flusho -extproc',
].join('\n');

/** busybox stty -a at a password prompt: other line breaks, `-echo` last on its line. */
const BUSYBOX_PASSWORD = [
  'speed 38400 baud;stty: standard input',
  'line = 0; intr = ^C; quit = ^\\; erase = ^?; kill = ^U; eof = ^D; eol = <undef>;',
  '-parenb -parodd cs8 -hupcl -cstopb cread -clocal -crtscts',
  'opost -olcuc -ocrnl onlcr -onocr -onlret -ofill -ofdel nl0 cr0 tab0 bs0 vt0 ff0',
  'isig icanon iexten echoe echok -echonl -noflsh -xcase -tostop -echoprt -echo',
  'echoctl echoke',
].join('\n');

describe('pane modes', () => {
  it('reads echo and icanon from stty -a as whole words (echoe, echok, echonl are other flags)', () => {
    expect(sttyFlag(GNU_PROMPT, 'echo')).toBe(false);
    expect(sttyFlag(GNU_PROMPT, 'icanon')).toBe(false);
    expect(sttyFlag(GNU_PROMPT, 'iutf8')).toBe(true);
    expect(sttyFlag(BUSYBOX_PASSWORD, 'echo')).toBe(false);
    expect(sttyFlag(BUSYBOX_PASSWORD, 'icanon')).toBe(true);
    expect(sttyFlag('isig icanon echo;echoe', 'echo')).toBe(true);
    expect(sttyFlag('echoe echok -echonl echoctl', 'echo')).toBeNull();
    expect(sttyFlag('', 'icanon')).toBeNull();
  });

  it('parses an answer of the probe: tmux flags, then the termios flags', () => {
    expect(parsePaneProbeAnswer('0 0 0 /dev/pts/3| -icanon -echo')).toEqual(PROMPT);
    expect(parsePaneProbeAnswer('1 1 0 /dev/pts/0| -icanon -echo')).toMatchObject({ altScreen: true, cursorKeys: 'application' });
    expect(parsePaneProbeAnswer('0 0 1 /dev/pts/0| icanon echo')).toMatchObject({ echo: true, canonical: true, copyMode: true });
    expect(parsePaneProbeAnswer('0 0 0 /dev/pts/12| icanon -echo')).toMatchObject({ echo: false, canonical: true });
  });

  it('marks the termios unknown when it could not be read, and the whole answer null when tmux did not answer', () => {
    expect(parsePaneProbeAnswer('0 1 0 /dev/pts/3|')).toEqual({ ...PROMPT, echo: null, canonical: null, cursorKeys: 'application' });
    expect(parsePaneProbeAnswer('   |')).toBeNull();
    expect(parsePaneProbeAnswer('|')).toBeNull();
    expect(parsePaneProbeAnswer('0 0 0 /dev/pts/3')).toBeNull();
    expect(parsePaneProbeAnswer('x 0 0 /dev/pts/3| echo icanon')).toBeNull();
    expect(parsePaneProbeAnswer('sh: 1: tmux: not found')).toBeNull();
  });

  it('runs a constant script: the session and the termios source are arguments', () => {
    const session = 'devpocket_0123456789abcdef01234567';
    expect(paneProbeCommand(session, 'pane-tty')).toEqual(['sh', '-c', PANE_PROBE_SCRIPT, 'devpocket-pane-probe', session, 'pane-tty']);
    expect(PANE_PROBE_SCRIPT).not.toContain('devpocket_0');
    expect(paneProbeCommand(session, 'tmux-server').at(-1)).toBe('tmux-server');
  });
});
