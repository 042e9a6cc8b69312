import { isNarrowPrintable } from './keys.js';
import type { BufferView, OverlayCell } from './types.js';

/**
 * Rows as the prediction engine sees them (docs/console.md#predicted-echo): the buffer's cells
 * with the live predictions applied, and what a key would change in them. Pure functions: the
 * engine passes the rows and gets the cells to predict.
 */

/** One cell of a row. */
export interface RowCell {
  /** The character, ' ' for a blank. */
  char: string;
  /** A narrow character (or a blank) in the default colours and style: safe to move along the row. */
  plain: boolean;
}

/** A row of the buffer (`cols` cells), read from the terminal. */
export function readRow(buffer: BufferView, row: number, cols: number): RowCell[] {
  const line = buffer.getLine(row);
  const cells: RowCell[] = [];
  for (let col = 0; col < cols; col += 1) {
    const cell = line?.getCell(col);
    const chars = cell?.getChars() ?? '';
    const char = chars === '' ? ' ' : chars;
    const codePoint = char.codePointAt(0)!;
    const narrow = char.length === 1 && (char === ' ' || isNarrowPrintable(codePoint)) && (cell?.getWidth() ?? 1) === 1;
    cells.push({ char, plain: narrow && (cell?.isAttributeDefault?.() ?? true) });
  }
  return cells;
}

/** Whether the buffer shows a predicted cell: its character, in one cell. */
export function isDrawn(buffer: BufferView, cell: OverlayCell): boolean {
  const real = buffer.getLine(cell.row)?.getCell(cell.col);
  return (real?.getChars() || ' ') === cell.char && real?.getWidth() !== 2;
}

/** The text of a row (trailing blanks kept). */
export const rowText = (cells: RowCell[], from = 0, to = cells.length): string =>
  cells
    .slice(from, to)
    .map((cell) => cell.char)
    .join('');

/**
 * What lies right of the cursor on a row, for a key that would insert or delete there:
 * - `blank`: nothing (the common case: typing at the end of a line);
 * - `text`: text that moves with the key, as in a line editor or an editor's insert mode: it
 *   starts at the cursor or one blank after it, is plain (default colours, narrow characters: not
 *   a coloured suggestion such as zsh's, nor a border), and ends before the last column (nothing
 *   would be pushed off the row or wrap);
 * - `fixed`: anything else (a right-hand prompt far to the right, a column of a table, a coloured
 *   suggestion): not predicted.
 */
export type Tail = { kind: 'blank' } | { kind: 'text'; end: number } | { kind: 'fixed' };

export function tailAt(cells: RowCell[], col: number): Tail {
  let end = -1;
  for (let index = cells.length - 1; index >= col; index -= 1)
    if (cells[index].char !== ' ') {
      end = index;
      break;
    }
  if (end < 0) return { kind: 'blank' };
  if (end >= cells.length - 1) return { kind: 'fixed' };
  let first = col;
  while (cells[first].char === ' ') first += 1;
  if (first - col > 1) return { kind: 'fixed' };
  for (let index = col; index <= end; index += 1) if (!cells[index].plain) return { kind: 'fixed' };
  return { kind: 'text', end };
}

/** The cells of `row` that differ between `cells` and `next` (`moved` marks text that only moved). */
function changes(row: number, cells: RowCell[], next: string[], keep: number | null): OverlayCell[] {
  const changed: OverlayCell[] = [];
  next.forEach((char, col) => {
    if (char === cells[col].char && col !== keep) return;
    changed.push(col === keep ? { row, col, char } : { row, col, char, moved: true });
  });
  return changed;
}

/** A character typed at `col` (not the last column): it takes the cell, and text right of it moves one cell right. */
export function insertCells(row: number, cells: RowCell[], col: number, char: string, tail: Tail): OverlayCell[] {
  const next = cells.map((cell) => cell.char);
  if (tail.kind === 'text') for (let index = tail.end + 1; index > col; index -= 1) next[index] = cells[index - 1].char;
  next[col] = char;
  return changes(row, cells, next, col);
}

/** Backspace at `col` (> 0): the cell left of it is erased, and text right of it moves one cell left. */
export function deleteCells(row: number, cells: RowCell[], col: number, tail: Tail): OverlayCell[] {
  const next = cells.map((cell) => cell.char);
  const end = tail.kind === 'text' ? tail.end : col - 1;
  for (let index = col - 1; index < end; index += 1) next[index] = cells[index + 1].char;
  next[end] = ' ';
  return changes(row, cells, next, tail.kind === 'text' ? null : col - 1);
}

/** Whether a row is vim's (or neovim's) insert-mode line, which they show on their last row ('showmode'): `-- INSERT --`, `-- INSERT (paste) --`. */
export const showsInsertMode = (cells: RowCell[]): boolean => rowText(cells).startsWith('-- INSERT');
/** A line of words: no indentation, list marker, comment leader or bracket that an editor might continue or indent after Enter. */
const PROSE = /^(?:\p{L}[\p{L}\p{N} .,!?'"]*)?$/u;

/**
 * Enter at `row`, `col` of the alternate screen, predicted only in an editor's insert mode, as its
 * last row (`bottom`) says, on a line of words, with nothing but blank rows (or vim's `~`) below
 * it down to the last row: the text right of the cursor goes to the start of the next row (blank
 * from there on) and leaves this one. Null when any of that does not hold. `rowAt` gives a row as
 * predicted.
 */
export function editorEnter(rowAt: (row: number) => RowCell[], bottom: number, row: number, col: number): OverlayCell[] | null {
  const line = rowAt(row);
  const tail = tailAt(line, col);
  if (row + 1 >= bottom || tail.kind === 'fixed' || !PROSE.test(rowText(line, 0, col))) return null;
  if (!showsInsertMode(rowAt(bottom))) return null;
  for (let below = row + 1; below < bottom; below += 1) {
    const text = rowText(rowAt(below)).trim();
    if (text !== '' && text !== '~') return null;
  }
  return splitCells(row, line, rowAt(row + 1), col, tail);
}

/** The text right of `col` goes to the start of the next row (blank from there on), and leaves this one. */
function splitCells(row: number, cells: RowCell[], below: RowCell[], col: number, tail: Tail): OverlayCell[] {
  const end = tail.kind === 'text' ? tail.end : col - 1;
  const moved = cells.slice(col, end + 1).map((cell) => cell.char);
  const here = cells.map((cell, index) => (index >= col ? ' ' : cell.char));
  const next = below.map((_cell, index) => moved[index] ?? ' ');
  return [...changes(row, cells, here, null), ...changes(row + 1, below, next, null)];
}
