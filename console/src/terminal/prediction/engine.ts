import { parseKeys, type PredictedKey } from './keys.js';
import { keyEffect } from './key-effects.js';
import { isDrawn, readRow, showsInsertMode, type RowCell } from './line-model.js';
import { PendingFrames } from './frames.js';
import { PromptMemory } from './prompts.js';
import { TypedCells } from './typed-cells.js';
import {
  DEFAULT_PREDICTION_OPTIONS,
  emptyCounters,
  type BufferView,
  type CellPosition,
  type Keystroke,
  type Overlay,
  type OverlayCell,
  type Prediction,
  type PredictionCounters,
  type PredictionOptions,
  type ScreenView,
  type TerminalModes,
} from './types.js';

/**
 * Predicted echo (docs/console.md#predicted-echo, where the rules are): guesses what the program
 * will draw for a keystroke, so that it can be drawn at once over a slow link, and checks each
 * guess against the server's output. Pure: no DOM, no timers (the caller passes the time and calls
 * `tick` at `nextDeadline()`), so it runs the same in the browser, a Node benchmark and unit specs.
 *
 * - Predicted: narrow printable characters (text right of the cursor moves right), Backspace and
 *   ←/→ over what this epoch typed, Enter (at a prompt the cursor's move; in an editor's insert
 *   mode the split line: ./line-model.ts). Any other key starts a new epoch, and nothing is
 *   predicted until output acknowledging it is drawn (the cursor is unknown meanwhile).
 * - Epochs, as in mosh: hidden (tentative) until one of their characters is confirmed by the
 *   server's echo, or at once at a prompt seen to echo (./prompts.ts).
 * - Confirmed when output acknowledging the keystroke (`ack` ≥ its `seq`) puts the predicted cells
 *   in the buffer and the cursor where predicted; wrong when that has not happened a grace after:
 *   all are erased, and the keys not acknowledged yet are predicted again from the cursor the
 *   output left, in a new epoch.
 * - Nothing is drawn while echo is off in canonical mode (a password prompt; nothing is even
 *   predicted then), in tmux's copy mode, or when the round trip is under `minRttMs`.
 */

type Made = 'made' | 'none' | 'handed-over';

const MAX_ERASE_SAMPLES = 256;
const RTT_WEIGHT = 0.125;

const cellKey = (row: number, col: number): string => `${row}:${col}`;
const samePosition = (a: CellPosition, b: CellPosition): boolean => a.row === b.row && a.col === b.col;

export class PredictionEngine {
  readonly options: PredictionOptions;
  readonly counters: PredictionCounters = emptyCounters();
  private currentModes: TerminalModes | null = null;
  private smoothedRtt: number | null = null;
  private epoch = 0;
  private confirmedEpoch = -1;
  /** The epoch of the last prediction made: a prediction in another one begins its epoch. */
  private begunEpoch = -1;
  /** Prompts where typing was seen to echo. */
  private readonly prompts = new PromptMemory();
  private live: Prediction[] = [];
  /** Cells typed (predicted) in this epoch: Backspace and ←/→ are predicted only over them. */
  private readonly typed = new TypedCells(() => this.screen.cols);
  private lastSeq = 0;
  /** No prediction until output acknowledging this keystroke has been drawn. */
  private syncSeq = 0;
  /** `syncSeq` was typed in a full-screen program without vim's insert-mode line: did it enter insert mode? */
  private insertCheck = false;
  /** The full-screen program showed vim's insert-mode line: a vi whose normal mode (the line gone) takes keys as commands. */
  private vi = false;
  /** The highest `ack` of the output drawn so far. */
  private ackDrawn = 0;
  /** Output handed over (`output`) and not yet drawn (`drawn`), in order. */
  private readonly pending = new PendingFrames();
  /** Predictable keys typed while the cursor was unknown (before `syncSeq` was acknowledged). */
  private deferred: Keystroke[] = [];
  /** Where the last confirmation left the cursor: finding it elsewhere at the next keystroke starts a new epoch. */
  private restCursor: CellPosition | null = null;
  private offTrackSince: number | null = null;
  private bufferType: 'normal' | 'alternate';

  constructor(
    private readonly screen: ScreenView,
    options: Partial<PredictionOptions> = {},
  ) {
    this.options = { ...DEFAULT_PREDICTION_OPTIONS, ...options };
    this.bufferType = screen.buffer.active.type;
  }

  /** The smoothed round trip (ms), null before any measurement. */
  get rttMs(): number | null {
    return this.smoothedRtt;
  }

  /** Whether predictions may be drawn at all now (round trip, password prompt, copy mode). */
  get drawing(): boolean {
    return this.smoothedRtt !== null && this.smoothedRtt >= this.options.minRttMs && this.predicting;
  }

