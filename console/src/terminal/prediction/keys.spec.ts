import { describe, expect, it } from 'vitest';
import { isNarrowPrintable, parseKeys } from './keys.js';

describe('prediction keys', () => {
  it('splits input into characters, Backspace, Enter and the arrows of the cursor-key mode', () => {
    expect(parseKeys('a\x7f\b\r', false)).toEqual([
      { kind: 'char', char: 'a' },
      { kind: 'backspace' },
      { kind: 'backspace' },
      { kind: 'enter' },
    ]);
    expect(parseKeys('\x1b[D\x1b[C', false)).toEqual([{ kind: 'left' }, { kind: 'right' }]);
    expect(parseKeys('\x1bOD\x1bOC', true)).toEqual([{ kind: 'left' }, { kind: 'right' }]);
    expect(parseKeys('\x1bOD', false)).toEqual([{ kind: 'other' }]);
    expect(parseKeys('\x1b[D', true)).toEqual([{ kind: 'other' }]);
  });

  it('treats other sequences and control characters as unknown keys, consuming whole sequences', () => {
    expect(parseKeys('\x1b[A', false)).toEqual([{ kind: 'other' }]);
    expect(parseKeys('\x1b[1;5D', false)).toEqual([{ kind: 'other' }]);
    expect(parseKeys('\x1b[200~x\x1b[201~', false)).toEqual([{ kind: 'other' }, { kind: 'char', char: 'x' }, { kind: 'other' }]);
    expect(parseKeys('\x1bx', false)).toEqual([{ kind: 'other' }]);
    expect(parseKeys('\t\x03\n', false)).toEqual([{ kind: 'other' }, { kind: 'other' }, { kind: 'other' }]);
    expect(parseKeys('\x1b', false)).toEqual([{ kind: 'other' }]);
  });

  it('takes narrow characters only: no wide, combining, zero-width or emoji', () => {
    for (const char of ['a', '~', ' ', 'é', 'ß', 'λ', 'ж', 'Ł']) expect(isNarrowPrintable(char.codePointAt(0)!)).toBe(true);
    for (const char of ['日', '한', '\u0301', '\u00ad', '\u200b', '😀', '\u0483', 'ａ'])
      expect(isNarrowPrintable(char.codePointAt(0)!)).toBe(false);
    expect(parseKeys('😀', false)).toEqual([{ kind: 'other' }]);
  });
});
