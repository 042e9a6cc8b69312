import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { Injectable, Logger } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { RuntimeProvider, type RuntimeReadiness } from '../../runtime/runtime.provider.js';

/**
 * How `/health/ready` judges the runtime (docs/operations.md#readiness). Bound as a value in
 * HealthModule; a test binds other figures to see the whole cycle in seconds.
 */
export class ReadinessPolicy {
  /** A check's result is reused this long: probes from several sources, or a fast prober, cost one check. */
  readonly cacheMs: number = 5_000;
  /** A check that has not answered within this long fails ("no answer within 2 s"). */
  readonly timeoutMs: number = 2_000;
  /** Once the runtime was up, it is reported down only after this many failed checks in a row. */
  readonly failureThreshold: number = 3;

  constructor(values: Partial<Pick<ReadinessPolicy, 'cacheMs' | 'timeoutMs' | 'failureThreshold'>> = {}) {
    Object.assign(this, values);
  }
}

interface Judgement {
  up: boolean;
  /** The last successful check's detail while up, the failure's reason while down. */
  detail: string;
  /** Failed checks in a row (0 after a success). */
  failures: number;
  /** The reason of the latest failed check, while failures > 0. */
  failing: string | null;
}

/**
 * The runtime's part of readiness, with hysteresis so that one slow or failed call does not flip it:
 *
 * - one check (`RuntimeProvider.ready`) at most every `cacheMs`; concurrent probes share it;
 * - a check slower than `timeoutMs` fails;
 * - down until the first successful check (a fresh process has not reached its runtime yet);
 * - then up until `failureThreshold` checks in a row failed (with the defaults, a failure lasting
 *   at least 10 s: three checks 5 s apart), and up again at the first success.
 *
 * Time is the monotonic clock (performance.now): this is a cache, not a domain time.
 */
@Injectable()
export class RuntimeHealthIndicator {
  private readonly logger = new Logger('Health');
  private judgement: Judgement = { up: false, detail: 'not checked yet', failures: 0, failing: null };
  private everUp = false;
  private checkedAt = Number.NEGATIVE_INFINITY;
  private checking: Promise<void> | null = null;

  constructor(
    private readonly runtime: RuntimeProvider,
    private readonly policy: ReadinessPolicy,
    private readonly indicator: HealthIndicatorService,
  ) {}

  /** The terminus indicator under `key`: up or down as judged, with what was seen. */
  async check(key: string): Promise<HealthIndicatorResult> {
    await this.refresh();
    const { up, detail, failures, failing } = this.judgement;
    const session = this.indicator.check(key);
    const data = { runtime: this.runtime.kind, ...(failures > 0 ? { consecutive_failures: failures, failing } : {}) };
    return up ? session.up({ detail, ...data }) : session.down({ message: detail, ...data });
  }

  private refresh(): Promise<void> {
    if (performance.now() - this.checkedAt < this.policy.cacheMs) return Promise.resolve();
    this.checking ??= this.checkOnce().finally(() => {
      this.checkedAt = performance.now();
      this.checking = null;
    });
    return this.checking;
  }

  private async checkOnce(): Promise<void> {
    const { timeoutMs } = this.policy;
    const controller = new AbortController();
    const late = delay(timeoutMs + 250, null, { signal: controller.signal }).then(
      (): RuntimeReadiness => ({ ready: false, detail: `no answer within ${timeoutMs / 1000} s` }),
      (): RuntimeReadiness => ({ ready: false, detail: 'cancelled' }),
    );
    const result = await Promise.race([
      this.runtime
        .ready(timeoutMs)
        .catch((error: unknown) => ({ ready: false, detail: error instanceof Error ? error.message : String(error) })),
      late,
    ]);
    controller.abort();
    this.judge(result);
  }

  private judge(result: RuntimeReadiness): void {
    const before = this.judgement;
    if (result.ready) {
      this.everUp = true;
      this.judgement = { up: true, detail: result.detail, failures: 0, failing: null };
      if (!before.up && before.failures > 0) this.logger.log(`The runtime is ready again: ${result.detail}`);
      return;
    }
    const failures = before.failures + 1;
    const up = this.everUp && before.up && failures < this.policy.failureThreshold;
    this.judgement = up
      ? { up: true, detail: before.detail, failures, failing: result.detail }
      : { up: false, detail: result.detail, failures, failing: result.detail };
    if (up) {
      this.logger.warn(
        `A runtime readiness check failed (${failures} of ${this.policy.failureThreshold} in a row before not ready): ${result.detail}`,
      );
    } else if (before.up || failures === 1) {
      this.logger.warn(`The runtime is not ready: ${result.detail}`);
    }
  }
}
