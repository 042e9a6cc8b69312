import type { Terminal } from '@xterm/xterm';
import type { Overlay } from './types.js';

/**
 * Draws the predicted cells and cursor over xterm.js, never into it: an absolutely positioned
 * layer inside `.xterm-screen`, aligned to its cell grid. The terminal's buffer holds only what
 * the server sent. (xterm.js's decorations would need a marker per line and are not available
 * in the alternate screen, where editors run.)
 *
 * Each predicted cell is an opaque box in the terminal's colours, so it covers what the buffer
 * shows there (a predicted blank hides an erased character, and the real cursor when it is under
 * a prediction), with the character underlined (not the text a key only moved: the rest of a
 * line after an insertion); the predicted cursor is an outlined box.
 */
export class PredictionLayer {
  private readonly element: HTMLDivElement;
  private drawnKey = '';

  constructor(private readonly term: Terminal) {
    this.element = document.createElement('div');
    this.element.className = 'prediction-layer';
    this.element.setAttribute('aria-hidden', 'true');
  }

  render(overlay: Overlay): void {
    const screen = this.term.element?.querySelector<HTMLElement>('.xterm-screen');
    if (!screen) return;
    if (this.element.parentElement !== screen) screen.appendChild(this.element);
    const buffer = this.term.buffer.active;
    const box = screen.getBoundingClientRect();
    const width = box.width / this.term.cols;
    const height = box.height / this.term.rows;
    const visible = overlay.buffer === buffer.type && width > 0 && height > 0;
    const top = buffer.viewportY;
    const onScreen = (row: number): boolean => row >= top && row < top + this.term.rows;
    const cells = visible ? overlay.cells.filter((cell) => onScreen(cell.row)) : [];
    const cursor = visible && overlay.cursor && onScreen(overlay.cursor.row) ? overlay.cursor : null;
    const key = JSON.stringify([cells, cursor, top, width, height, this.term.options.fontSize]);
    if (key === this.drawnKey) return;
    this.drawnKey = key;

    const theme = this.term.options.theme ?? {};
    // The font of xterm.js's own rows (its renderer sets it from the terminal's options).
    const rows = screen.querySelector('.xterm-rows');
    if (rows) {
      const font = getComputedStyle(rows);
      this.element.style.fontFamily = font.fontFamily;
      this.element.style.fontSize = font.fontSize;
    }
    this.element.style.color = theme.foreground ?? '#ffffff';
    const place = (node: HTMLElement, row: number, col: number): HTMLElement => {
      node.style.left = `${col * width}px`;
      node.style.top = `${(row - top) * height}px`;
      node.style.width = `${width}px`;
      node.style.height = `${height}px`;
      node.style.lineHeight = `${height}px`;
      return node;
    };
    const nodes: HTMLElement[] = cells.map((cell) => {
      const node = document.createElement('span');
      node.className =
        cell.char === ' ' ? 'prediction-cell prediction-blank' : cell.moved ? 'prediction-cell prediction-moved' : 'prediction-cell';
      node.style.backgroundColor = theme.background ?? '#000000';
      // Text a key only moved (the rest of a line) is drawn as it is, not underlined like what was typed.
      if (cell.moved) node.style.textDecoration = 'none';
      node.textContent = cell.char;
      return place(node, cell.row, cell.col);
    });
    if (cursor) {
      const node = document.createElement('span');
      node.className = 'prediction-cursor';
      node.style.borderColor = theme.cursor ?? theme.foreground ?? '#ffffff';
      nodes.push(place(node, cursor.row, cursor.col));
    }
    this.element.replaceChildren(...nodes);
  }

  dispose(): void {
    this.element.remove();
  }
}
