import type { PredictedKey } from './keys.js';
import { deleteCells, editorEnter, insertCells, rowText, tailAt, type RowCell } from './line-model.js';
import type { TypedCells } from './typed-cells.js';
import type { CellPosition, OverlayCell, Prediction } from './types.js';

/**
 * What a key does to the screen, when that is certain enough to predict
 * (docs/console.md#predicted-echo); null when it is not.
 */

/** Where the key is typed, as the engine predicts the screen. */
export interface KeyContext {
  /** The cursor, once every earlier prediction is drawn. */
  cursor: CellPosition;
  cols: number;
  /** The screen's last row (a buffer row). */
  bottom: number;
  /** A full-screen program (the pane's alternate screen, as the server's modes say). */
  fullScreen: boolean;
  /** Cells typed in this epoch (updated for the key). */
  typed: TypedCells;
  /** A row as predicted. */
  rowAt: (row: number) => RowCell[];
}

export interface KeyEffect {
  kind: Prediction['kind'];
  cells: OverlayCell[];
  after: CellPosition;
  /** What follows is the program's (Enter at a prompt). */
  handsOver: boolean;
  /** A character typed at the end of a line outside full-screen programs: the text left of it (a prompt, when it begins an epoch). */
  prompt: string;
}

export function keyEffect(key: PredictedKey, context: KeyContext): KeyEffect | null {
  const { cursor, typed } = context;
  const { row, col } = cursor;
  const line = context.rowAt(row);
  const effect = (kind: KeyEffect['kind'], cells: OverlayCell[], after: CellPosition, prompt = ''): KeyEffect => ({
    kind,
    cells,
    after,
    handsOver: false,
    prompt,
  });
  switch (key.kind) {
    case 'char': {
      // Not in the last column: how a program wraps there varies.
      const tail = tailAt(line, col);
      if (col >= context.cols - 1 || tail.kind === 'fixed') return null;
      typed.insert(row, col);
      const prompt = tail.kind === 'blank' && !context.fullScreen ? rowText(line, 0, col) : '';
      return effect('char', insertCells(row, line, col, key.char, tail), { row, col: col + 1 }, prompt);
    }
    case 'backspace': {
      const tail = tailAt(line, col);
      if (col === 0 || !typed.erasable(row, col - 1) || tail.kind === 'fixed') return null;
      typed.erase(row, col);
      return effect('backspace', deleteCells(row, line, col, tail), { row, col: col - 1 });
    }
    case 'left':
    case 'right': {
      const left = key.kind === 'left';
      if (left ? col === 0 || !typed.has(row, col - 1) : !typed.has(row, col)) return null;
      // In an editor an arrow begins a new insertion: what was typed can no longer be erased (vim).
      if (context.fullScreen) typed.sealAll();
      return effect('move', [], { row, col: col + (left ? -1 : 1) });
    }
    case 'enter':
      return enterEffect(context);
    case 'other':
      return null;
  }
}

/**
 * Enter. At a prompt: the cursor moves to the start of the next row, and what follows is the
 * program's (only while that row is on the screen: a scroll cannot be drawn over the terminal).
 * In an editor's insert mode, as its last row says, on a line of words with nothing but blank
 * rows (or vim's `~`) below it: the line splits, and the epoch goes on (./line-model.ts).
 */
function enterEffect(context: KeyContext): KeyEffect | null {
  const { row, col } = context.cursor;
  const after = { row: row + 1, col: 0 };
  if (!context.fullScreen) return row >= context.bottom ? null : { kind: 'enter', cells: [], after, handsOver: true, prompt: '' };
  const cells = editorEnter(context.rowAt, context.bottom, row, col);
  if (cells === null) return null;
  context.typed.dropFrom(row, col);
  return { kind: 'enter', cells, after, handsOver: false, prompt: '' };
}
