import { PredictionEngine } from './engine.js';
import { FakeTerminal } from './fake-terminal.js';
import type { PredictionOptions, TerminalModes } from './types.js';

/**
 * A terminal session over a simulated link, on a simulated clock, for the prediction engine's
 * specs: keystrokes reach the program half a round trip after they are typed, and what the
 * program writes reaches the terminal half a round trip later, in frames carrying the server's
 * `ack` (the last input written to the program before the frame was read), and `ack` frames for
 * input that no output followed within 50 ms (docs/terminal.md). The engine is fed as
 * the console feeds it: `keystroke` when input is sent, `output` before a frame is written to the
 * terminal, `drawn` once it is, `tick` at its deadlines.
 */

/** A program in the pane: what it writes back for a piece of input. */
export interface Program {
  input(data: string): string;
}

export const READLINE_MODES: TerminalModes = {
  echo: false,
  canonical: false,
  alt_screen: false,
  cursor_keys: 'normal',
  bracketed_paste: true,
  copy_mode: false,
};

export const PASSWORD_MODES: TerminalModes = { ...READLINE_MODES, echo: false, canonical: true, bracketed_paste: false };

/** A shell's line editor: echoes characters, erases with Backspace, moves with ←/→, erases the line with Ctrl-U, runs a line on Enter. */
export class ReadlineProgram implements Program {
  line = '';
  position = 0;
  /** What a line prints when run (before the next prompt); a function of the line. */
  run: (line: string) => string = () => '';

  constructor(public prompt = '$ ') {}

  input(data: string): string {
    let out = '';
    for (let index = 0; index < data.length; index += 1) {
      const char = data[index];
      if (data.startsWith('\x1b[D', index) || data.startsWith('\x1b[C', index)) {
        const left = data[index + 2] === 'D';
        index += 2;
        if (left && this.position > 0) {
          this.position -= 1;
          out += '\b';
        } else if (!left && this.position < this.line.length) {
          out += this.line[this.position];
          this.position += 1;
        }
      } else if (char === '\x7f') {
        if (this.position === 0) continue;
        const rest = this.line.slice(this.position);
        this.line = this.line.slice(0, this.position - 1) + rest;
        this.position -= 1;
        out += `\b${rest} ${'\b'.repeat(rest.length + 1)}`;
      } else if (char === '\x15') {
        // Ctrl-U: the line is erased.
        out += `${'\b'.repeat(this.position)}${' '.repeat(this.line.length)}${'\b'.repeat(this.line.length)}`;
        this.line = '';
        this.position = 0;
      } else if (char === '\r') {
        out += `\r\n${this.run(this.line)}${this.prompt}`;
        this.line = '';
        this.position = 0;
      } else if (char >= ' ') {
        const rest = this.line.slice(this.position);
        this.line = this.line.slice(0, this.position) + char + rest;
        this.position += 1;
        out += `${char}${rest}${'\b'.repeat(rest.length)}`;
      }
    }
    return out;
  }
}

/** A password prompt: echoes nothing until Enter. */
export class PasswordProgram implements Program {
  typed = '';

  input(data: string): string {
    if (!data.includes('\r')) {
      this.typed += data;
      return '';
    }
    return '\r\n';
  }
}

interface Event {
  at: number;
  order: number;
  run: () => void;
}

export class SimulatedLink {
  readonly terminal: FakeTerminal;
  readonly engine: PredictionEngine;
  now = 0;
  private seq = 0;
  private serverAck = 0;
  /** The highest ack sent to the client so far (in output or `ack` frames). */
  private frameAck = 0;
  private order = 0;
  private events: Event[] = [];
  /** Whether output frames carry `ack` (an older server sends none). */
  acks = true;
  /** Time the program takes to answer a piece of input (ms). */
  programDelay = 0;

  constructor(
    public program: Program,
    public roundTrip = 250,
    options: Partial<PredictionOptions> = {},
    size: { cols: number; rows: number } = { cols: 40, rows: 10 },
  ) {
    this.terminal = new FakeTerminal(size.cols, size.rows);
    this.engine = new PredictionEngine(this.terminal, options);
    this.engine.rtt(roundTrip);
  }

  /** Types `data` now, as one input frame. */
  type(data: string): void {
    this.seq += 1;
    const seq = this.seq;
    this.engine.keystroke(data, seq, this.now);
    this.schedule(this.roundTrip / 2, () => {
      this.serverAck = seq;
      const out = this.program.input(data);
      if (out) this.schedule(this.programDelay, () => this.serverOutput(out));
      // No output acknowledging it within 50 ms: the server sends an `ack` frame.
      this.schedule(50, () => {
        if (!this.acks || this.frameAck >= seq) return;
        this.frameAck = seq;
        this.schedule(this.roundTrip / 2, () => this.engine.output('', seq, this.now));
      });
    });
  }

  /** Types each character of `text`, `gap` ms apart, then waits `gap`. */
  typeEach(text: string, gap: number): void {
    for (const char of text) {
      this.type(char);
      this.advance(gap);
    }
  }

  /** Output the program writes by itself (not in answer to a key). */
  serverOutput(data: string): void {
    const ack = this.acks ? this.serverAck : null;
    this.frameAck = this.serverAck;
    this.schedule(this.roundTrip / 2, () => {
      this.engine.output(data, ack, this.now);
      this.terminal.write(data);
      this.engine.drawn(data, this.now);
    });
  }

  /** Output as the server sends it right now, arriving at once (the first frame, a repaint). */
  receive(data: string, ack: number | null = this.serverAck): void {
    this.engine.output(data, ack, this.now);
    this.terminal.write(data);
    this.engine.drawn(data, this.now);
  }

  modes(modes: TerminalModes): void {
    this.engine.modes(modes);
  }

  /** Runs the clock `ms` forward: deliveries, and the engine's deadlines. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const next = this.events[0];
      const deadline = this.engine.nextDeadline();
      const at = Math.min(next ? next.at : Infinity, deadline !== null && deadline > this.now ? deadline : Infinity);
      if (at > end) break;
      this.now = at;
      if (next && next.at === at) {
        this.events.shift();
        next.run();
      } else {
        this.engine.tick(this.now);
      }
    }
    this.now = end;
    this.engine.tick(this.now);
  }

  /** Lets every message in flight arrive. */
  settle(): void {
    this.advance(this.roundTrip * 2 + this.programDelay + 200);
  }

  /** The predicted text drawn on a buffer line (cells in column order), '' when none. */
  shownOn(row: number): string {
    return this.engine
      .overlay()
      .cells.filter((cell) => cell.row === row)
      .sort((a, b) => a.col - b.col)
      .map((cell) => cell.char)
      .join('');
  }

  private schedule(delay: number, run: () => void): void {
    this.events.push({ at: this.now + delay, order: (this.order += 1), run });
    this.events.sort((a, b) => a.at - b.at || a.order - b.order);
  }
}

/** A bash prompt over a 250 ms round trip, with one confirmed keystroke behind it (`$ e`: the epoch is confirmed). */
export function confirmedPrompt(): { link: SimulatedLink; shell: ReadlineProgram } {
  const shell = new ReadlineProgram();
  const link = new SimulatedLink(shell, 250);
  link.receive('$ ', 0);
  link.modes(READLINE_MODES);
  link.type('e');
  link.settle();
  if (link.engine.counters.confirmed !== 1) throw new Error('the first keystroke was not confirmed');
  return { link, shell };
}
