/**
 * What the key bar sends: the bytes an xterm-compatible terminal sends for each key, with the
 * sticky Ctrl and Alt applied (tmux inside the environment expects xterm's sequences, see
 * docs/terminal.md#overview).
 */

export interface Modifiers {
  ctrl: boolean;
  alt: boolean;
}

export type Arrow = 'up' | 'down' | 'right' | 'left';
const ARROW_FINAL: Record<Arrow, string> = { up: 'A', down: 'B', right: 'C', left: 'D' };

/** Ctrl plus a character, as a terminal sends it (Ctrl-C is \x03); null when Ctrl changes nothing. */
export function controlCharacter(character: string): string | null {
  if (character.length !== 1) return null;
  const code = character.toUpperCase().charCodeAt(0);
  if (code >= 0x40 && code <= 0x5f) return String.fromCharCode(code - 0x40); // @ A-Z [ \ ] ^ _
  if (character === ' ' || character === '2') return '\x00';
  if (character === '?' || character === '8') return '\x7f';
  if (character === '/' || character === '-' || character === '7') return '\x1f';
  if (character === '3') return '\x1b';
  if (character === '4') return '\x1c';
  if (character === '5') return '\x1d';
  if (character === '6' || character === '~') return '\x1e';
  return null;
}

/**
 * Applies the sticky modifiers to what the keyboard produced (xterm.js's onData). Only single
 * characters are modified: a sequence (an arrow key of a hardware keyboard, a paste) goes as is,
 * except that Alt prefixes it with ESC.
 */
export function applyModifiers(data: string, modifiers: Modifiers): string {
  let out = data;
  if (modifiers.ctrl && data.length === 1) out = controlCharacter(data) ?? data;
  if (modifiers.alt) out = `\x1b${out}`;
  return out;
}

/** An arrow key: ESC [ A, or ESC O A in application cursor mode; with modifiers, ESC [ 1 ; m A. */
export function arrowSequence(arrow: Arrow, modifiers: Modifiers, applicationCursor: boolean): string {
  const final = ARROW_FINAL[arrow];
  const parameter = 1 + (modifiers.alt ? 2 : 0) + (modifiers.ctrl ? 4 : 0);
  if (parameter > 1) return `\x1b[1;${parameter}${final}`;
  return applicationCursor ? `\x1bO${final}` : `\x1b[${final}`;
}

/**
 * Splits input into pieces the server accepts (`input.data` is at most 65,536 UTF-16 units,
 * docs/terminal.md#limits-and-abuse), never between the two halves of a surrogate pair.
 */
export function splitInput(data: string, max = 32 * 1024): string[] {
  const pieces: string[] = [];
  let start = 0;
  while (start < data.length) {
    let end = Math.min(start + max, data.length);
    if (end < data.length) {
      const last = data.charCodeAt(end - 1);
      if (last >= 0xd800 && last <= 0xdbff) end -= 1;
    }
    pieces.push(data.slice(start, end));
    start = end;
  }
  return pieces;
}
