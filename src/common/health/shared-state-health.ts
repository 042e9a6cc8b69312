import { Injectable, Logger } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { SharedState } from '../shared-state/shared-state.js';
import { type CheckResult, ReadinessJudge, ReadinessPolicy } from './readiness-judge.js';

/**
 * Redis's part of readiness (only when REDIS_URL is set), judged like the runtime's (the same
 * `ReadinessPolicy` and hysteresis, readiness-judge.ts). A check is a `PING` on the command
 * connection, and fails too while the subscription to the other replicas' events is down
 * (sign-outs there would go unheard here).
 *
 * Not ready does not mean stopped: while Redis is away this replica serves what does not need it
 * (docs/operations.md#redis-outage); readiness tells the load balancer and the operator.
 */
@Injectable()
export class SharedStateHealthIndicator {
  private readonly judge: ReadinessJudge;

  constructor(
    private readonly shared: SharedState,
    private readonly policy: ReadinessPolicy,
    private readonly indicator: HealthIndicatorService,
  ) {
    this.judge = new ReadinessJudge('Redis', policy, new Logger('Health'), () => this.checkOnce());
  }

  /** False without REDIS_URL: readiness then has no `redis` entry at all. */
  get enabled(): boolean {
    return this.shared.enabled;
  }

  async check(key: string): Promise<HealthIndicatorResult> {
    const { up, detail, failures, failing } = await this.judge.current();
    const session = this.indicator.check(key);
    const data = { subscribed: this.shared.subscribed, ...(failures > 0 ? { consecutive_failures: failures, failing } : {}) };
    return up ? session.up({ detail, ...data }) : session.down({ message: detail, ...data });
  }

  private async checkOnce(): Promise<CheckResult> {
    try {
      const version = await this.shared.ping(this.policy.timeoutMs);
      return this.shared.subscribed
        ? { ok: true, detail: version }
        : { ok: false, detail: "the subscription to the other replicas' events is down" };
    } catch (error) {
      return { ok: false, detail: `Redis cannot be reached: ${error instanceof Error ? error.message : String(error)}` };
    }
  }
}
