import { mulberry32 } from '../../test/support/flaky-link/prng.js';

/**
 * The keystroke trace the link bench replays (bench/suites/link.ts, part 1), generated from a
 * seed: someone at a bash prompt (commands with typos fixed by Backspace, ←/→ over what was typed,
 * Enter), in vim (insert mode, normal-mode motions and edits, `:wq`), in `less` (paging, a search)
 * and at a password prompt (`read -s`), with human gaps between keys. The player waits where a
 * person would: after Enter until the program has answered, and for the password prompt to show.
 */

export type Segment = 'shell' | 'vim-insert' | 'vim-normal' | 'less' | 'password';

export type Step =
  /** One key: its data, or `left`/`right` for an arrow, sent as the terminal would in its current cursor-key mode. */
  | { kind: 'key'; data: string; segment: Segment; gapMs: number }
  /** Wait until the last key's effect is drawn and the output has been quiet a while. */
  | { kind: 'settle' }
  /** Wait until the screen shows `text`, then a reaction time. */
  | { kind: 'expect'; text: string; reactionMs: number };

export interface TraceFiles {
  /** The file vim edits (need not exist). */
  notes: string;
  /** A text file for `less`. */
  pager: string;
}

const WORDS = (
  'alpha build cache deploy echo fetch green host input jobs kernel list merge node output pipe quiet ' +
  'route shell token unit value watch yaml zone branch commit config docker editor format git index ' +
  'lambda module network python query remote server tunnel update vector window'
).split(' ');

const SAFE_PATH = /^[\w/.-]+$/;

export function generateTrace(seed: number, minimumKeys: number, files: TraceFiles): Step[] {
  for (const path of [files.notes, files.pager]) if (!SAFE_PATH.test(path)) throw new Error(`unexpected path ${path}`);
  const random = mulberry32(seed);
  const steps: Step[] = [];
  let keys = 0;
  const between = (low: number, high: number): number => Math.round(low + random() * (high - low));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const gap = (): number => between(80, 250);
  const key = (data: string, segment: Segment): void => {
    steps.push({ kind: 'key', data, segment, gapMs: gap() });
    keys += 1;
  };
  const text = (value: string, segment: Segment): void => {
    for (const char of value) key(char, segment);
  };
  /** Words with a typo now and then (a wrong letter, noticed, erased) and a look back with ←/→. */
  const words = (count: number, segment: Segment): void => {
    for (let index = 0; index < count; index += 1) {
      const word = pick(WORDS);
      if (index > 0) key(' ', segment);
      if (random() < 0.15) {
        const cut = between(1, word.length - 1);
        const typo = between(1, 2);
        text(word.slice(0, cut), segment);
        for (let wrong = 0; wrong < typo; wrong += 1) key(pick(WORDS)[0], segment);
        for (let erase = 0; erase < typo; erase += 1) key('\x7f', segment);
        text(word.slice(cut), segment);
      } else {
        text(word, segment);
      }
      if (random() < 0.06) {
        const back = between(1, Math.min(3, word.length));
        for (let move = 0; move < back; move += 1) key('left', segment);
        for (let move = 0; move < back; move += 1) key('right', segment);
      }
    }
  };
  const enter = (segment: Segment): void => {
    key('\r', segment);
    steps.push({ kind: 'settle' });
  };
  const command = (line: string): void => {
    text(line, 'shell');
    enter('shell');
  };

  const shell = (): void => {
    text(pick(['echo ', ': ', 'printf "%s\\n" ']), 'shell');
    words(between(2, 6), 'shell');
    enter('shell');
  };
  const vim = (): void => {
    command(`vim -u NONE -N -n ${files.notes}`);
    for (let block = 0; block < between(2, 3); block += 1) {
      key(pick(['i', 'a', 'o', 'A']), 'vim-normal');
      for (let line = 0; line < between(1, 3); line += 1) {
        if (line > 0) key('\r', 'vim-insert');
        words(between(3, 8), 'vim-insert');
      }
      key('\x1b', 'vim-insert');
      for (let motion = 0; motion < between(6, 14); motion += 1)
        key(pick(['h', 'j', 'k', 'l', 'w', 'b', '0', '$', 'x', 'u']), 'vim-normal');
    }
    text(':wq', 'vim-normal');
    enter('vim-normal');
  };
  const less = (): void => {
    command(`less ${files.pager}`);
    for (let page = 0; page < between(4, 9); page += 1) key(pick([' ', 'b', 'j', 'j', 'k', 'd', 'u']), 'less');
    key('/', 'less');
    text(pick(WORDS), 'less');
    enter('less');
    for (let next = 0; next < between(1, 3); next += 1) key('n', 'less');
    key('q', 'less');
    steps.push({ kind: 'settle' });
  };
  const password = (): void => {
    command("read -s -p 'Password: ' pw");
    steps.push({ kind: 'expect', text: 'Password:', reactionMs: between(300, 900) });
    const alphabet = 'abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
    for (let index = 0; index < between(8, 16); index += 1) key(alphabet[Math.floor(random() * alphabet.length)], 'password');
    enter('password');
    command('echo ${#pw}');
  };

  while (keys < minimumKeys) {
    for (let index = 0; index < 5; index += 1) shell();
    vim();
    shell();
    less();
    password();
  }
  return steps;
}
