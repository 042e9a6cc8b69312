import { describe, expect, it } from 'vitest';
import { EditorProgram } from './simulated-editor.js';
import { confirmedPrompt, PASSWORD_MODES, READLINE_MODES, ReadlineProgram, SimulatedLink } from './simulated-link.js';

/** The modes of vim (or any full-screen program with echo and canonical mode off), arrows in application mode. */
const EDITOR_MODES = { ...READLINE_MODES, alt_screen: true, cursor_keys: 'application' as const };

/** vim over a 250 ms round trip, on a 40×10 screen, in normal mode on the first line of `lines`. */
function editor(lines: string[]): { link: SimulatedLink; vim: EditorProgram } {
  const vim = new EditorProgram(lines, 10);
  const link = new SimulatedLink(vim, 250);
  link.receive(vim.start(), 0);
  link.modes(EDITOR_MODES);
  return { link, vim };
}

/** vim in insert mode at the end of the first line (`A`: guessed as a character before vi is known, hidden, wrong). */
function appending(lines: string[]): SimulatedLink {
  const { link } = editor(lines);
  link.type('A');
  link.settle();
  return link;
}

describe('predicted echo: editing inside a line', () => {
  it('predicts a character typed in the middle of a line, moving the rest of the line right', () => {
    const { link } = confirmedPrompt();
    link.typeEach('cho', 10);
    link.type('\x1b[D');
    link.type('\x1b[D');
    link.settle();
    link.type('X');
    expect(link.engine.overlay()).toEqual({
      buffer: 'normal',
      cells: [
        { row: 0, col: 4, char: 'X' },
        { row: 0, col: 5, char: 'h', moved: true },
        { row: 0, col: 6, char: 'o', moved: true },
      ],
      cursor: { row: 0, col: 5 },
    });
    link.settle();
    expect(link.terminal.line(0)).toBe('$ ecXho');
    expect(link.engine.counters).toMatchObject({ mismatches: 0, wrongShown: 0 });
  });

  it('predicts Backspace in the middle of a line, moving the rest of the line left', () => {
    const { link } = confirmedPrompt();
    link.typeEach('cho', 10);
    link.type('\x1b[D');
    link.type('\x1b[D');
    link.type('\x7f'); // erases the c typed before the arrows
    expect(link.engine.overlay().cells).toEqual([
      { row: 0, col: 3, char: 'h', moved: true },
      { row: 0, col: 4, char: 'o', moved: true },
      { row: 0, col: 5, char: ' ', moved: true },
    ]);
    link.settle();
    expect(link.terminal.line(0)).toBe('$ eho');
    expect(link.engine.counters).toMatchObject({ mismatches: 0, wrongShown: 0 });
  });

  it('does not move text that is coloured (a suggestion, as zsh draws them) or far to the right (a right-hand prompt)', () => {
    const { link } = confirmedPrompt();
    link.receive('\x1b[2mcho hello\x1b[0m\x1b[9D');
    const made = link.engine.counters.predicted;
    link.type('c');
    expect(link.engine.counters.predicted).toBe(made);

    const { link: other } = confirmedPrompt();
    other.receive('\x1b[20C[main]\x1b[26D');
    const before = other.engine.counters.predicted;
    other.type('c');
    expect(other.engine.counters.predicted).toBe(before);
  });
});

describe('predicted echo: Enter at a prompt', () => {
  it('moves the cursor to the next row at once, and confirms it when the cursor has left the row', () => {
    const { link } = confirmedPrompt();
    link.type('\r');
    expect(link.engine.overlay()).toEqual({ buffer: 'normal', cells: [], cursor: { row: 1, col: 0 } });
    link.settle();
    expect(link.terminal.line(1)).toBe('$');
    expect(link.engine.counters).toMatchObject({ confirmed: 2, mismatches: 0, shownAtOnce: 1 });
  });

  it('is not predicted on the last row (the screen would scroll: that cannot be drawn over it)', () => {
    const shell = new ReadlineProgram();
    const link = new SimulatedLink(shell, 250, {}, { cols: 20, rows: 2 });
    link.receive('\r\n$ ', 0);
    link.modes(READLINE_MODES);
    link.type('a');
    link.settle();
    const made = link.engine.counters.predicted;
    link.type('\r');
    expect(link.engine.counters.predicted).toBe(made);
  });

  it('is erased and counted wrong when the program does not end the line', () => {
    const { link } = confirmedPrompt();
    link.program = { input: (data) => (data === '\r' ? '' : data) };
    link.type('\r');
    expect(link.engine.overlay().cursor).toEqual({ row: 1, col: 0 });
    link.settle();
    expect(link.engine.overlay().cursor).toBeNull();
    expect(link.engine.counters).toMatchObject({ mismatches: 1, wrongShown: 1 });
  });
});

