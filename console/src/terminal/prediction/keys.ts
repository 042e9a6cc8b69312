/**
 * What a keystroke does, as far as the prediction engine can tell: the input an xterm-compatible
 * terminal sends (xterm.js's onData, the key bar), split into keys.
 */

export type PredictedKey =
  /** A printable character that takes exactly one cell. */
  | { kind: 'char'; char: string }
  /** DEL (what xterm.js sends for Backspace) or BS. */
  | { kind: 'backspace' }
  | { kind: 'left' }
  | { kind: 'right' }
  /** CR: the line goes to the program; what follows is not predicted. */
  | { kind: 'enter' }
  /** Anything else (control characters, other keys' sequences, wide or combining characters). */
  | { kind: 'other' };

/**
 * Characters known to take one cell in xterm.js (and in the programs' wcwidth): ASCII, Latin-1
 * and Latin Extended, IPA, Greek and Cyrillic, without the soft hyphen and the combining marks.
 * Anything else (CJK and emoji are wide, combining marks take none, and some scripts differ
 * between libc versions) is not predicted rather than guessed.
 */
export function isNarrowPrintable(codePoint: number): boolean {
  if (codePoint >= 0x20 && codePoint <= 0x7e) return true;
  if (codePoint >= 0xa0 && codePoint <= 0x2ff) return codePoint !== 0xad;
  if (codePoint >= 0x370 && codePoint <= 0x482) return true;
  return codePoint >= 0x48a && codePoint <= 0x52f;
}

/** Length of the escape sequence starting at `start` (ESC ...): CSI, SS3, or ESC plus one character. */
function escapeLength(data: string, start: number): number {
  const next = data[start + 1];
  if (next === undefined) return 1;
  if (next === 'O') return Math.min(3, data.length - start);
  if (next !== '[') return next.codePointAt(0)! > 0xffff ? 3 : 2;
  let end = start + 2;
  // Parameter and intermediate bytes, then one final byte (0x40-0x7e).
  while (end < data.length) {
    const code = data.charCodeAt(end);
    end += 1;
    if (code >= 0x40 && code <= 0x7e) break;
  }
  return end - start;
}

/** Splits input into keys; arrows count only in the form the cursor-key mode makes the terminal send. */
export function parseKeys(data: string, applicationCursor: boolean): PredictedKey[] {
  const keys: PredictedKey[] = [];
  const arrowPrefix = applicationCursor ? '\x1bO' : '\x1b[';
  let index = 0;
  while (index < data.length) {
    const codePoint = data.codePointAt(index)!;
    if (codePoint === 0x1b) {
      const length = escapeLength(data, index);
      const sequence = data.slice(index, index + length);
      if (sequence === `${arrowPrefix}D`) keys.push({ kind: 'left' });
      else if (sequence === `${arrowPrefix}C`) keys.push({ kind: 'right' });
      else keys.push({ kind: 'other' });
      index += length;
      continue;
    }
    const char = String.fromCodePoint(codePoint);
    index += char.length;
    if (codePoint === 0x7f || codePoint === 0x08) keys.push({ kind: 'backspace' });
    else if (codePoint === 0x0d) keys.push({ kind: 'enter' });
    else if (isNarrowPrintable(codePoint)) keys.push({ kind: 'char', char });
    else keys.push({ kind: 'other' });
  }
  return keys;
}
