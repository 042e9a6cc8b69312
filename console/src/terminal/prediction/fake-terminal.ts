import type { BufferView, CellView, LineView, ScreenView } from './types.js';

/**
 * A tiny terminal for the prediction engine's specs (and any Node harness without xterm.js): a
 * grid with scrollback and an alternate screen that understands what the specs' programs send:
 * printable characters (with xterm's pending wrap), CR, LF, BS, `ESC [ n C/D` (cursor right/left),
 * `ESC [ row ; col H`, `ESC [ K`, `ESC [ 2 J`, `ESC [ ? 1049 h/l` and `ESC [ … m` (any colour or
 * style, as one: a cell is styled or not). Wide characters take two cells, as in xterm.js.
 */

class FakeCell implements CellView {
  constructor(
    readonly chars: string,
    readonly width: number,
    readonly styled = false,
  ) {}

  isAttributeDefault(): boolean {
    return !this.styled;
  }

  getChars(): string {
    return this.chars;
  }

  getWidth(): number {
    return this.width;
  }
}

const EMPTY = new FakeCell('', 1);

class FakeBuffer implements BufferView {
  readonly lines: FakeCell[][] = [];
  cursorX = 0;
  cursorY = 0;
  baseY = 0;

  constructor(
    readonly type: 'normal' | 'alternate',
    private readonly rows: number,
  ) {
    for (let row = 0; row < rows; row += 1) this.lines.push([]);
  }

  getLine(y: number): LineView | undefined {
    const line = this.lines[y];
    return line ? { getCell: (x: number) => line[x] ?? EMPTY } : undefined;
  }

  get row(): FakeCell[] {
    return this.lines[this.baseY + this.cursorY];
  }

  lineFeed(): void {
    if (this.cursorY < this.rows - 1) this.cursorY += 1;
    else if (this.type === 'normal') {
      this.lines.push([]);
      this.baseY += 1;
    } else {
      this.lines.splice(0, 1);
      this.lines.push([]);
    }
  }
}

export class FakeTerminal implements ScreenView {
  private readonly normal: FakeBuffer;
  private alternate: FakeBuffer | null = null;
  private styled = false;

  constructor(
    readonly cols = 40,
    readonly rows = 10,
  ) {
    this.normal = new FakeBuffer('normal', rows);
  }

  get buffer(): { active: FakeBuffer } {
    return { active: this.alternate ?? this.normal };
  }

  /** The text of a buffer line (trailing blanks removed). */
  line(row: number): string {
    const cells = this.buffer.active.lines[row] ?? [];
    return cells
      .map((cell) => cell.chars || ' ')
      .join('')
      .trimEnd();
  }

  /** The cursor as the engine sees it: buffer line and column. */
  get cursor(): { row: number; col: number } {
    const buffer = this.buffer.active;
    return { row: buffer.baseY + buffer.cursorY, col: buffer.cursorX };
  }

  write(data: string): void {
    let index = 0;
    while (index < data.length) {
      if (data[index] === '\x1b') {
        index = this.escape(data, index);
        continue;
      }
      const char = String.fromCodePoint(data.codePointAt(index)!);
      index += char.length;
      this.character(char);
    }
  }

  private character(char: string): void {
    const buffer = this.buffer.active;
    if (char === '\r') buffer.cursorX = 0;
    else if (char === '\n') buffer.lineFeed();
    else if (char === '\b') buffer.cursorX = Math.max(0, Math.min(buffer.cursorX, this.cols - 1) - 1);
    else if (char >= ' ') {
      const width = /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\uff00-\uff60]|[\u{1f300}-\u{1faff}]/u.test(char) ? 2 : 1;
      if (buffer.cursorX + width > this.cols) {
        buffer.cursorX = 0;
        buffer.lineFeed();
      }
      const row = buffer.row;
      while (row.length < buffer.cursorX) row.push(EMPTY);
      row[buffer.cursorX] = new FakeCell(char, width, this.styled);
      if (width === 2) row[buffer.cursorX + 1] = new FakeCell('', 0, this.styled);
      buffer.cursorX += width;
    }
  }

  private escape(data: string, start: number): number {
    const match = /^\[(\??)([\d;]*)([A-Za-z])/.exec(data.slice(start + 1));
    if (!match) return start + 1;
    const [whole, privateMarker, parameters, final] = match;
    const numbers = parameters.split(';').map((value) => Number(value || '0'));
    const buffer = this.buffer.active;
    if (privateMarker && parameters === '1049') {
      if (final === 'h') this.alternate = new FakeBuffer('alternate', this.rows);
      if (final === 'l') this.alternate = null;
    } else if (final === 'm') this.styled = numbers.some((value) => value !== 0);
    else if (final === 'C') buffer.cursorX = Math.min(this.cols - 1, buffer.cursorX + (numbers[0] || 1));
    else if (final === 'D') buffer.cursorX = Math.max(0, Math.min(buffer.cursorX, this.cols - 1) - (numbers[0] || 1));
    else if (final === 'H') {
      buffer.cursorY = Math.max(0, (numbers[0] || 1) - 1);
      buffer.cursorX = Math.max(0, (numbers[1] || 1) - 1);
    } else if (final === 'K') buffer.row.splice(buffer.cursorX);
    else if (final === 'J') for (let row = 0; row < this.rows; row += 1) buffer.lines[buffer.baseY + row] = [];
    return start + 1 + whole.length;
  }
}
