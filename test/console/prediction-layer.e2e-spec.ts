import { join } from 'node:path';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { launchChromium } from '../support/browser.js';
import { eventually } from '../support/eventually.js';

/**
 * Predicted echo drawn by xterm.js 6 in Debian's Chromium (docs/console.md#predicted-echo): the
 * console's `Predictor` on a real `Terminal` (DOM renderer), fed by hand as the connection feeds
 * it. What the engine decides is pinned by its unit specs (console/src/terminal/prediction/); this
 * pins the drawing: over the terminal and aligned with its cells, never in its buffer, in the
 * alternate screen too, and gone when the guess turns out wrong.
 */

const ROOT = join(import.meta.dirname, '..', '..');

/** The page's side: a terminal, a predictor, and `harness` to drive them from the spec. */
const HARNESS = `
import { Terminal } from '@xterm/xterm';
import { Predictor } from './console/src/terminal/prediction/predictor.ts';

const host = document.createElement('div');
host.style.width = '480px';
host.style.height = '240px';
document.body.append(host);
const term = new Terminal({ cols: 40, rows: 8, fontSize: 15, theme: { background: '#0d1117', foreground: '#e6edf3', cursor: '#e6edf3' } });
term.open(host);
term.focus();
const predictor = new Predictor(term);
const target = predictor.wrap({ write: (data, parsed) => term.write(data, parsed), reset: () => term.reset() });
const rect = (element) => {
  const box = element.getBoundingClientRect();
  return { left: box.left, top: box.top, width: box.width, height: box.height };
};
window.harness = {
  output: (data, ack) => new Promise((resolve) => { predictor.output(data, ack); target.write(data, resolve); }),
  key: (data, seq) => predictor.keystroke(data, seq),
  modes: (modes) => predictor.modes({ echo: false, canonical: false, alt_screen: false, cursor_keys: 'normal', bracketed_paste: true, copy_mode: false, ...modes }),
  rtt: (ms) => predictor.rtt(ms),
  state: () => {
    const buffer = term.buffer.active;
    const cursor = document.querySelector('.xterm-rows .xterm-cursor');
    return {
      line: buffer.getLine(buffer.baseY + buffer.cursorY).translateToString(true),
      cells: [...document.querySelectorAll('.prediction-layer .prediction-cell')].map((node) => ({ char: node.textContent, underlined: getComputedStyle(node).textDecorationLine === 'underline', ...rect(node) })),
      cursor: [...document.querySelectorAll('.prediction-layer .prediction-cursor')].map(rect),
      realCursor: cursor ? rect(cursor) : null,
      screen: rect(document.querySelector('.xterm-screen')),
      counters: predictor.counters,
    };
  },
};
`;

interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

interface PageState {
  line: string;
  cells: (Box & { char: string; underlined: boolean })[];
  cursor: Box[];
  realCursor: Box | null;
  screen: Box;
  counters: { shown: number; confirmed: number; mismatches: number; wrongShown: number };
}

