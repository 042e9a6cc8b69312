import type { Program } from './simulated-link.js';

/**
 * A small vi for the prediction engine's specs, full screen: normal mode (0, h, l, j, k,
 * x, i, a, A, o, Esc) and insert mode (characters, Backspace over what this insertion typed, ←/→
 * in application cursor-key mode, Enter splitting the line), `~` below the text and vim's
 * `-- INSERT --` on the last row in insert mode. It redraws the whole screen after each input, as
 * a terminal would end up showing it.
 */
export class EditorProgram implements Program {
  insert = false;
  row = 0;
  col = 0;
  /** Where Backspace stops: the start of the current insertion (vim's default 'backspace'). */
  private insertedFrom = 0;

  constructor(
    readonly lines: string[],
    private readonly rows: number,
  ) {}

  /**
   * What the client's terminal gets when the editor starts: the pane's alternate screen as tmux
   * draws it, on the client's normal screen (only the server's `modes` say it is the alternate one).
   */
  start(): string {
    return `\x1b[2J${this.render()}`;
  }

  input(data: string): string {
    let index = 0;
    while (index < data.length) {
      if (data.startsWith('\x1bOD', index) || data.startsWith('\x1bOC', index)) {
        this.arrow(data[index + 2] === 'D');
        index += 3;
        continue;
      }
      const key = data[index];
      index += 1;
      if (this.insert) this.insertKey(key);
      else this.normalKey(key);
    }
    return this.render();
  }

  private get line(): string {
    return this.lines[this.row];
  }

  private set line(text: string) {
    this.lines[this.row] = text;
  }

  private startInsert(col: number): void {
    this.insert = true;
    this.col = col;
    this.insertedFrom = col;
  }

  private normalKey(key: string): void {
    const last = Math.max(0, this.line.length - 1);
    if (key === 'i') this.startInsert(this.col);
    else if (key === 'a') this.startInsert(Math.min(this.line.length, this.col + 1));
    else if (key === 'A') this.startInsert(this.line.length);
    else if (key === 'o') {
      this.lines.splice(this.row + 1, 0, '');
      this.row += 1;
      this.startInsert(0);
    } else if (key === '0') this.col = 0;
    else if (key === 'h') this.col = Math.max(0, this.col - 1);
    else if (key === 'l') this.col = Math.min(last, this.col + 1);
    else if (key === 'j' || key === 'k') {
      this.row = Math.max(0, Math.min(this.lines.length - 1, this.row + (key === 'j' ? 1 : -1)));
      this.col = Math.min(this.col, Math.max(0, this.line.length - 1));
    } else if (key === 'x') this.line = this.line.slice(0, this.col) + this.line.slice(this.col + 1);
  }

  private insertKey(key: string): void {
    if (key === '\x1b') {
      this.insert = false;
      this.col = Math.max(0, this.col - 1);
    } else if (key === '\r') {
      this.lines.splice(this.row + 1, 0, this.line.slice(this.col));
      this.line = this.line.slice(0, this.col);
      this.row += 1;
      this.startInsert(0);
    } else if (key === '\x7f') {
      if (this.col <= this.insertedFrom) return;
      this.line = this.line.slice(0, this.col - 1) + this.line.slice(this.col);
      this.col -= 1;
    } else if (key >= ' ') {
      this.line = this.line.slice(0, this.col) + key + this.line.slice(this.col);
      this.col += 1;
    }
  }

  private arrow(left: boolean): void {
    this.col = Math.max(0, Math.min(this.line.length, this.col + (left ? -1 : 1)));
    this.insertedFrom = this.col;
  }

  private render(): string {
    let out = '';
    for (let row = 0; row < this.rows - 1; row += 1) out += `\x1b[${row + 1};1H${this.lines[row] ?? '~'}\x1b[K`;
    out += `\x1b[${this.rows};1H${this.insert ? '-- INSERT --' : ''}\x1b[K`;
    return `${out}\x1b[${this.row + 1};${this.col + 1}H`;
  }
}
