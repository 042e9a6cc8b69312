import { describe, expect, it } from 'vitest';
import { HIGH_WATER, LOW_WATER, MAX_QUEUED, OutputSink, TerminalTarget } from './output-sink.js';

/** A terminal that parses only when told to, like xterm.js between two animation frames. */
class SlowTerminal implements TerminalTarget {
  readonly written: string[] = [];
  readonly events: string[] = [];
  private readonly waiting: (() => void)[] = [];

  write(data: string, parsed: () => void): void {
    this.written.push(data);
    this.events.push(`write:${data.length}`);
    this.waiting.push(parsed);
  }

  reset(): void {
    this.events.push('reset');
  }

  /** Parses the oldest pending write. */
  parseOne(): void {
    this.waiting.shift()?.();
  }

  parseAll(): void {
    while (this.waiting.length > 0) this.parseOne();
  }

  get pendingWrites(): number {
    return this.waiting.length;
  }
}

const chunk = (size: number, fill = 'x'): string => fill.repeat(size);

describe('OutputSink (xterm.js flow control)', () => {
  it('hands output over in order and keeps the stream position of what it accepted', () => {
    const term = new SlowTerminal();
    const sink = new OutputSink(term, () => {
      throw new Error('no overflow expected');
    });
    sink.write('ab', 102);
    sink.write('cd', 104);
    expect(term.written).toEqual(['ab', 'cd']);
    expect(sink.position).toBe(104);
  });

  it('stops handing output over above the high-water mark and resumes below the low-water mark, losing nothing', () => {
    const term = new SlowTerminal();
    const sink = new OutputSink(term, () => {
      throw new Error('no overflow expected');
    });
    const size = 64 * 1024;
    const count = Math.ceil(HIGH_WATER / size) + 6;
    for (let i = 0; i < count; i += 1) sink.write(chunk(size, String.fromCharCode(97 + i)), (i + 1) * size);
    // Only up to the high-water mark went to the terminal; the rest waits here.
    expect(term.written).toHaveLength(HIGH_WATER / size);
    expect(sink.position).toBe(count * size);
    expect(sink.backlog).toBe(count * size);
    // Parsing one chunk is not enough to go below the low-water mark: nothing more is handed over.
    term.parseOne();
    expect(term.written).toHaveLength(HIGH_WATER / size);
    // Once the terminal has caught up below the low-water mark, the rest follows, in order.
    while (term.pendingWrites > 0) term.parseOne();
    expect(term.written.map((data) => data[0]).join('')).toBe(
      Array.from({ length: count }, (_, i) => String.fromCharCode(97 + i)).join(''),
    );
    expect(sink.backlog).toBe(0);
    expect(LOW_WATER).toBeLessThan(HIGH_WATER);
  });

  it('clears the terminal only after everything written before the reset was parsed', () => {
    const term = new SlowTerminal();
    const sink = new OutputSink(term, () => undefined);
    sink.write('old screen', 10);
    sink.reset(5000);
    sink.write('repaint', 5007);
    expect(term.events).toEqual(['write:10']);
    expect(sink.position).toBe(5007);
    term.parseAll();
    expect(term.events).toEqual(['write:10', 'reset', 'write:7']);
    expect(sink.resets).toBe(1);
  });

  it('a fresh stream (reset to null) forgets the position until the first output', () => {
    const term = new SlowTerminal();
    const sink = new OutputSink(term, () => undefined);
    sink.write('x', 1);
    sink.reset(null);
    expect(sink.position).toBeNull();
    term.parseAll();
    sink.write('y', 77);
    expect(sink.position).toBe(77);
  });

  it('gives the backlog up past MAX_QUEUED and asks for a redraw, with no position to resume from', () => {
    const term = new SlowTerminal();
    let overflows = 0;
    const sink = new OutputSink(term, () => (overflows += 1));
    const size = 256 * 1024;
    let offset = 0;
    for (let i = 0; i <= MAX_QUEUED / size + Math.ceil(HIGH_WATER / size) + 1 && overflows === 0; i += 1) {
      offset += size;
      sink.write(chunk(size), offset);
    }
    expect(overflows).toBe(1);
    expect(sink.position).toBeNull();
    // What was already handed to the terminal is still parsed; nothing queued is written after it.
    const handed = term.written.length;
    term.parseAll();
    expect(term.written).toHaveLength(handed);
  });
});
