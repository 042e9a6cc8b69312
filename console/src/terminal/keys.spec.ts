import { describe, expect, it } from 'vitest';
import { applyModifiers, arrowSequence, controlCharacter, splitInput } from './keys.js';

describe('key bar sequences', () => {
  it('Ctrl plus a letter is its control character, whatever the case', () => {
    expect(controlCharacter('c')).toBe('\x03');
    expect(controlCharacter('C')).toBe('\x03');
    expect(controlCharacter('d')).toBe('\x04');
    expect(controlCharacter('[')).toBe('\x1b');
    expect(controlCharacter(' ')).toBe('\x00');
    expect(controlCharacter('/')).toBe('\x1f');
    expect(controlCharacter('?')).toBe('\x7f');
    expect(controlCharacter('é')).toBeNull();
  });

  it('applies sticky modifiers to single characters; Alt prefixes ESC', () => {
    expect(applyModifiers('c', { ctrl: true, alt: false })).toBe('\x03');
    expect(applyModifiers('x', { ctrl: false, alt: true })).toBe('\x1bx');
    expect(applyModifiers('c', { ctrl: true, alt: true })).toBe('\x1b\x03');
    expect(applyModifiers('ls', { ctrl: true, alt: false })).toBe('ls');
    expect(applyModifiers('q', { ctrl: false, alt: false })).toBe('q');
  });

  it('arrows follow the cursor-key mode, and carry xterm modifier parameters', () => {
    expect(arrowSequence('up', { ctrl: false, alt: false }, false)).toBe('\x1b[A');
    expect(arrowSequence('up', { ctrl: false, alt: false }, true)).toBe('\x1bOA');
    expect(arrowSequence('left', { ctrl: true, alt: false }, true)).toBe('\x1b[1;5D');
    expect(arrowSequence('right', { ctrl: false, alt: true }, false)).toBe('\x1b[1;3C');
    expect(arrowSequence('down', { ctrl: true, alt: true }, false)).toBe('\x1b[1;7B');
  });

  it('splits long input below the server limit, never inside a surrogate pair', () => {
    const text = `${'a'.repeat(9)}😀${'b'.repeat(5)}`;
    const pieces = splitInput(text, 10);
    expect(pieces.join('')).toBe(text);
    expect(pieces.every((piece) => piece.length <= 10)).toBe(true);
    expect(pieces[0]).toBe('a'.repeat(9));
    expect(splitInput('')).toEqual([]);
    expect(splitInput('x'.repeat(70_000)).map((piece) => piece.length)).toEqual([32_768, 32_768, 4_464]);
  });
});
