import { describe, expect, it } from 'vitest';
import {
  confirmedPrompt,
  PASSWORD_MODES,
  PasswordProgram,
  READLINE_MODES,
  ReadlineProgram,
  SimulatedLink,
  type Program,
} from './simulated-link.js';

describe('predicted echo: a shell prompt', () => {
  it('keeps the first prediction of an epoch hidden until the echo confirms it, then draws the next ones at once', () => {
    const link = new SimulatedLink(new ReadlineProgram(), 250);
    link.receive('$ ', 0);
    link.modes(READLINE_MODES);
    link.type('l');
    expect(link.engine.overlay().cells).toEqual([]);
    link.settle();
    expect(link.terminal.line(0)).toBe('$ l');
    link.type('s');
    expect(link.engine.overlay()).toEqual({ buffer: 'normal', cells: [{ row: 0, col: 3, char: 's' }], cursor: { row: 0, col: 4 } });
    expect(link.terminal.line(0)).toBe('$ l'); // the buffer holds only what the server sent
    link.settle();
    expect(link.engine.overlay().cells).toEqual([]);
    expect(link.terminal.line(0)).toBe('$ ls');
    expect(link.engine.counters).toMatchObject({ predicted: 2, confirmed: 2, shown: 1, shownAtOnce: 1, mismatches: 0, wrongShown: 0 });
  });

  it('draws a whole word typed faster than the round trip, each character at once, and confirms it all', () => {
    const { link } = confirmedPrompt();
    link.typeEach('cho hello', 60);
    expect(link.shownOn(0).length).toBeGreaterThan(0);
    link.settle();
    expect(link.terminal.line(0)).toBe('$ echo hello');
    expect(link.engine.counters).toMatchObject({ predicted: 10, confirmed: 10, shownAtOnce: 9, mismatches: 0 });
    expect(link.engine.overlay().cells).toEqual([]);
  });

  it('predicts nothing after Enter until the new prompt is drawn, then starts a tentative epoch', () => {
    const { link, shell } = confirmedPrompt();
    shell.run = () => 'output\r\n';
    link.type('\r');
    link.type('l'); // typed before the prompt came back: not drawn
    expect(link.engine.overlay().cells).toEqual([]);
    link.settle();
    expect(link.terminal.line(1)).toBe('output');
    expect(link.terminal.line(2)).toBe('$ l');
    link.type('s');
    expect(link.engine.overlay().cells).toEqual([]); // a new epoch: tentative until confirmed
    link.settle();
    link.type(' ');
    expect(link.engine.overlay().cells).toEqual([{ row: 2, col: 4, char: ' ' }]);
    link.settle();
    expect(link.engine.counters.wrongShown).toBe(0);
  });

  it('predicts keys typed while a new prompt was on its way once it is drawn, tentatively, and confirms them', () => {
    const { link, shell } = confirmedPrompt();
    shell.prompt = '% '; // a prompt never seen to echo
    link.type('\r'); // predicted: the cursor to the next row
    link.advance(200);
    link.type('p'); // reaches the shell after the new prompt went out
    link.advance(10);
    link.type('w');
    expect(link.engine.counters.predicted).toBe(2);
    link.advance(60); // the prompt is drawn: p and w are predicted from its cursor, hidden
    expect(link.terminal.line(1)).toBe('%');
    expect(link.engine.counters.predicted).toBe(4);
    expect(link.engine.overlay().cells).toEqual([]);
    link.advance(185); // p is confirmed (at 1150 ms), so w is drawn until its echo comes (1160 ms)
    expect(link.shownOn(1)).toBe('w');
    link.type('d');
    expect(link.shownOn(1)).toBe('wd');
    link.settle();
    expect(link.terminal.line(1)).toBe('% pwd');
    expect(link.engine.counters).toMatchObject({ mismatches: 0, confirmed: 5 });
  });

  it('predicts Backspace over typed characters, and ←/→ between them', () => {
    const { link } = confirmedPrompt();
    link.typeEach('xy', 10);
    link.type('\x7f');
    expect(link.engine.overlay()).toMatchObject({
      cells: [
        { row: 0, col: 3, char: 'x' },
        { row: 0, col: 4, char: ' ' },
      ],
      cursor: { row: 0, col: 4 },
    });
    link.type('\x1b[D');
    expect(link.engine.overlay().cursor).toEqual({ row: 0, col: 3 });
    link.type('\x1b[C');
    expect(link.engine.overlay().cursor).toEqual({ row: 0, col: 4 });
    link.settle();
    link.type('\x7f'); // over the confirmed x
    expect(link.engine.overlay()).toEqual({ buffer: 'normal', cells: [{ row: 0, col: 3, char: ' ' }], cursor: { row: 0, col: 3 } });
    link.settle();
    expect(link.terminal.line(0)).toBe('$ e');
    expect(link.engine.counters).toMatchObject({ mismatches: 0, wrongShown: 0, confirmed: 7 });
  });

  it('drops, without counting them wrong, drawn predictions that a key it did not predict overwrote (Ctrl-U)', () => {
    const { link, shell } = confirmedPrompt();
    // A busy shell: it reads the typed-ahead keys at once, so the echo and the erasure come in one frame.
    let typedAhead = '';
    link.program = { input: (data) => (data === '\x15' ? shell.input(`${typedAhead}${data}`) : ((typedAhead += data), '')) };
    link.typeEach('abc', 10);
    link.type('\x15');
    expect(link.shownOn(0)).toBe('abc');
    link.settle();
    expect(link.terminal.line(0)).toBe('$');
    expect(link.engine.overlay().cells).toEqual([]);
    expect(link.engine.counters).toMatchObject({ mismatches: 0, wrongShown: 0, discarded: 3 });
  });

  it('does not predict Backspace over the prompt, nor ← past what was typed', () => {
    const { link } = confirmedPrompt();
    link.type('\x7f');
    link.settle();
    const made = link.engine.counters.predicted;
    link.type('\x7f'); // the prompt's space: readline rings the bell instead
    link.type('\x1b[D');
    expect(link.engine.counters.predicted).toBe(made);
    expect(link.engine.overlay().cells).toEqual([]);
  });

  it('follows the cursor-key mode: ESC O D is an arrow only in application mode', () => {
    const { link } = confirmedPrompt();
    link.type('\x1bOD');
    expect(link.engine.counters.predicted).toBe(1); // not the arrow in normal mode: an unknown key
    link.settle();
    const { link: other } = confirmedPrompt();
    other.modes({ ...READLINE_MODES, cursor_keys: 'application' });
    other.settle();
    other.type('f');
    other.settle();
    other.type('\x1bOD');
    expect(other.engine.counters.predicted).toBe(3);
  });

  it('tolerates an echo that comes a little after the acknowledging frame (program lag within the grace)', () => {
    const { link } = confirmedPrompt();
    link.programDelay = 40; // the grace is max(30 ms, rtt / 2) = 125 ms
    link.serverOutput('');
    link.typeEach('abc', 30);
    link.settle();
    expect(link.engine.counters).toMatchObject({ mismatches: 0, confirmed: 4 });
  });
});

