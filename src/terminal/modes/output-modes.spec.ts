import { OutputModeTracker } from './output-modes.js';

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');

describe('OutputModeTracker', () => {
  it('starts with bracketed paste off and reports each change once', () => {
    const tracker = new OutputModeTracker();
    expect(tracker.modes).toEqual({ bracketedPaste: false });
    expect(tracker.feed(bytes('prompt$ \x1b[?2004h'))).toEqual({ bracketedPaste: true });
    expect(tracker.feed(bytes('\x1b[?2004h more text'))).toBeNull();
    expect(tracker.feed(bytes('ls\r\n\x1b[?2004l'))).toEqual({ bracketedPaste: false });
    expect(tracker.modes).toEqual({ bracketedPaste: false });
  });

  it('follows a sequence split across chunks, at every split point', () => {
    const sequence = 'x\x1b[?2004hy';
    for (let split = 0; split <= sequence.length; split += 1) {
      const tracker = new OutputModeTracker();
      const first = tracker.feed(bytes(sequence.slice(0, split)));
      const second = tracker.feed(bytes(sequence.slice(split)));
      expect([first, second].filter((change) => change !== null)).toEqual([{ bracketedPaste: true }]);
    }
    const tracker = new OutputModeTracker();
    const changes = [...'\x1b[?2004h'].map((char) => tracker.feed(bytes(char)));
    expect(changes.filter((change) => change !== null)).toEqual([{ bracketedPaste: true }]);
  });

  it('reports the net change of a chunk: toggles that cancel out report nothing (tmux redraws send l then h)', () => {
    const tracker = new OutputModeTracker();
    tracker.feed(bytes('\x1b[?2004h'));
    expect(tracker.feed(bytes('\x1b[?2004l\x1b[?25l\x1b[H\x1b[?2004h'))).toBeNull();
    expect(tracker.feed(bytes('\x1b[?2004h\x1b[?2004l'))).toEqual({ bracketedPaste: false });
  });

  it('reads parameter lists, and ignores other modes, other sequences and look-alikes', () => {
    const tracker = new OutputModeTracker();
    expect(tracker.feed(bytes('\x1b[?1;2004h'))).toEqual({ bracketedPaste: true });
    for (const other of [
      '\x1b[?1l',
      '\x1b[?1049l',
      '\x1b[?20040l',
      '\x1b[?200l',
      '\x1b[2004l',
      '\x1b[?2004$p',
      '\x1b[>2004l',
      '?2004l',
      '[?2004l',
      '\x1b]0;\x1b[?2004x\x07',
    ]) {
      expect(tracker.feed(bytes(other))).toBeNull();
      expect(tracker.modes.bracketedPaste).toBe(true);
    }
    expect(tracker.feed(bytes('\x1b[?25;2004;1000l'))).toEqual({ bracketedPaste: false });
  });

  it('lets an escape abort a sequence, and a full reset (ESC c) turn bracketed paste off', () => {
    const tracker = new OutputModeTracker();
    expect(tracker.feed(bytes('\x1b[?20\x1b[?2004h'))).toEqual({ bracketedPaste: true });
    expect(tracker.feed(bytes('\x1bc'))).toEqual({ bracketedPaste: false });
    expect(tracker.feed(bytes('\x1b[?2004\nh'))).toBeNull();
  });

  it('survives huge parameters and binary noise', () => {
    const tracker = new OutputModeTracker();
    expect(tracker.feed(bytes(`\x1b[?${'9'.repeat(50)}h`))).toBeNull();
    const noise = Buffer.alloc(4096);
    for (let i = 0; i < noise.length; i += 1) noise[i] = (i * 131 + 7) % 256;
    tracker.feed(noise);
    tracker.feed(bytes('\x18\x1b[?2004h'));
    expect(tracker.modes.bracketedPaste).toBe(true);
  });
});
