import { setTimeout as delay } from 'node:timers/promises';
import { Injectable, Logger } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { RuntimeProvider, type RuntimeReadiness } from '../../runtime/runtime.provider.js';
import { type CheckResult, ReadinessJudge, ReadinessPolicy } from './readiness-judge.js';

export { ReadinessPolicy } from './readiness-judge.js';

/**
 * The runtime's part of readiness (`RuntimeProvider.ready`: the Kubernetes API reachable, or tmux
 * present for the local runtime), judged with hysteresis (readiness-judge.ts) so that one slow or
 * failed call does not flip it; a check slower than `timeoutMs` fails.
 */
@Injectable()
export class RuntimeHealthIndicator {
  private readonly judge: ReadinessJudge;

  constructor(
    private readonly runtime: RuntimeProvider,
    private readonly policy: ReadinessPolicy,
    private readonly indicator: HealthIndicatorService,
  ) {
    this.judge = new ReadinessJudge('The runtime', policy, new Logger('Health'), () => this.checkOnce());
  }

  /** The terminus indicator under `key`: up or down as judged, with what was seen. */
  async check(key: string): Promise<HealthIndicatorResult> {
    const { up, detail, failures, failing } = await this.judge.current();
    const session = this.indicator.check(key);
    const data = { runtime: this.runtime.kind, ...(failures > 0 ? { consecutive_failures: failures, failing } : {}) };
    return up ? session.up({ detail, ...data }) : session.down({ message: detail, ...data });
  }

  private async checkOnce(): Promise<CheckResult> {
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
    return { ok: result.ready, detail: result.detail };
  }
}