describe('predicted echo: safety', () => {
  it('draws nothing of a password typed at an echo-off prompt, and keeps nothing of it', () => {
    const { link } = confirmedPrompt();
    const password = new PasswordProgram();
    link.program = password;
    link.modes(PASSWORD_MODES);
    link.receive('\r\nPassword: ');
    const before = { ...link.engine.counters };
    for (const char of 'correct horse battery staple') {
      link.type(char);
      expect(link.engine.overlay()).toMatchObject({ cells: [], cursor: null });
      link.advance(40);
    }
    link.type('\r');
    link.settle();
    expect(password.typed).toBe('correct horse battery staple');
    expect(link.engine.counters.predicted).toBe(before.predicted);
    expect(link.engine.counters.shown).toBe(before.shown);
  });

  it('draws nothing at a password prompt whose modes are unknown (never confirmed)', () => {
    const link = new SimulatedLink(new PasswordProgram(), 250);
    link.receive('Password: ', 0);
    link.modes({ ...READLINE_MODES, echo: null, canonical: null });
    for (const char of 'hunter2') {
      link.type(char);
      expect(link.engine.overlay().cells).toEqual([]);
      link.advance(80);
    }
    link.settle();
    expect(link.engine.counters.shown).toBe(0);
    expect(link.engine.counters.wrongShown).toBe(0);
  });

  it('never draws anything when the server sends no modes and no acks (an older server)', () => {
    const shell = new ReadlineProgram();
    const link = new SimulatedLink(shell, 250);
    link.acks = false;
    link.receive('$ ', null);
    for (const char of 'echo hi') {
      link.type(char);
      link.advance(60);
      link.receive('', null);
    }
    link.settle();
    expect(link.engine.counters.shown).toBe(0);
  });

  it('erases a drawn prediction the output contradicts, counts it, and starts a tentative epoch', () => {
    const { link } = confirmedPrompt();
    const masked: Program = { input: (data) => (data === '\r' ? '\r\n' : '*') };
    link.program = masked; // the program changed its mind without a mode change
    link.type('a');
    link.advance(10);
    link.type('b');
    expect(link.shownOn(0)).toBe('ab');
    link.advance(240);
    expect(link.shownOn(0)).toBe('ab'); // the contradicting echo is drawn; the grace runs
    link.advance(150);
    expect(link.engine.overlay().cells).toEqual([]);
    expect(link.engine.counters).toMatchObject({ mismatches: 1, wrong: 2, wrongShown: 2 });
    for (const ms of link.engine.counters.erasedAfterMs) expect(ms).toBeLessThanOrEqual(250 + 125);
    link.settle();
    link.type('c');
    expect(link.engine.overlay().cells).toEqual([]);
    link.settle();
    expect(link.terminal.line(0)).toBe('$ e***');
    expect(link.engine.counters.wrongShown).toBe(2);
  });

  it('keeps an editor’s normal mode (keys not echoed) hidden, and draws insert mode once it echoes', () => {
    const editor: Program & { insert: boolean } = {
      insert: false,
      input(data: string): string {
        if (data === '\x1b') {
          this.insert = false;
          return '\b';
        }
        if (this.insert) return data;
        if (data === 'i') this.insert = true;
        if (data === 'j') return '\x1b[B';
        return '';
      },
    };
    const link = new SimulatedLink(editor, 250);
    link.receive('\x1b[?1049h\x1b[1;1H', 0);
    link.modes({ ...READLINE_MODES, alt_screen: true });
    for (const key of 'lkwjl') {
      link.type(key);
      expect(link.engine.overlay().cells).toEqual([]);
      link.advance(70);
    }
    link.type('i');
    link.settle();
    link.typeEach('hello', 80);
    link.settle();
    expect(link.engine.counters.shown).toBeGreaterThan(0);
    link.type('\x1b');
    link.settle();
    const wrongShown = link.engine.counters.wrongShown;
    for (const key of 'jjjwww') {
      link.type(key);
      expect(link.engine.overlay().cells).toEqual([]);
      link.advance(70);
    }
    link.settle();
    expect(link.engine.counters.wrongShown).toBe(wrongShown);
    expect(link.engine.counters.wrongShown).toBe(0);
  });

  it('draws nothing in tmux copy mode, and drops what was pending', () => {
    const { link } = confirmedPrompt();
    link.type('a');
    expect(link.shownOn(0)).toBe('a');
    link.modes({ ...READLINE_MODES, copy_mode: true });
    expect(link.engine.overlay().cells).toEqual([]);
    link.type('k');
    expect(link.engine.overlay().cells).toEqual([]);
    expect(link.engine.counters.discarded).toBe(1);
  });

  it('draws nothing when the round trip is under 20 ms', () => {
    const link = new SimulatedLink(new ReadlineProgram(), 10);
    link.receive('$ ', 0);
    link.modes(READLINE_MODES);
    link.typeEach('echo hello', 30);
    link.settle();
    expect(link.engine.counters.shown).toBe(0);
    expect(link.engine.counters.confirmed).toBeGreaterThan(0);
    expect(link.terminal.line(0)).toBe('$ echo hello');
  });

  it('measures the round trip from confirmed echoes when no ping has', () => {
    const link = new SimulatedLink(new ReadlineProgram(), 200);
    link.receive('$ ', 0);
    link.type('a');
    link.settle();
    expect(link.engine.rttMs).toBeGreaterThan(150);
    expect(link.engine.rttMs).toBeLessThan(250);
  });

  it('starts a new epoch when output moves the cursor on its own', () => {
    const { link } = confirmedPrompt();
    link.receive('\r\n[1]+  Done\r\n$ e');
    link.type('c');
    expect(link.engine.overlay().cells).toEqual([]);
  });

  it('drops every prediction when the terminal is reset or switches buffers', () => {
    const { link } = confirmedPrompt();
    link.type('a');
    link.engine.reset();
    expect(link.engine.overlay().cells).toEqual([]);
    expect(link.engine.counters.discarded).toBe(1);
    link.settle();
    link.type('b');
    link.receive('\x1b[?1049h');
    expect(link.engine.overlay().cells).toEqual([]);
  });
});

describe('predicted echo: characters', () => {
  it('predicts accented letters, Greek and Cyrillic, and not wide, combining or emoji characters', () => {
    const { link } = confirmedPrompt();
    link.type('é');
    link.type('λ');
    link.type('ж');
    expect(link.shownOn(0)).toBe('éλж');
    link.settle();
    const made = link.engine.counters.predicted;
    link.type('日');
    link.settle();
    link.type('e\u0301');
    link.type('😀');
    expect(link.engine.counters.predicted).toBe(made);
    link.settle();
    expect(link.engine.counters.wrongShown).toBe(0);
  });

  it('does not predict into the last column', () => {
    const shell = new ReadlineProgram();
    const link = new SimulatedLink(shell, 250, {}, { cols: 8, rows: 4 });
    link.receive('$ ', 0);
    link.type('a');
    link.settle();
    link.typeEach('bcdef', 10);
    expect(link.shownOn(0)).toBe('bcde');
    link.settle();
    expect(link.terminal.line(0)).toBe('$ abcdef');
    expect(link.engine.counters.wrongShown).toBe(0);
  });
});