  /** Echo off in canonical mode: the line discipline is reading a secret. */
  private get secret(): boolean {
    return this.currentModes?.echo === false && this.currentModes.canonical !== false;
  }

  /**
   * A full-screen program (vim, less: the pane's alternate screen, as the server says). Not the
   * terminal's own buffer: tmux draws every pane on the client's normal screen.
   */
  private get fullScreen(): boolean {
    return this.currentModes?.alt_screen === true;
  }

  private get predicting(): boolean {
    return !this.secret && this.currentModes?.copy_mode !== true;
  }

  /** A measured round trip (a ping's, in ms). */
  rtt(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.smoothedRtt = this.smoothedRtt === null ? ms : this.smoothedRtt + RTT_WEIGHT * (ms - this.smoothedRtt);
  }

  /** The server's `modes` frame. Any change starts a new epoch; copy mode and a password prompt drop every prediction. */
  modes(modes: TerminalModes): void {
    const previous = this.currentModes;
    this.currentModes = { ...modes };
    if (
      previous &&
      previous.echo === modes.echo &&
      previous.canonical === modes.canonical &&
      previous.alt_screen === modes.alt_screen &&
      previous.cursor_keys === modes.cursor_keys &&
      previous.bracketed_paste === modes.bracketed_paste &&
      previous.copy_mode === modes.copy_mode
    )
      return;
    if (!this.predicting) {
      this.discardAll();
      this.deferred = [];
    }
    if (previous?.alt_screen !== modes.alt_screen) this.vi = false;
    this.newEpoch();
  }

  /** Input sent to the server as `{"type":"input","data":…,"seq":…}`. */
  keystroke(data: string, seq: number, now: number): void {
    this.counters.keystrokes += 1;
    this.lastSeq = Math.max(this.lastSeq, seq);
    // Nothing of a secret is kept, not even a guess at it.
    const keys = this.predicting ? parseKeys(data, this.currentModes?.cursor_keys === 'application') : [];
    this.vi ||= this.insertModeShown();
    if (keys.length === 0 || keys.some((key) => key.kind === 'other') || this.live.length + this.deferred.length >= this.options.maxLive) {
      this.unpredicted(seq);
      return;
    }
    const keystroke: Keystroke = { keys, seq, at: now };
    if (this.ackDrawn < this.syncSeq) {
      // Where the cursor is becomes known once output acknowledging the last unpredicted key is drawn.
      this.deferred.push(keystroke);
      return;
    }
    // The cursor moved since the last confirmation, and not by a predicted key: the program did something of its own.
    if (this.live.length === 0 && this.restCursor && !samePosition(this.restCursor, this.realCursor())) this.newEpoch();
    this.insertModeBegun();
    this.predictKeys(keystroke);
    this.markShown(now, true);
  }

  /**
   * An `output` frame's data and `ack` (null when it has none), before it is handed to the
   * terminal; or, with data '', an `ack` frame (input written, no echo followed).
   */
  output(data: string, ack: number | null, now: number): void {
    // Nothing to draw and nothing before it waiting to be drawn: it applies now.
    if (this.pending.add(data, ack)) this.drawn('', now);
  }

  /** The terminal has drawn (parsed) `data`, handed over earlier with `output`. */
  drawn(data: string, now: number): void {
    const ack = this.pending.drawn(data);
    if (ack !== null && ack > this.ackDrawn) {
      this.ackDrawn = ack;
      for (const prediction of this.live) if (prediction.seq <= ack && prediction.dueSince === null) prediction.dueSince = now;
    }
    this.insertModeBegun();
    if (this.deferred.length > 0 && this.ackDrawn >= this.syncSeq) {
      // Keys typed meanwhile and not acknowledged yet: predicted from the cursor now drawn (tentatively:
      // an epoch has begun). Those acknowledged are probably drawn already.
      const waiting = this.deferred.filter((keystroke) => keystroke.seq > this.ackDrawn);
      this.deferred = [];
      this.predictSeries(waiting);
    }
    this.check(now);
  }

  /** Time passed: judge predictions whose grace is over. Call at `nextDeadline()`. */
  tick(now: number): void {
    this.check(now);
  }

  /** When `tick` has something to judge, or null. */
  nextDeadline(): number | null {
    const first = this.live[0];
    if (!first) return null;
    const since = first.seq <= this.ackDrawn ? first.dueSince : this.offTrackSince;
    return since === null ? null : since + this.grace();
  }

  /** The terminal was cleared or resized: every prediction is void. */
  reset(): void {
    this.discardAll();
    this.newEpoch();
    this.syncSeq = this.lastSeq;
    this.deferred = [];
    this.bufferType = this.screen.buffer.active.type;
  }

