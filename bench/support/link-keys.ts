import type { ConsoleClient, PredictionCounters } from './link-console.js';
import type { Segment } from './link-trace.js';

/**
 * Perceived latency per keystroke (bench/suites/link.ts, part 1): the time from the key to the
 * moment its effect is on screen, either as the console's prediction or as the server's echo.
 *
 * - shown at once: the engine drew a prediction at the keystroke itself (`shownAtOnce` grew);
 * - shown later: a tentative prediction drawn when its epoch was confirmed (`shown` grew at
 *   another call); the growth is given to the oldest keys still waiting that the engine predicted,
 *   in order, which is the order the engine draws them in;
 * - otherwise: when output acknowledging it (`ack` ≥ its seq) was parsed by the terminal, or an
 *   `ack` message came (input written, nothing echoed: a password, a command key);
 * - a key whose drawn prediction was erased by a mismatch counts from the key to the mismatch
 *   (when the real screen shows), whatever was drawn before.
 *
 * A key is final once its effect was drawn and a grace (the engine's: max(30 ms, RTT / 2)) has
 * passed without a mismatch.
 */

export interface KeyRecord {
  seq: number;
  data: string;
  segment: Segment;
  sentAt: number;
  predicted: boolean;
  shownAt: number | null;
  effectAt: number | null;
  wrongAt: number | null;
  final: boolean;
}

const FINAL_AFTER_MS = 10;

export class KeyTracker {
  readonly keys: KeyRecord[] = [];
  /** Overlay cells drawn while a password was typed (the largest overlay seen), and how many checks saw any. */
  secretCells = 0;
  secretChecksWithCells = 0;
  ackDrawn = 0;
  private open: KeyRecord[] = [];
  private shown = 0;
  private mismatches = 0;
  private readonly frames: { data: string; ack: number | null }[] = [];
  private segment: Segment | null = null;
  private readonly stop: () => void;

  constructor(private readonly client: ConsoleClient) {
    this.shown = client.engine.counters.shown;
    this.mismatches = client.engine.counters.mismatches;
    this.stop = client.listen({
      output: (data, _offset, ack) => void this.frames.push({ data, ack }),
      drawn: (data, at) => this.drawn(data, at),
      ack: (seq, at) => this.effect(seq, at),
      cleared: () => void (this.frames.length = 0),
      engine: (at) => this.engineChanged(at),
    });
  }

  /** Sends one key as the console does and starts timing it; returns its seq. */
  type(data: string, segment: Segment): number | null {
    this.segment = segment;
    const counters: PredictionCounters = this.client.engine.counters;
    const predictedBefore = counters.predicted;
    const atOnceBefore = counters.shownAtOnce;
    const sentAt = performance.now();
    const seq = this.client.type(data);
    if (seq === null) return null;
    const record: KeyRecord = {
      seq,
      data,
      segment,
      sentAt,
      predicted: counters.predicted > predictedBefore,
      shownAt: counters.shownAtOnce > atOnceBefore ? sentAt : null,
      effectAt: null,
      wrongAt: null,
      final: false,
    };
    if (seq <= this.ackDrawn) record.effectAt = sentAt;
    this.keys.push(record);
    this.open.push(record);
    this.shown = counters.shown;
    this.check(performance.now());
    return seq;
  }

  /** Closes every key (the end of the run); keys never drawn keep `effectAt` null. */
  finish(): void {
    this.stop();
    for (const key of this.open) key.final = true;
    this.open = [];
  }

  /** Perceived latency of a key, null when its effect never came. */
  static latency(key: KeyRecord): number | null {
    if (key.wrongAt !== null) return key.wrongAt - key.sentAt;
    const first = Math.min(key.shownAt ?? Infinity, key.effectAt ?? Infinity);
    return Number.isFinite(first) ? first - key.sentAt : null;
  }

  private drawn(data: string, at: number): void {
    const index = this.frames.findIndex((frame) => frame.data === data);
    if (index < 0) return;
    for (const frame of this.frames.splice(0, index + 1)) if (frame.ack !== null) this.effect(frame.ack, at);
  }

  private effect(ack: number, at: number): void {
    if (ack <= this.ackDrawn) return;
    this.ackDrawn = ack;
    for (const key of this.open) if (key.seq <= ack && key.effectAt === null) key.effectAt = at;
    this.check(at);
  }

  private engineChanged(at: number): void {
    this.check(at);
    const counters = this.client.engine.counters;
    if (counters.mismatches > this.mismatches) {
      this.mismatches = counters.mismatches;
      for (const key of this.open) if (key.shownAt !== null && key.wrongAt === null) key.wrongAt = at;
    }
    let newlyShown = counters.shown - this.shown;
    this.shown = counters.shown;
    for (const key of this.open) {
      if (newlyShown <= 0) break;
      if (!key.predicted || key.shownAt !== null || key.effectAt !== null) continue;
      key.shownAt = at;
      newlyShown -= 1;
    }
    if (this.segment === 'password') {
      const cells = this.client.engine.overlay().cells.length;
      this.secretCells = Math.max(this.secretCells, cells);
      if (cells > 0) this.secretChecksWithCells += 1;
    }
  }

  private check(now: number): void {
    const grace = Math.max(30, (this.client.engine.rttMs ?? 0) / 2) + FINAL_AFTER_MS;
    this.open = this.open.filter((key) => {
      key.final = key.effectAt !== null && now >= key.effectAt + grace;
      return !key.final;
    });
  }
}
