import { parseKeys, type PredictedKey } from './keys.js';
import {
  DEFAULT_PREDICTION_OPTIONS,
  type BufferView,
  type CellPosition,
  type Overlay,
  type OverlayCell,
  type PredictionCounters,
  type PredictionOptions,
  type ScreenView,
  type TerminalModes,
} from './types.js';

/**
 * Predicted echo (docs/console.md#predicted-echo): guesses what the program will draw for a
 * keystroke, so that it can be drawn at once over a slow link, and checks each guess against the
 * server's output. Pure: no DOM, no timers (the caller passes the time and calls `tick` at
 * `nextDeadline()`), so it runs the same in the browser, a Node benchmark and unit specs.
 *
 * - Keys are predicted only where their effect is certain enough: a narrow printable character at
 *   the end of the line's content (not in the last column), Backspace and ←/→ over characters typed
 *   in this epoch. Anything else (Tab, control keys, other sequences, wide or combining
 *   characters, Enter) is not predicted, starts a new epoch, and no prediction is made until
 *   output acknowledging it has been drawn (the cursor is unknown meanwhile).
 * - Epochs, as in mosh: the predictions of an epoch stay hidden (tentative) until one of them
 *   (a character other than a space) is confirmed by the server's echo; then the epoch's
 *   predictions are drawn, later ones at once.
 * - A prediction is confirmed when output acknowledging its keystroke (`ack` ≥ its `seq`) puts
 *   the predicted cells in the buffer and the cursor where predicted. It is wrong when that has not
 *   happened a grace after the first acknowledging output was drawn: every prediction is erased
 *   and a new (tentative) epoch starts.
 * - Nothing is drawn while echo is off in canonical mode (a password prompt; nothing is even
 *   predicted then), in tmux's copy mode, or when the round trip is under `minRttMs`.
 */

interface Prediction {
  seq: number;
  epoch: number;
  kind: 'char' | 'backspace' | 'move';
  /** The cell the key changes (a character, or a blank for Backspace); null for a cursor move. */
  cell: OverlayCell | null;
  before: CellPosition;
  after: CellPosition;
  madeAt: number;
  shownAt: number | null;
  /** When output acknowledging this keystroke was first drawn. */
  dueSince: number | null;
  /** The keystroke sent right after this one when it was not predicted (its effect is unknown). */
  followedBy: number | null;
}

const MAX_PENDING_FRAMES = 4096;
const MAX_ERASE_SAMPLES = 256;
const RTT_WEIGHT = 0.125;

const cellKey = (row: number, col: number): string => `${row}:${col}`;
const samePosition = (a: CellPosition, b: CellPosition): boolean => a.row === b.row && a.col === b.col;

function emptyCounters(): PredictionCounters {
  return {
    keystrokes: 0,
    predicted: 0,
    shown: 0,
    shownAtOnce: 0,
    confirmed: 0,
    mismatches: 0,
    wrong: 0,
    wrongShown: 0,
    erasedAfterMs: [],
    discarded: 0,
  };
}

