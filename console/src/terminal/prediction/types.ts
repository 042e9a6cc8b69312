import type { ModesMessage } from '../../../../src/terminal/protocol-types.js';
import type { PredictedKey } from './keys.js';

/**
 * What the prediction engine reads and produces (docs/console.md#predicted-echo). No DOM here:
 * the engine also runs in Node (a benchmark with `@xterm/headless`, unit specs with a fake).
 */

/** One cell of the terminal buffer; xterm.js's `IBufferCell` satisfies it. */
export interface CellView {
  /** The character(s) in the cell; '' for a cell never written. */
  getChars(): string;
  /** 1 for most cells, 2 for a wide character, 0 for the cell after a wide one. */
  getWidth(): number;
  /** Whether the cell has the default colours and no style (xterm.js's); absent: taken as default. */
  isAttributeDefault?(): boolean;
}

/** One line of the buffer; xterm.js's `IBufferLine` satisfies it. */
export interface LineView {
  getCell(x: number): CellView | undefined;
}

/** The active buffer; xterm.js's `IBuffer` (`terminal.buffer.active`) satisfies it. */
export interface BufferView {
  readonly type: 'normal' | 'alternate';
  /** 0 to cols: `cols` is the pending-wrap position after the last cell. */
  readonly cursorX: number;
  /** 0 to rows - 1, relative to `baseY`. */
  readonly cursorY: number;
  /** The buffer line at the top of the screen (scrollback above it). */
  readonly baseY: number;
  getLine(y: number): LineView | undefined;
}

/** The terminal as the engine sees it; xterm.js's `Terminal` (and `@xterm/headless`'s) satisfies it. */
export interface ScreenView {
  readonly cols: number;
  readonly rows: number;
  readonly buffer: { readonly active: BufferView };
}

/** The server's `modes` frame (docs/terminal.md), without its `type` and `offset`. */
export type TerminalModes = Omit<ModesMessage, 'type' | 'offset'>;

/** A cell position: `row` is a buffer line (baseY + cursorY), `col` 0-based. */
export interface CellPosition {
  row: number;
  col: number;
}

/** A predicted cell; `char` ' ' is a predicted blank (drawn over what the buffer holds). */
export interface OverlayCell extends CellPosition {
  char: string;
  /** Text the key only moved (the rest of a line after an insertion, a deletion or Enter), not typed: drawn without the underline. */
  moved?: boolean;
}

/** What to draw over the terminal now: empty when nothing is to be shown. */
export interface Overlay {
  /** The buffer the positions refer to. */
  buffer: 'normal' | 'alternate';
  cells: OverlayCell[];
  /** The predicted cursor, null when no prediction is shown. */
  cursor: CellPosition | null;
}

export interface PredictionCounters {
  /** keystroke() calls. */
  keystrokes: number;
  /** Predictions made (a keystroke can make several, a paste of letters; or none). */
  predicted: number;
  /** Predictions drawn before the server confirmed them (at once or when their epoch was confirmed). */
  shown: number;
  /** Of those, drawn at the keystroke itself. */
  shownAtOnce: number;
  confirmed: number;
  /** Mismatches: a prediction the server's output did not bear out (each erases all predictions). */
  mismatches: number;
  /** Predictions erased by a mismatch (the wrong one and those after it). */
  wrong: number;
  /** Of those, how many had been drawn. */
  wrongShown: number;
  /** For each drawn prediction erased by a mismatch: how long it was on screen (ms; the last 256). */
  erasedAfterMs: number[];
  /** Predictions dropped without being judged (terminal reset, resize, copy mode, password prompt). */
  discarded: number;
}

export function emptyCounters(): PredictionCounters {
  return {
    keystrokes: 0,
    predicted: 0,
    shown: 0,
    shownAtOnce: 0,
    confirmed: 0,
    mismatches: 0,
    wrong: 0,
    wrongShown: 0,
    erasedAfterMs: [],
    discarded: 0,
  };
}

export interface PredictionOptions {
  /** Below this smoothed round trip (ms) nothing is predicted. Default 20. */
  minRttMs: number;
  /** Grace after the acknowledging output before a prediction is judged wrong: max(graceMinMs, graceRttFraction × rtt). */
  graceMinMs: number;
  graceRttFraction: number;
  /** At most this many unconfirmed predictions; further keystrokes are not predicted. */
  maxLive: number;
}

export const DEFAULT_PREDICTION_OPTIONS: PredictionOptions = {
  minRttMs: 20,
  graceMinMs: 30,
  graceRttFraction: 0.5,
  maxLive: 128,
};

/** A keystroke's predictable keys, its seq, and when it was typed. */
export interface Keystroke {
  keys: PredictedKey[];
  seq: number;
  at: number;
}

export interface Prediction {
  keystroke: Keystroke;
  seq: number;
  epoch: number;
  kind: 'char' | 'backspace' | 'move' | 'enter';
  /** The cells the key changes: a character, blanks, text it moved; none for a cursor move. */
  cells: OverlayCell[];
  before: CellPosition;
  after: CellPosition;
  /** Enter at a prompt: what follows is the program's (output, a new prompt); right once the cursor has left the row. */
  handsOver: boolean;
  madeAt: number;
  shownAt: number | null;
  /** When output acknowledging this keystroke was first drawn. */
  dueSince: number | null;
  /** The keystroke sent right after this one when it was not predicted (its effect is unknown). */
  followedBy: number | null;
}
