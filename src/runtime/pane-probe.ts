import { Logger } from '@nestjs/common';
import type { ExecSession, ExitStatus } from './runtime.provider.js';
import { type PaneModes, parsePaneProbeAnswer } from './pane-modes.js';

/** How long one probe may take: then it answers null (its late answer is dropped when it comes). */
export const PANE_PROBE_TIMEOUT_MS = 2_000;
/** Probes waiting for an answer (late ones included) beyond which the helper is taken for stuck and ended. */
export const PANE_PROBE_MAX_WAITING = 4;
/** After the helper failed to start or ended, how long before a probe starts another one. */
export const PANE_PROBE_RESTART_MS = 5_000;
/** An answer is one short line; more than this without a newline is not the probe talking. */
const MAX_LINE = 4_096;

export interface PaneProbeOptions {
  timeoutMs?: number;
  restartMs?: number;
  /** Names the helper in the log (the session's name). */
  label?: string;
}

/**
 * The pane-modes helper of one terminal attachment: a long-lived process inside the environment
 * (PANE_PROBE_SCRIPT, started through the runtime's exec like the tmux client, so as the
 * environment's user in its sandbox or container), asked one line per probe and answering one line.
 * Started at the first probe, ended with the attachment. A probe never rejects: it answers null when
 * the modes cannot be read (the helper could not start or died: the next probe after
 * PANE_PROBE_RESTART_MS starts a new one) or not in time (PANE_PROBE_TIMEOUT_MS: a busy machine; the
 * helper is kept, and ended only when PANE_PROBE_MAX_WAITING probes wait for it). Probes may
 * overlap: answers come in order.
 */
export class PaneProbe {
  /** The helper answering now. */
  private current: ExecSession | null = null;
  /** The helper being started. */
  private starting: Promise<ExecSession | null> | null = null;
  /** Settles each probe waiting for an answer, in order (once: a late answer, after the timeout, settles nothing). */
  private readonly waiting: ((modes: PaneModes | null) => void)[] = [];
  private buffered = '';
  private closed = false;
  private failedAt = Number.NEGATIVE_INFINITY;
  private readonly timeoutMs: number;
  private readonly restartMs: number;
  private readonly label: string;
  private readonly logger = new Logger('PaneProbe');

  constructor(
    /** Starts the helper (the runtime's exec of paneProbeCommand). */
    private readonly start: () => Promise<ExecSession>,
    options: PaneProbeOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? PANE_PROBE_TIMEOUT_MS;
    this.restartMs = options.restartMs ?? PANE_PROBE_RESTART_MS;
    this.label = options.label ?? 'a terminal';
  }

  async probe(): Promise<PaneModes | null> {
    let helper = await this.running();
    if (helper !== null && this.waiting.length >= PANE_PROBE_MAX_WAITING) {
      this.fail(helper);
      helper = await this.running();
    }
    if (helper === null || this.closed) return null;
    const current = helper;
    return new Promise<PaneModes | null>((resolve) => {
      let settled = false;
      const settle = (modes: PaneModes | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(modes);
      };
      const timer = setTimeout(() => settle(null), this.timeoutMs);
      this.waiting.push(settle);
      current.stream.write('?\n');
    });
  }

  /** Ends the helper; pending and later probes answer null. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.current !== null) this.fail(this.current);
  }

  private running(): Promise<ExecSession | null> {
    if (this.closed) return Promise.resolve(null);
    if (this.current !== null) return Promise.resolve(this.current);
    if (this.starting !== null) return this.starting;
    if (performance.now() - this.failedAt < this.restartMs) return Promise.resolve(null);
    this.starting = this.start().then(
      (helper) => {
        this.starting = null;
        return this.adopt(helper);
      },
      () => {
        this.starting = null;
        this.failedAt = performance.now();
        return null;
      },
    );
    return this.starting;
  }

  private adopt(helper: ExecSession): ExecSession | null {
    if (this.closed) {
      void helper.kill();
      return null;
    }
    this.current = helper;
    this.buffered = '';
    helper.stream.on('data', (chunk: Buffer | string) => this.receive(helper, chunk.toString()));
    helper.stream.on('error', () => this.fail(helper));
    void helper.exit.then((status) => this.ended(helper, status));
    return helper;
  }

  private receive(helper: ExecSession, text: string): void {
    if (this.current !== helper) return;
    this.buffered += text;
    let newline = this.buffered.indexOf('\n');
    while (newline >= 0) {
      const line = this.buffered.slice(0, newline);
      this.buffered = this.buffered.slice(newline + 1);
      this.waiting.shift()?.(parsePaneProbeAnswer(line));
      newline = this.buffered.indexOf('\n');
    }
    if (this.buffered.length > MAX_LINE) this.fail(helper);
  }

  /** The helper exited: by our hand (closed, stuck), or by itself, which it should not (logged). */
  private ended(helper: ExecSession, status: ExitStatus): void {
    if (this.current === helper && !this.closed) {
      this.logger.warn(
        `The pane-modes helper of ${this.label} ended (${status.signal ?? `exit code ${status.code}`}): its probes answer null until another starts`,
      );
    }
    this.fail(helper);
  }

  /** The helper is stuck, gone or unwanted: end it, answer every waiting probe with null. */
  private fail(helper: ExecSession): void {
    if (this.current !== helper) return;
    this.current = null;
    this.failedAt = performance.now();
    void helper.kill();
    for (const settle of this.waiting.splice(0)) settle(null);
  }
}
