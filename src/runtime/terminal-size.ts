import type { TerminalSize } from './runtime.provider.js';

/**
 * Terminal sizes, the same for every runtime: what a TTY starts with when nobody said, and the
 * range every size is clamped to before it reaches a PTY or a Kubernetes resize channel.
 */

/** The size of a TTY opened without one (`exec(…, {tty: true})` without cols and rows). */
export const DEFAULT_TERMINAL_SIZE: Readonly<TerminalSize> = Object.freeze({ cols: 80, rows: 24 });

/** Sizes are clamped to 1…MAX_TERMINAL_SIZE. */
export const MAX_TERMINAL_SIZE = 4096;

/** `value` rounded and clamped to 1…MAX_TERMINAL_SIZE; `fallback` when it is missing or not a finite number. */
export function clampTerminalSize(value: number | undefined, fallback: number): number {
  if (value === undefined || !Number.isFinite(value)) return fallback;
  return Math.min(MAX_TERMINAL_SIZE, Math.max(1, Math.round(value)));
}

/** Both dimensions clamped, each falling back to DEFAULT_TERMINAL_SIZE's. */
export function clampTerminal(cols: number | undefined, rows: number | undefined): TerminalSize {
  return { cols: clampTerminalSize(cols, DEFAULT_TERMINAL_SIZE.cols), rows: clampTerminalSize(rows, DEFAULT_TERMINAL_SIZE.rows) };
}