  /** What to draw now. */
  overlay(): Overlay {
    const overlay: Overlay = { buffer: this.bufferType, cells: [], cursor: null };
    if (!this.drawing) return overlay;
    const cells = new Map<string, OverlayCell>();
    for (const prediction of this.live) {
      if (!this.shows(prediction)) break;
      for (const cell of prediction.cells) cells.set(cellKey(cell.row, cell.col), cell);
      overlay.cursor = { row: prediction.after.row, col: Math.min(prediction.after.col, this.screen.cols - 1) };
    }
    overlay.cells = [...cells.values()];
    return overlay;
  }

  private grace(): number {
    return Math.max(this.options.graceMinMs, this.options.graceRttFraction * (this.smoothedRtt ?? 0));
  }

  private shows(prediction: Prediction): boolean {
    return prediction.epoch <= this.confirmedEpoch;
  }

  private newEpoch(): void {
    this.epoch += 1;
    this.typed.clear();
    this.restCursor = null;
  }

  /** A keystroke whose effect is not predicted: the cursor is unknown until its output is drawn. */
  private unpredicted(seq: number): void {
    const last = this.live[this.live.length - 1];
    if (last && last.followedBy === null && !last.handsOver) last.followedBy = seq;
    this.handOver(seq);
  }

  /** What follows keystroke `seq` is the program's: wait for its output, then begin a new epoch. */
  private handOver(seq: number): void {
    this.syncSeq = seq;
    this.insertCheck = this.fullScreen && !this.insertModeShown();
    this.deferred = [];
    this.newEpoch();
  }

  private get buffer(): BufferView {
    return this.screen.buffer.active;
  }

  private realCursor(): CellPosition {
    const buffer = this.buffer;
    return { row: buffer.baseY + buffer.cursorY, col: buffer.cursorX };
  }

  /** The cursor once every prediction so far is drawn by the program. */
  private predictedCursor(): CellPosition {
    const last = this.live[this.live.length - 1];
    return last && last.followedBy === null && !last.handsOver ? last.after : this.realCursor();
  }

  /** Whether a full-screen program shows vim's insert-mode line on its last row. */
  private insertModeShown(): boolean {
    return this.fullScreen && showsInsertMode(readRow(this.buffer, this.buffer.baseY + this.screen.rows - 1, this.screen.cols));
  }

  /**
   * The key waited for is drawn, and it put vi into insert mode (the insert-mode line was not
   * there when it was typed, it is now): what is typed after it is text, drawn at once.
   */
  private insertModeBegun(): void {
    if (!this.insertCheck || this.ackDrawn < this.syncSeq) return;
    this.insertCheck = false;
    if (!this.insertModeShown()) return;
    this.vi = true;
    this.confirmedEpoch = Math.max(this.confirmedEpoch, this.epoch);
  }

  /** A row as it will be once every prediction is drawn. */
  private predictedRow(row: number): RowCell[] {
    const cells = readRow(this.buffer, row, this.screen.cols);
    for (const prediction of this.live)
      for (const cell of prediction.cells) if (cell.row === row) cells[cell.col] = { char: cell.char, plain: true };
    return cells;
  }

  /** Predicts keystrokes in order; those after one that hands over (or is not predicted) wait for its output. */
  private predictSeries(series: Keystroke[]): void {
    if (!this.predicting) return;
    for (let index = 0; index < series.length; index += 1) {
      if (this.ackDrawn < this.syncSeq) {
        this.deferred.push(...series.slice(index));
        return;
      }
      this.predictKeys(series[index]);
    }
  }

  private predictKeys(keystroke: Keystroke): void {
    // vi's normal mode: keys are commands (the one that enters insert mode among them), not text.
    if (this.vi && !this.insertModeShown()) {
      this.unpredicted(keystroke.seq);
      return;
    }
    for (const key of keystroke.keys) {
      const made = this.predictKey(key, keystroke);
      if (made === 'none') this.unpredicted(keystroke.seq);
      if (made === 'handed-over') this.handOver(keystroke.seq);
      if (made !== 'made') return;
    }
  }

  private predictKey(key: PredictedKey, keystroke: Keystroke): Made {
    const before = this.predictedCursor();
    const effect = keyEffect(key, {
      cursor: before,
      cols: this.screen.cols,
      bottom: this.buffer.baseY + this.screen.rows - 1,
      fullScreen: this.fullScreen,
      typed: this.typed,
      rowAt: (row) => this.predictedRow(row),
    });
    if (!effect) return 'none';
    const { seq, at } = keystroke;
    if (effect.kind === 'char' && this.begunEpoch !== this.epoch && this.prompts.begin(this.epoch, effect.prompt, this.currentModes))
      // A character that begins an epoch at a prompt where typing was seen to echo: drawn at once.
      this.confirmedEpoch = Math.max(this.confirmedEpoch, this.epoch);
    this.begunEpoch = this.epoch;
    const { kind, cells, after, handsOver } = effect;
    const dueSince = seq <= this.ackDrawn ? at : null;
    this.live.push({
      keystroke,
      seq,
      epoch: this.epoch,
      kind,
      cells,
      before,
      after,
      handsOver,
      madeAt: at,
      shownAt: null,
      dueSince,
      followedBy: null,
    });
    this.counters.predicted += 1;
    return handsOver ? 'handed-over' : 'made';
  }

