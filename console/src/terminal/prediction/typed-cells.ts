/**
 * The cells typed (predicted) in the current epoch (docs/console.md#predicted-echo): Backspace and
 * ←/→ are predicted only over them. Each also says whether Backspace may erase it: in an editor,
 * ←/→ begin a new insertion, and vim's Backspace (by default) stops there.
 */
export class TypedCells {
  /** `row:col` → erasable. */
  private cells = new Map<string, boolean>();

  constructor(private readonly cols: () => number) {}

  private static key(row: number, col: number): string {
    return `${row}:${col}`;
  }

  has(row: number, col: number): boolean {
    return this.cells.has(TypedCells.key(row, col));
  }

  erasable(row: number, col: number): boolean {
    return this.cells.get(TypedCells.key(row, col)) === true;
  }

  /** A character typed at `col`: typed cells right of it move one cell right. */
  insert(row: number, col: number): void {
    this.shift(row, col, 1);
    this.cells.set(TypedCells.key(row, col), true);
  }

  /** Backspace at `col`: the cell left of it is gone, typed cells right of it move one cell left. */
  erase(row: number, col: number): void {
    this.cells.delete(TypedCells.key(row, col - 1));
    this.shift(row, col, -1);
  }

  /** Forgets the typed cells of `row` from `col` on (they moved to another row). */
  dropFrom(row: number, col: number): void {
    for (const cell of this.entries()) if (cell.row === row && cell.col >= col) this.cells.delete(TypedCells.key(cell.row, cell.col));
  }

  /** Nothing typed before can be erased any more. */
  sealAll(): void {
    for (const key of this.cells.keys()) this.cells.set(key, false);
  }

  clear(): void {
    this.cells = new Map();
  }

  private entries(): { row: number; col: number; erasable: boolean }[] {
    return [...this.cells].map(([key, erasable]) => {
      const [row, col] = key.split(':').map(Number);
      return { row, col, erasable };
    });
  }

  private shift(row: number, from: number, by: number): void {
    const next = new Map<string, boolean>();
    for (const cell of this.entries()) {
      const col = cell.row === row && cell.col >= from ? cell.col + by : cell.col;
      if (col >= 0 && col < this.cols()) next.set(TypedCells.key(cell.row, col), cell.erasable);
    }
    this.cells = next;
  }
}