describe('predicted echo: prompts seen to echo', () => {
  it('draws the first key at the next prompt at once when typing at the same prompt echoed', () => {
    const { link, shell } = confirmedPrompt();
    shell.run = () => 'hello\r\n';
    link.type('\r');
    link.settle();
    link.type('l');
    expect(link.shownOn(2)).toBe('l');
    link.settle();
    expect(link.terminal.line(2)).toBe('$ l');
    expect(link.engine.counters).toMatchObject({ mismatches: 0, wrongShown: 0 });
  });

  it('keeps hidden what is typed at another prompt in the same modes (a password asked by a remote host)', () => {
    const { link } = confirmedPrompt();
    // ssh: the pane's terminal stays raw (echo and canonical mode off), the remote sudo echoes nothing.
    link.program = { input: (data) => (data === '\r' ? '\r\n[sudo] password for me: ' : '') };
    link.type('\r');
    link.settle();
    const shown = link.engine.counters.shown;
    for (const char of 'hunter2') {
      link.type(char);
      expect(link.engine.overlay().cells).toEqual([]);
      link.advance(80);
    }
    link.settle();
    expect(link.engine.counters.shown).toBe(shown);
  });

  it('forgets a prompt where a key drawn at once turned out wrong', () => {
    const { link, shell } = confirmedPrompt();
    link.type('\r');
    link.settle();
    link.program = { input: (data) => (data === '\r' ? '\r\n$ ' : '') }; // the same prompt, no echo
    link.type('x');
    expect(link.shownOn(1)).toBe('x');
    link.settle();
    expect(link.engine.counters).toMatchObject({ mismatches: 1, wrongShown: 1 });
    link.type('\r');
    link.settle();
    link.program = shell;
    link.type('y');
    expect(link.engine.overlay().cells).toEqual([]);
  });

  it('takes no prompt of a full-screen program (vim’s command line echoes, less’s prompt does not)', () => {
    const link = new SimulatedLink({ input: (data) => (data === '\r' ? '\r\n:' : data) }, 250);
    link.receive('\x1b[2J\x1b[H:', 0);
    link.modes({ ...READLINE_MODES, alt_screen: true });
    link.type('w');
    link.settle();
    expect(link.engine.counters.confirmed).toBe(1);
    link.type('\r');
    link.settle();
    link.program = { input: () => '' };
    link.type('j');
    expect(link.engine.overlay().cells).toEqual([]);
    link.settle();
    expect(link.engine.counters.wrongShown).toBe(0);
  });

  it('drops keys typed after Enter when the modes then say a password is read', () => {
    const { link } = confirmedPrompt();
    link.program = { input: (data) => (data === '\r' ? '\r\nPassword: ' : '') };
    link.type('\r');
    link.type('s'); // waits for the prompt
    link.modes(PASSWORD_MODES);
    const made = link.engine.counters.predicted;
    link.type('3');
    link.settle();
    expect(link.engine.counters.predicted).toBe(made);
    expect(link.engine.counters.shown).toBe(link.engine.counters.shownAtOnce);
    expect(link.engine.overlay().cells).toEqual([]);
  });
});

