import { performance } from 'node:perf_hooks';
import type { Logger } from '@nestjs/common';

/**
 * How `/health/ready` judges a dependency it cannot do without (the runtime; Redis when
 * REDIS_URL is set; docs/operations.md#readiness). Bound as a value in HealthModule; a test binds
 * other figures to see the whole cycle in seconds.
 */
export class ReadinessPolicy {
  /** A check's result is reused this long: probes from several sources, or a fast prober, cost one check. */
  readonly cacheMs: number = 5_000;
  /** A check that has not answered within this long fails ("no answer within 2 s"). */
  readonly timeoutMs: number = 2_000;
  /** Once the dependency was up, it is reported down only after this many failed checks in a row. */
  readonly failureThreshold: number = 3;

  constructor(values: Partial<Pick<ReadinessPolicy, 'cacheMs' | 'timeoutMs' | 'failureThreshold'>> = {}) {
    Object.assign(this, values);
  }
}

/** One check's outcome: `detail` says what was seen (a version, or why it failed). */
export interface CheckResult {
  ok: boolean;
  detail: string;
}

export interface Judgement {
  up: boolean;
  /** The last successful check's detail while up, the failure's reason while down. */
  detail: string;
  /** Failed checks in a row (0 after a success). */
  failures: number;
  /** The reason of the latest failed check, while failures > 0. */
  failing: string | null;
}

/**
 * Readiness of one dependency with hysteresis, so that one slow or failed call does not flip it:
 *
 * - one check at most every `cacheMs`; concurrent probes share it;
 * - down until the first successful check (a fresh process has not reached it yet);
 * - then up until `failureThreshold` checks in a row failed (with the defaults, a failure lasting
 *   at least 10 s: three checks 5 s apart), and up again at the first success.
 *
 * The check itself enforces `timeoutMs`. Time is the monotonic clock (performance.now): this is a
 * cache, not a domain time.
 */
export class ReadinessJudge {
  private judgement: Judgement = { up: false, detail: 'not checked yet', failures: 0, failing: null };
  private everUp = false;
  private checkedAt = Number.NEGATIVE_INFINITY;
  private checking: Promise<void> | null = null;

  /** `subject` names the dependency in log lines ("The runtime", "Redis"). */
  constructor(
    private readonly subject: string,
    private readonly policy: ReadinessPolicy,
    private readonly logger: Logger,
    private readonly check: () => Promise<CheckResult>,
  ) {}

  /** The judgement after a fresh check, or the cached one within `cacheMs`. */
  async current(): Promise<Judgement> {
    if (performance.now() - this.checkedAt >= this.policy.cacheMs) {
      this.checking ??= this.check()
        .catch((error: unknown): CheckResult => ({ ok: false, detail: error instanceof Error ? error.message : String(error) }))
        .then((result) => this.judge(result))
        .finally(() => {
          this.checkedAt = performance.now();
          this.checking = null;
        });
      await this.checking;
    }
    return this.judgement;
  }

  private judge(result: CheckResult): void {
    const before = this.judgement;
    if (result.ok) {
      this.everUp = true;
      this.judgement = { up: true, detail: result.detail, failures: 0, failing: null };
      if (!before.up && before.failures > 0) this.logger.log(`${this.subject} is ready again: ${result.detail}`);
      return;
    }
    const failures = before.failures + 1;
    const up = this.everUp && before.up && failures < this.policy.failureThreshold;
    this.judgement = up
      ? { up: true, detail: before.detail, failures, failing: result.detail }
      : { up: false, detail: result.detail, failures, failing: result.detail };
    if (up) {
      this.logger.warn(
        `A readiness check of ${this.subject.toLowerCase()} failed (${failures} of ${this.policy.failureThreshold} in a row before not ready): ${result.detail}`,
      );
    } else if (before.up || failures === 1) {
      this.logger.warn(`${this.subject} is not ready: ${result.detail}`);
    }
  }
}
