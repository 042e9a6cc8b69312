import type { PaneModes } from '../runtime/runtime.provider.js';
import { OutputModeTracker } from './modes/output-modes.js';
import type { ModesMessage } from './protocol.js';

/** Everything a client learns of the terminal's modes (docs/terminal.md, "Mode hints"). */
export interface TerminalModes extends PaneModes {
  bracketedPaste: boolean;
}

/** Where a terminal's pane modes come from: the runtime attachment's probe (`TerminalAttachment.probeModes`). */
export type ModesProbe = () => Promise<PaneModes | null>;

/** A read soon after input was written (a key that changes modes: `q` in less, a password prompt's Enter). */
const AFTER_INPUT_MS = 0;
/** Output that stops for this long ends a burst: the modes are read then… */
const QUIET_MS = 10;
/** …or after this long of continuous output at the latest. */
const MAX_WAIT_MS = 100;
/**
 * After the reads that input or output asked for, the modes are read again this long after the
 * previous read: a program changes its modes when it starts, often after the output that preceded
 * it and with no output of its own (`cat`, `read -s`, a password prompt that prints nothing more).
 */
const FOLLOW_UPS_MS = [40, 250];

export const sameModes = (a: TerminalModes, b: TerminalModes): boolean =>
  a.echo === b.echo &&
  a.canonical === b.canonical &&
  a.altScreen === b.altScreen &&
  a.cursorKeys === b.cursorKeys &&
  a.bracketedPaste === b.bracketedPaste &&
  a.copyMode === b.copyMode;

export const modesMessage = (modes: TerminalModes, offset: number): ModesMessage => ({
  type: 'modes',
  offset,
  echo: modes.echo,
  canonical: modes.canonical,
  alt_screen: modes.altScreen,
  cursor_keys: modes.cursorKeys,
  bracketed_paste: modes.bracketedPaste,
  copy_mode: modes.copyMode,
});

/**
 * Watches one terminal's modes where its output is read (a single process, or the owner replica):
 * bracketed paste from the output itself (OutputModeTracker), the others by probing the pane after
 * input was written and after bursts of output, at most one probe in flight. Reports each change
 * with the offset of the output read when the probe started (the modes hold from there on).
 */
export class ModeWatch {
  private readonly tracker = new OutputModeTracker();
  private pane: PaneModes | null = null;
  private last: TerminalModes | null = null;
  private inFlight = false;
  /** Something happened while a probe was in flight: probe again after it. */
  private dirty = false;
  private timer: NodeJS.Timeout | null = null;
  private timerDue = 0;
  /** Follow-up reads done since the last input or output. */
  private followUps = 0;
  private burstStarted: number | null = null;
  private lastOffset = 0;
  /** The next probe's result is reported even if unchanged. */
  private force = false;
  private closed = false;

  constructor(
    private readonly probe: ModesProbe,
    /** The offset just after the output read so far. */
    private readonly mark: () => number,
    private readonly changed: (modes: TerminalModes, offset: number) => void,
    /** Whether anyone listens: without, the pane is not probed (bracketed paste is still tracked). */
    private readonly wanted: () => boolean = () => true,
  ) {}

  /** The modes last reported, if any. */
  get current(): TerminalModes | null {
    return this.last;
  }

  /** Input was written to the terminal. */
  input(): void {
    this.schedule(AFTER_INPUT_MS);
  }

  /** Output was read (in order): bracketed paste is tracked in it, and a probe follows the burst. */
  output(chunk: Uint8Array): void {
    if (this.tracker.feed(chunk) !== null) this.report(this.mark());
    const now = Date.now();
    this.burstStarted ??= now;
    this.schedule(Math.max(0, Math.min(QUIET_MS, this.burstStarted + MAX_WAIT_MS - now)), true);
  }

  /** Probes now and reports the result even if unchanged (a client that wants the modes joined). */
  refresh(): void {
    this.force = true;
    this.schedule(0);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** A read after `delayMs` (`quiet`: postponed by more output, as a burst goes on). */
  private schedule(delayMs: number, quiet = false): void {
    if (this.closed || !this.wanted()) return;
    this.followUps = 0;
    if (this.inFlight) {
      this.dirty = true;
      return;
    }
    this.after(delayMs, quiet);
  }

  private after(delayMs: number, replace: boolean): void {
    const due = Date.now() + delayMs;
    if (this.timer && !replace && this.timerDue <= due) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDue = due;
    this.timer = setTimeout(() => void this.read(), delayMs);
  }

  private async read(): Promise<void> {
    this.timer = null;
    this.burstStarted = null;
    if (!this.wanted()) return;
    this.inFlight = true;
    const offset = this.mark();
    const pane = await this.probe().catch(() => null);
    this.inFlight = false;
    if (this.closed) return;
    if (pane) {
      this.pane = pane;
      this.report(offset, this.force);
      this.force = false;
    }
    if (this.dirty) {
      this.dirty = false;
      this.after(QUIET_MS, false);
    } else if (this.followUps < FOLLOW_UPS_MS.length && !this.timer) {
      this.after(FOLLOW_UPS_MS[this.followUps], false);
      this.followUps += 1;
    }
  }

  private report(offset: number, force = false): void {
    if (!this.pane) return;
    const modes: TerminalModes = { ...this.pane, bracketedPaste: this.tracker.modes.bracketedPaste };
    if (!force && this.last && sameModes(this.last, modes)) return;
    this.last = modes;
    // Offsets never go back (a probe that started before output a tracked change came with).
    this.lastOffset = Math.max(this.lastOffset, offset);
    this.changed(modes, this.lastOffset);
  }
}