describe('predicted echo: an editor', () => {
  it('predicts insertions in the middle of a line once the insertion echoes, the rest of the line moving right', () => {
    const { link, vim } = editor(['alpha beta']);
    link.type('l');
    link.type('i'); // entered insert mode before "lpha": guessed as a character, hidden, then wrong
    link.advance(120);
    link.typeEach('xyz', 120);
    link.advance(400);
    link.typeEach('uvw', 120);
    expect(link.shownOn(0)).toContain('w');
    link.settle();
    expect(vim.lines[0]).toBe('axyzuvwlpha beta');
    expect(link.terminal.line(0)).toBe('axyzuvwlpha beta');
    expect(link.engine.counters.wrongShown).toBe(0);
    expect(link.engine.counters.shownAtOnce).toBeGreaterThanOrEqual(2);
  });

  it('predicts the keys typed after the key that entered insert mode again from where the cursor went', () => {
    const { link } = editor(['alpha beta']);
    link.type('A'); // appends at the end of the line; guessed as a character at the start of it
    link.advance(80);
    link.typeEach('gamma', 80);
    // A's guess is wrong once its echo is drawn (250 ms) and the grace is over (375 ms): the keys whose
    // echo has not come are predicted from the end of the line; the echo of the first confirms them (410 ms).
    expect(link.engine.counters.mismatches).toBe(1);
    expect(link.shownOn(0).length).toBeGreaterThan(0);
    link.settle();
    expect(link.terminal.line(0)).toBe('alpha betagamma');
    expect(link.engine.counters.wrongShown).toBe(0);
  });

  it('takes keys in vi’s normal mode as commands, and draws at once what follows the one that shows its insert-mode line', () => {
    const { link } = editor(['alpha beta']);
    link.type('A'); // before vi is known: guessed as a character, hidden, wrong
    link.settle();
    link.type('\x1b');
    link.settle();
    link.type('0');
    link.settle();
    const made = link.engine.counters.predicted;
    link.type('i'); // a command: not guessed
    expect(link.engine.counters.predicted).toBe(made);
    link.advance(100);
    link.type('x'); // waits for i's echo
    expect(link.engine.overlay().cells).toEqual([]);
    link.advance(160); // i's echo is drawn (250 ms) with "-- INSERT --": x is predicted and drawn
    expect(link.engine.overlay().cells).toContainEqual({ row: 0, col: 0, char: 'x' });
    link.type('y');
    expect(link.engine.overlay().cells).toContainEqual({ row: 0, col: 1, char: 'y' });
    link.settle();
    expect(link.terminal.line(0)).toBe('xyalpha beta');
    expect(link.engine.counters).toMatchObject({ mismatches: 1, wrongShown: 0 });
  });

  it('predicts Enter in insert mode on a line of words with nothing below, and goes on drawing at once', () => {
    const link = appending(['alpha']);
    link.typeEach(' beta', 100);
    link.type('\r');
    expect(link.engine.overlay().cursor).toEqual({ row: 1, col: 0 });
    expect(link.shownOn(1)).toBe(' '); // the `~` there is blanked
    link.advance(100);
    for (const char of 'gamma') {
      link.type(char);
      expect(link.shownOn(1).endsWith(char)).toBe(true);
      link.advance(100);
    }
    link.settle();
    expect(link.terminal.line(0)).toBe('alpha beta');
    expect(link.terminal.line(1)).toBe('gamma');
    // The one mismatch: A, guessed as a character, never drawn.
    expect(link.engine.counters).toMatchObject({ mismatches: 1, wrongShown: 0 });
  });

  it('splits the line at the cursor on Enter in the middle of it', () => {
    const link = appending(['alpha']);
    link.typeEach('xy', 100);
    link.type('\x1bOD');
    link.settle();
    link.type('\r');
    expect(link.shownOn(0)).toBe(' '); // the y moves to the next row
    expect(link.shownOn(1)).toContain('y');
    link.settle();
    expect(link.terminal.line(0)).toBe('alphax');
    expect(link.terminal.line(1)).toBe('y');
    expect(link.engine.counters).toMatchObject({ mismatches: 1, wrongShown: 0 });
  });

  it('does not predict Enter on an indented line, nor where the last row does not show insert mode (a shell in a nested tmux)', () => {
    const link = appending(['    alpha']);
    link.type('b');
    link.settle();
    const made = link.engine.counters.predicted;
    link.type('\r');
    expect(link.engine.counters.predicted).toBe(made);

    const shell = new ReadlineProgram();
    const nested = new SimulatedLink(shell, 250);
    nested.receive('\x1b[2J\x1b[H$ ', 0);
    nested.modes(EDITOR_MODES);
    nested.type('l');
    nested.settle();
    const before = nested.engine.counters.predicted;
    nested.type('\r');
    expect(nested.engine.counters.predicted).toBe(before);
  });

  it('does not predict Backspace over what was typed before ← or → (an editor starts a new insertion there)', () => {
    const link = appending(['alpha']);
    link.typeEach('xy', 100);
    link.type('\x1bOD');
    link.type('\x1bOC');
    const made = link.engine.counters.predicted;
    link.type('\x7f');
    expect(link.engine.counters.predicted).toBe(made);
    link.settle();
    expect(link.terminal.line(0)).toBe('alphaxy');
    expect(link.engine.counters.wrongShown).toBe(0);
  });
});