export class PredictionEngine {
  readonly options: PredictionOptions;
  readonly counters: PredictionCounters = emptyCounters();
  private currentModes: TerminalModes | null = null;
  private smoothedRtt: number | null = null;
  private epoch = 0;
  private confirmedEpoch = -1;
  private live: Prediction[] = [];
  /** Cells typed (predicted) in this epoch: Backspace and ←/→ are predicted only over them. */
  private typed = new Set<string>();
  private lastSeq = 0;
  /** No prediction until output acknowledging this keystroke has been drawn. */
  private syncSeq = 0;
  /** The highest `ack` of the output drawn so far. */
  private ackDrawn = 0;
  /** Output handed over (`output`) and not yet drawn (`drawn`), in order. */
  private pending: { data: string; ack: number | null }[] = [];
  /** Predictable keys typed while the cursor was unknown (before `syncSeq` was acknowledged). */
  private deferred: { keys: PredictedKey[]; seq: number; at: number }[] = [];
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
    if (!this.predicting) this.discardAll();
    this.newEpoch();
  }

  /** Input sent to the server as `{"type":"input","data":…,"seq":…}`. */
  keystroke(data: string, seq: number, now: number): void {
    this.counters.keystrokes += 1;
    this.lastSeq = Math.max(this.lastSeq, seq);
    // Nothing of a secret is kept, not even a guess at it.
    const keys = this.predicting ? parseKeys(data, this.currentModes?.cursor_keys === 'application') : [];
    if (keys.length === 0 || keys.some((key) => key.kind === 'other') || this.live.length + this.deferred.length >= this.options.maxLive) {
      this.unpredicted(seq);
      return;
    }
    if (this.ackDrawn < this.syncSeq) {
      // Where the cursor is becomes known once output acknowledging the last unpredicted key is drawn.
      if (keys.some((key) => key.kind === 'enter')) this.unpredicted(seq);
      else this.deferred.push({ keys, seq, at: now });
      return;
    }
    // The cursor moved since the last confirmation, and not by a predicted key: the program did something of its own.
    if (this.live.length === 0 && this.restCursor && !samePosition(this.restCursor, this.realCursor())) this.newEpoch();
    this.predictKeys(keys, seq, now);
    this.markShown(now, true);
  }

  /**
   * An `output` frame's data and `ack` (null when it has none), before it is handed to the
   * terminal; or, with data '', an `ack` frame (input written, no echo followed).
   */
  output(data: string, ack: number | null, now: number): void {
    this.pending.push({ data, ack });
    if (this.pending.length > MAX_PENDING_FRAMES) this.pending.shift();
    // Nothing to draw and nothing before it waiting to be drawn: it applies now.
    if (data === '' && this.pending.length === 1) this.drawn('', now);
  }

  /** The terminal has drawn (parsed) `data`, handed over earlier with `output`. */
  drawn(data: string, now: number): void {
    const index = this.pending.findIndex((frame) => frame.data === data);
    let ack: number | null = null;
    if (index >= 0) {
      // Frames before it were dropped (a flood): their acks hold too, and so do ack frames right after it.
      let end = index + 1;
      while (end < this.pending.length && this.pending[end].data === '') end += 1;
      for (const frame of this.pending.splice(0, end)) if (frame.ack !== null) ack = Math.max(ack ?? 0, frame.ack);
    }
    if (ack !== null && ack > this.ackDrawn) {
      this.ackDrawn = ack;
      for (const prediction of this.live) if (prediction.seq <= ack && prediction.dueSince === null) prediction.dueSince = now;
    }
    if (this.deferred.length > 0 && this.ackDrawn >= this.syncSeq) {
      // Keys typed meanwhile and not acknowledged yet: predicted from the cursor now drawn (tentatively:
      // an epoch has begun). Those acknowledged are probably drawn already.
      const waiting = this.deferred.filter((keystroke) => keystroke.seq > this.ackDrawn);
      this.deferred = [];
      for (const keystroke of waiting) if (!this.predictKeys(keystroke.keys, keystroke.seq, keystroke.at)) break;
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
      if (prediction.cell) cells.set(cellKey(prediction.cell.row, prediction.cell.col), prediction.cell);
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
    this.typed = new Set();
    this.restCursor = null;
  }

  /** A keystroke whose effect is not predicted: the cursor is unknown until its output is drawn. */
  private unpredicted(seq: number): void {
    const last = this.live[this.live.length - 1];
    if (last && last.followedBy === null) last.followedBy = seq;
    this.syncSeq = seq;
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
    return last && last.followedBy === null ? last.after : this.realCursor();
  }

  private realChar(row: number, col: number): string {
    const cell = this.buffer.getLine(row)?.getCell(col);
    if (!cell) return ' ';
    const chars = cell.getChars();
    return chars === '' ? ' ' : chars;
  }

  private predictedChar(row: number, col: number): string {
    for (let index = this.live.length - 1; index >= 0; index -= 1) {
      const cell = this.live[index].cell;
      if (cell && cell.row === row && cell.col === col) return cell.char;
    }
    return this.realChar(row, col);
  }

  /** Whether the line is blank from `position` to its end (nothing would shift). */
  private blankFrom(position: CellPosition): boolean {
    for (let col = position.col; col < this.screen.cols; col += 1) if (this.predictedChar(position.row, col) !== ' ') return false;
    return true;
  }

  private predictKeys(keys: PredictedKey[], seq: number, madeAt: number): boolean {
    for (const key of keys) {
      if (key.kind === 'enter' || !this.predictKey(key, seq, madeAt)) {
        this.unpredicted(seq);
        return false;
      }
    }
    return true;
  }

  private predictKey(key: PredictedKey, seq: number, now: number): boolean {
    const before = this.predictedCursor();
    const { row, col } = before;
    let kind: Prediction['kind'] = 'move';
    let cell: OverlayCell | null = null;
    let after: CellPosition;
    switch (key.kind) {
      case 'char':
        // Not in the last column: how a program wraps there varies.
        if (col >= this.screen.cols - 1 || !this.blankFrom(before)) return false;
        kind = 'char';
        cell = { row, col, char: key.char };
        after = { row, col: col + 1 };
        this.typed.add(cellKey(row, col));
        break;
      case 'backspace':
        if (col === 0 || !this.typed.has(cellKey(row, col - 1)) || !this.blankFrom(before)) return false;
        kind = 'backspace';
        cell = { row, col: col - 1, char: ' ' };
        after = { row, col: col - 1 };
        this.typed.delete(cellKey(row, col - 1));
        break;
      case 'left':
        if (col === 0 || !this.typed.has(cellKey(row, col - 1))) return false;
        after = { row, col: col - 1 };
        break;
      case 'right':
        if (!this.typed.has(cellKey(row, col))) return false;
        after = { row, col: col + 1 };
        break;
      case 'enter':
      case 'other':
        return false;
    }
    const dueSince = seq <= this.ackDrawn ? now : null;
    this.live.push({ seq, epoch: this.epoch, kind, cell, before, after, madeAt: now, shownAt: null, dueSince, followedBy: null });
    this.counters.predicted += 1;
    return true;
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
    const expected = new Map<string, OverlayCell>();
    const cursor = this.realCursor();
    let upTo = -1;
    for (let index = 0; index < this.live.length; index += 1) {
      const prediction = this.live[index];
      if (prediction.seq > this.ackDrawn) break;
      if (prediction.cell) expected.set(cellKey(prediction.cell.row, prediction.cell.col), prediction.cell);
      let matches = true;
      for (const cell of expected.values()) {
        if (this.realChar(cell.row, cell.col) !== cell.char || this.buffer.getLine(cell.row)?.getCell(cell.col)?.getWidth() === 2) {
          matches = false;
          break;
        }
      }
      if (!matches) continue;
      // A key sent after this one and not predicted may have moved the cursor since.
      const movedSince = prediction.followedBy !== null && prediction.followedBy <= this.ackDrawn;
      if (movedSince || samePosition(prediction.after, cursor)) upTo = index;
    }
    if (upTo < 0) return;
    for (const prediction of this.live.splice(0, upTo + 1)) {
      this.counters.confirmed += 1;
      this.rtt(now - prediction.madeAt);
      if (prediction.kind === 'char' && prediction.cell?.char !== ' ')
        this.confirmedEpoch = Math.max(this.confirmedEpoch, prediction.epoch);
    }
    this.offTrackSince = null;
    this.restCursor = this.live.length === 0 && this.confirmedEpoch === this.epoch ? cursor : null;
  }

  /** The output did not bear the predictions out: erase them all, and start again tentatively. */
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
      this.live = [];
    } else {
      this.discardAll();
    }
    this.offTrackSince = null;
    this.newEpoch();
    this.syncSeq = this.lastSeq;
  }

  private discardAll(): void {
    this.counters.discarded += this.live.length;
    this.live = [];
    this.offTrackSince = null;
  }
}