  private markShown(now: number, atOnce: boolean): void {
    if (!this.drawing) return;
    for (const prediction of this.live) {
      if (!this.shows(prediction)) break;
      if (prediction.shownAt !== null) continue;
      prediction.shownAt = now;
      this.counters.shown += 1;
      if (atOnce && prediction.madeAt === now) this.counters.shownAtOnce += 1;
    }
  }

  private check(now: number): void {
    if (this.buffer.type !== this.bufferType) {
      this.reset();
      return;
    }
    this.confirm(now);
    this.judge(now);
    this.markShown(now, false);
  }

  private judge(now: number): void {
    const first = this.live[0];
    if (!first) {
      this.offTrackSince = null;
      return;
    }
    if (first.seq <= this.ackDrawn) {
      if (first.dueSince !== null && now >= first.dueSince + this.grace()) this.fail(now);
      return;
    }
    // Its echo cannot have come yet: the cursor must still be where the first prediction starts.
    if (samePosition(first.before, this.realCursor())) {
      this.offTrackSince = null;
      return;
    }
    this.offTrackSince ??= now;
    if (now >= this.offTrackSince + this.grace()) this.fail(now);
  }

  /** Confirms the longest run of acknowledged predictions that the buffer bears out. */
  private confirm(now: number): void {
    const expected = new Map<string, boolean>();
    let wrongCells = 0;
    const cursor = this.realCursor();
    let upTo = -1;
    for (let index = 0; index < this.live.length; index += 1) {
      const prediction = this.live[index];
      if (prediction.seq > this.ackDrawn) break;
      for (const cell of prediction.cells) {
        const key = cellKey(cell.row, cell.col);
        if (expected.get(key) === false) wrongCells -= 1;
        const right = isDrawn(this.buffer, cell);
        expected.set(key, right);
        if (!right) wrongCells += 1;
      }
      if (wrongCells > 0) continue;
      // A key sent after this one and not predicted may have moved the cursor since.
      const movedSince = prediction.followedBy !== null && prediction.followedBy <= this.ackDrawn;
      const done = prediction.handsOver ? cursor.row !== prediction.before.row : samePosition(prediction.after, cursor);
      if (movedSince || done) upTo = index;
    }
    if (upTo < 0) return;
    for (const prediction of this.live.splice(0, upTo + 1)) {
      this.counters.confirmed += 1;
      this.rtt(now - prediction.madeAt);
      if (prediction.kind !== 'char' || prediction.cells.find((cell) => !cell.moved)?.char === ' ') continue;
      this.confirmedEpoch = Math.max(this.confirmedEpoch, prediction.epoch);
      this.prompts.confirmed(prediction.epoch);
    }
    this.offTrackSince = null;
    this.restCursor = this.live.length === 0 && this.confirmedEpoch === this.epoch ? cursor : null;
  }

  /**
   * The output did not bear the predictions out: erase them all, and predict the keys not
   * acknowledged yet again from the cursor the output left, tentatively (a new epoch).
   */
  private fail(now: number): void {
    // Keys sent after them and not predicted (Ctrl-U, Tab) may have changed their cells: not a mismatch.
    const judged = !this.live.some((prediction) => prediction.followedBy !== null && prediction.followedBy <= this.ackDrawn);
    if (judged) {
      this.counters.mismatches += 1;
      for (const prediction of this.live) {
        this.counters.wrong += 1;
        if (prediction.shownAt === null) continue;
        this.counters.wrongShown += 1;
        this.counters.erasedAfterMs.push(now - prediction.shownAt);
        if (this.counters.erasedAfterMs.length > MAX_ERASE_SAMPLES) this.counters.erasedAfterMs.shift();
      }
      this.prompts.wrong(this.live.map((prediction) => prediction.epoch));
    } else {
      this.counters.discarded += this.live.length;
    }
    const waiting = [
      ...new Set(this.live.filter((prediction) => prediction.seq > this.ackDrawn).map((prediction) => prediction.keystroke)),
    ];
    this.live = [];
    this.offTrackSince = null;
    this.newEpoch();
    if (this.ackDrawn >= this.syncSeq && this.deferred.length === 0) {
      this.predictSeries(waiting);
      return;
    }
    // A key that was not predicted is on its way: everything typed so far must be drawn first.
    this.syncSeq = this.lastSeq;
    this.deferred = [];
  }

  private discardAll(): void {
    this.counters.discarded += this.live.length;
    this.live = [];
    this.offTrackSince = null;
  }
}