describe('predicted echo in the browser', () => {
  let browser: Browser;
  let script: string;
  let styles: string;

  beforeAll(async () => {
    const bundle = await build({
      stdin: { contents: HARNESS, resolveDir: ROOT, loader: 'ts' },
      bundle: true,
      format: 'esm',
      write: false,
      logLevel: 'silent',
      tsconfig: join(ROOT, 'console', 'tsconfig.json'),
    });
    script = bundle.outputFiles[0].text;
    const css = await build({ entryPoints: [join(ROOT, 'console', 'src', 'styles.css')], bundle: true, write: false, logLevel: 'silent' });
    styles = css.outputFiles[0].text;
    browser = await launchChromium(chromium);
  });

  afterAll(async () => {
    await browser?.close();
  });

  const openPage = async (): Promise<Page> => {
    const page = await browser.newPage({ viewport: { width: 520, height: 300 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.setContent('<!doctype html><html><body></body></html>');
    await page.addStyleTag({ content: styles });
    await page.addScriptTag({ content: script, type: 'module' });
    await page.waitForFunction('window.harness !== undefined');
    expect(errors).toEqual([]);
    return page;
  };

  const state = (page: Page): Promise<PageState> => page.evaluate('harness.state()');

  /** A prompt with one confirmed keystroke (`$ e`), over a 250 ms round trip. */
  const confirmedPrompt = async (page: Page, prefix = ''): Promise<void> => {
    await page.evaluate(`harness.rtt(250); harness.modes({})`);
    await page.evaluate(`harness.output(${JSON.stringify(`${prefix}$ `)}, 0)`);
    await page.evaluate(`harness.key('e', 1)`);
    await page.evaluate(`harness.output('e', 1)`);
  };

  const near = (a: number, b: number): void => expect(Math.abs(a - b)).toBeLessThan(0.6);

  it('draws predictions over the cells they are for, with a cursor, and leaves the buffer alone', async () => {
    const page = await openPage();
    await confirmedPrompt(page);
    await page.evaluate(`harness.key('c', 2); harness.key('h', 3)`);
    // xterm.js draws its rows (and its cursor) at an animation frame, which may still show an
    // earlier state (the cursor before "e" was parsed) on a busy machine: wait for the current one.
    // The first predicted cell is where xterm.js draws its real cursor (after "$ e"), the next one a cell to its right.
    const shown = await eventually(async () => {
      const current = await state(page);
      expect(current.line).toBe('$ e');
      expect(current.cells.map((cell) => cell.char)).toEqual(['c', 'h']);
      expect(current.cursor).toHaveLength(1);
      const real = current.realCursor;
      expect(real).not.toBeNull();
      near(current.cells[0].left, real!.left);
      near(current.cells[0].top, real!.top);
      near(current.cells[0].width, real!.width);
      near(current.cells[1].left, real!.left + real!.width);
      near(current.cursor[0].left, real!.left + 2 * real!.width);
      return current;
    }, 5_000);
    expect(shown.counters.shown).toBeGreaterThan(0);
    await page.evaluate(`harness.output('ch', 3)`);
    const confirmed = await state(page);
    expect(confirmed.line).toBe('$ ech');
    expect(confirmed.cells).toEqual([]);
    expect(confirmed.cursor).toEqual([]);
    expect(confirmed.counters).toMatchObject({ confirmed: 3, mismatches: 0 });
    await page.close();
  });

  it('draws in the alternate screen (where xterm.js has no decorations)', async () => {
    const page = await openPage();
    await confirmedPrompt(page, '\x1b[?1049h\x1b[H');
    await page.evaluate(`harness.key('x', 2)`);
    const shown = await state(page);
    expect(shown.cells.map((cell) => cell.char)).toEqual(['x']);
    near(shown.cells[0].top, shown.screen.top);
    await page.close();
  });

  it('draws the text an insertion moves along the line without the underline of what was typed', async () => {
    const page = await openPage();
    await confirmedPrompt(page);
    await page.evaluate(`harness.key('c', 2); harness.key('h', 3)`);
    await page.evaluate(`harness.output('ch', 3)`);
    await page.evaluate(`harness.key('\\x1b[D', 4)`);
    await page.evaluate(`harness.output('\\b', 4)`);
    await page.evaluate(`harness.key('X', 5)`);
    const shown = await state(page);
    expect(shown.line).toBe('$ ech');
    expect(shown.cells.map(({ char, underlined }) => ({ char, underlined }))).toEqual([
      { char: 'X', underlined: true },
      { char: 'h', underlined: false },
    ]);
    near(shown.cells[1].left, shown.cells[0].left + shown.cells[0].width);
    await page.close();
  });

  it('erases a wrong prediction within the grace, and draws nothing at a password prompt', async () => {
    const page = await openPage();
    await confirmedPrompt(page);
    await page.evaluate(`harness.key('a', 2)`);
    expect((await state(page)).cells).toHaveLength(1);
    await page.evaluate(`harness.output('*', 2)`);
    await eventually(async () => expect((await state(page)).cells).toEqual([]), 5_000);
    expect((await state(page)).counters).toMatchObject({ mismatches: 1, wrongShown: 1 });

    await page.evaluate(`harness.modes({ canonical: true })`);
    for (const [index, char] of [...'secret'].entries()) await page.evaluate(`harness.key('${char}', ${3 + index})`);
    const secret = await state(page);
    expect(secret.cells).toEqual([]);
    expect(secret.cursor).toEqual([]);
    await page.close();
  });
});
