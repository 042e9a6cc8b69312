import type { PaneModes } from '../runtime/runtime.provider.js';
import { ModeWatch, TerminalModes } from './mode-hints.js';

const pane = (overrides: Partial<PaneModes> = {}): PaneModes => ({
  echo: false,
  canonical: false,
  altScreen: false,
  cursorKeys: 'normal',
  copyMode: false,
  ...overrides,
});

describe('ModeWatch', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('probes after input, reports changes only, with one probe in flight at most', async () => {
    let current = pane();
    let probes = 0;
    let inFlight = 0;
    let most = 0;
    const reported: [TerminalModes, number][] = [];
    let offset = 100;
    const watch = new ModeWatch(
      async () => {
        probes += 1;
        inFlight += 1;
        most = Math.max(most, inFlight);
        await Promise.resolve();
        inFlight -= 1;
        return current;
      },
      () => offset,
      (modes, at) => reported.push([modes, at]),
    );
    watch.input();
    await vi.advanceTimersByTimeAsync(1);
    expect(reported).toHaveLength(1);
    expect(reported[0][0]).toMatchObject({ echo: false, canonical: false, bracketedPaste: false });
    // A password prompt that prints nothing: a follow-up probe finds it.
    current = pane({ canonical: true });
    await vi.advanceTimersByTimeAsync(300);
    expect(reported.at(-1)?.[0]).toMatchObject({ echo: false, canonical: true });
    const count = reported.length;
    await vi.advanceTimersByTimeAsync(1000);
    expect(reported).toHaveLength(count);
    // Output bursts: bracketed paste from the output itself, at once, and a probe after the burst.
    offset = 200;
    for (let i = 0; i < 20; i += 1) watch.output(Buffer.from('\x1b[?2004h'));
    expect(reported.at(-1)).toEqual([expect.objectContaining({ bracketedPaste: true }), 200]);
    await vi.advanceTimersByTimeAsync(500);
    expect(most).toBe(1);
    expect(probes).toBeLessThan(12);
    watch.close();
  });

  it('reports nothing until the pane could be read', async () => {
    const reported: unknown[] = [];
    const watch = new ModeWatch(
      () => Promise.resolve(null),
      () => 0,
      (modes) => reported.push(modes),
    );
    watch.refresh();
    watch.output(Buffer.from('\x1b[?2004h'));
    await vi.advanceTimersByTimeAsync(500);
    expect(reported).toEqual([]);
    watch.close();
  });
});
