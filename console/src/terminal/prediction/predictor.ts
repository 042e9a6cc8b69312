import type { IDisposable, Terminal } from '@xterm/xterm';
import type { TerminalTarget } from '../output-sink.js';
import { PredictionEngine } from './engine.js';
import { PredictionLayer } from './prediction-layer.js';
import type { PredictionCounters, PredictionOptions, TerminalModes } from './types.js';

/**
 * What the terminal connection tells the predictor (docs/console.md#predicted-echo). The
 * connection calls these only with what the server sent: a server without the protocol's `seq`,
 * `ack` and `modes` (docs/terminal.md) never gets anything drawn.
 */
export interface PredictionFeed {
  /** Once per `input` frame, when it is first sent (not when resent after a reconnect), with its `seq`. */
  keystroke(data: string, seq: number): void;
  /** Each `output` frame, before it is handed to the OutputSink (`ack` null when absent); an `ack` frame as `output('', seq)`. */
  output(data: string, ack: number | null): void;
  /** Each `modes` frame. */
  modes(modes: TerminalModes): void;
  /** Each measured round trip (ping to pong), in ms. */
  rtt(ms: number): void;
}

/** The prediction engine wired to xterm.js: the clock, its deadlines, and the layer it draws on. */
export class Predictor implements PredictionFeed {
  readonly engine: PredictionEngine;
  private readonly layer: PredictionLayer;
  private readonly disposables: IDisposable[] = [];
  private timer: number | null = null;
  private disposed = false;

  constructor(
    private readonly term: Terminal,
    options: Partial<PredictionOptions> = {},
  ) {
    this.engine = new PredictionEngine(term, options);
    this.layer = new PredictionLayer(term);
    this.disposables.push(
      term.onRender(() => this.draw()),
      term.onScroll(() => this.draw()),
      term.buffer.onBufferChange(() => this.draw()),
      // Reflowed lines: every position predicted is void.
      term.onResize(() => {
        this.engine.reset();
        this.update();
      }),
    );
  }

  get counters(): PredictionCounters {
    return this.engine.counters;
  }

  keystroke(data: string, seq: number): void {
    this.engine.keystroke(data, seq, performance.now());
    this.update();
  }

  output(data: string, ack: number | null): void {
    this.engine.output(data, ack, performance.now());
    this.update();
  }

  modes(modes: TerminalModes): void {
    this.engine.modes(modes);
    this.update();
  }

  rtt(ms: number): void {
    this.engine.rtt(ms);
    this.update();
  }

  /** The OutputSink's target, seen through the predictor: it learns what xterm.js has drawn, and of clears. */
  wrap(target: TerminalTarget): TerminalTarget {
    return {
      write: (data, parsed) =>
        target.write(data, () => {
          if (!this.disposed) {
            this.engine.drawn(data, performance.now());
            this.update();
          }
          parsed();
        }),
      reset: () => {
        target.reset();
        this.engine.reset();
        this.update();
      },
    };
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer !== null) window.clearTimeout(this.timer);
    for (const disposable of this.disposables) disposable.dispose();
    this.layer.dispose();
  }

  private draw(): void {
    if (!this.disposed) this.layer.render(this.engine.overlay());
  }

  /** Draws, and wakes up at the engine's next deadline. */
  private update(): void {
    if (this.disposed) return;
    this.draw();
    if (this.timer !== null) window.clearTimeout(this.timer);
    this.timer = null;
    const deadline = this.engine.nextDeadline();
    if (deadline === null) return;
    this.timer = window.setTimeout(
      () => {
        this.timer = null;
        this.engine.tick(performance.now());
        this.update();
      },
      Math.max(0, deadline - performance.now()),
    );
  }
}
