import { performance } from 'node:perf_hooks';
import { Injectable, Logger } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { SharedState } from '../shared-state/shared-state.js';
import { ReadinessPolicy } from './runtime-health.js';

interface Judgement {
  up: boolean;
  detail: string;
  failures: number;
  failing: string | null;
}

/**
 * Redis's part of readiness (only when REDIS_URL is set), judged like the runtime's
 * (runtime-health.ts, the same `ReadinessPolicy`): one check at most every 5 s shared by concurrent
 * probes, a check failing after 2 s, not ready after 3 failed checks in a row, ready again at the
 * first success, not ready until a first success. A check is a `PING` on the command connection,
 * and fails too while the subscription to the other replicas' events is down (sign-outs there
 * would go unheard here).
 *
 * Not ready does not mean stopped: while Redis is away this replica serves what does not need it
 * (docs/operations.md#redis-outage); readiness tells the load balancer and the operator.
 */
@Injectable()
export class SharedStateHealthIndicator {
  private readonly logger = new Logger('Health');
  private judgement: Judgement = { up: false, detail: 'not checked yet', failures: 0, failing: null };
  private everUp = false;
  private checkedAt = Number.NEGATIVE_INFINITY;
  private checking: Promise<void> | null = null;

  constructor(
    private readonly shared: SharedState,
    private readonly policy: ReadinessPolicy,
    private readonly indicator: HealthIndicatorService,
  ) {}

  /** False without REDIS_URL: readiness then has no `redis` entry at all. */
  get enabled(): boolean {
    return this.shared.enabled;
  }

  async check(key: string): Promise<HealthIndicatorResult> {
    await this.refresh();
    const { up, detail, failures, failing } = this.judgement;
    const session = this.indicator.check(key);
    const data = { subscribed: this.shared.subscribed, ...(failures > 0 ? { consecutive_failures: failures, failing } : {}) };
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
    let result: { ok: boolean; detail: string };
    try {
      const version = await this.shared.ping(this.policy.timeoutMs);
      result = this.shared.subscribed
        ? { ok: true, detail: version }
        : { ok: false, detail: "the subscription to the other replicas' events is down" };
    } catch (error) {
      result = { ok: false, detail: `Redis cannot be reached: ${error instanceof Error ? error.message : String(error)}` };
    }
    this.judge(result);
  }

  private judge(result: { ok: boolean; detail: string }): void {
    const before = this.judgement;
    if (result.ok) {
      this.everUp = true;
      this.judgement = { up: true, detail: result.detail, failures: 0, failing: null };
      if (!before.up && before.failures > 0) this.logger.log(`Redis is ready again: ${result.detail}`);
      return;
    }
    const failures = before.failures + 1;
    const up = this.everUp && before.up && failures < this.policy.failureThreshold;
    this.judgement = up
      ? { up: true, detail: before.detail, failures, failing: result.detail }
      : { up: false, detail: result.detail, failures, failing: result.detail };
    if (!up && (before.up || failures === 1)) this.logger.warn(`Redis is not ready: ${result.detail}`);
  }
}
