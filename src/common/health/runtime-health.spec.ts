import { HealthIndicatorService } from '@nestjs/terminus';
import type { RuntimeProvider, RuntimeReadiness } from '../../runtime/runtime.provider.js';
import { ReadinessPolicy, RuntimeHealthIndicator } from './runtime-health.js';

/** A runtime whose readiness checks answer what the test queues (one answer per check). */
function runtimeAnswering(): { runtime: RuntimeProvider; answers: (RuntimeReadiness | 'hang')[]; checks: () => number } {
  const answers: (RuntimeReadiness | 'hang')[] = [];
  let checks = 0;
  const runtime = {
    kind: 'kubernetes',
    ready: (): Promise<RuntimeReadiness> => {
      checks += 1;
      const answer = answers.shift();
      if (answer === undefined) throw new Error('unexpected readiness check');
      return answer === 'hang' ? new Promise(() => undefined) : Promise.resolve(answer);
    },
  } as unknown as RuntimeProvider;
  return { runtime, answers, checks: () => checks };
}

const up: RuntimeReadiness = { ready: true, detail: 'Kubernetes API v1.36.0' };
const down: RuntimeReadiness = { ready: false, detail: 'the Kubernetes API did not answer: connect ECONNREFUSED' };

describe('RuntimeHealthIndicator', () => {
  const policy = new ReadinessPolicy({ cacheMs: 0, timeoutMs: 50, failureThreshold: 3 });
  const status = async (indicator: RuntimeHealthIndicator): Promise<string> => (await indicator.check('runtime')).runtime.status;

  it('is down until the first success, then flips only after three failures in a row, and back at once', async () => {
    const { runtime, answers } = runtimeAnswering();
    const indicator = new RuntimeHealthIndicator(runtime, policy, new HealthIndicatorService());
    answers.push(down, up, down, down, down, up);
    expect(await status(indicator)).toBe('down');
    expect(await status(indicator)).toBe('up');
    const first = await indicator.check('runtime');
    expect(first.runtime).toMatchObject({ status: 'up', detail: up.detail, consecutive_failures: 1, failing: down.detail });
    expect(await status(indicator)).toBe('up');
    expect((await indicator.check('runtime')).runtime).toMatchObject({ status: 'down', message: down.detail, consecutive_failures: 3 });
    expect((await indicator.check('runtime')).runtime).toEqual({ status: 'up', detail: up.detail, runtime: 'kubernetes' });
  });

  it('counts a check that does not answer in time as a failure', async () => {
    const { runtime, answers } = runtimeAnswering();
    const indicator = new RuntimeHealthIndicator(runtime, policy, new HealthIndicatorService());
    answers.push(up, 'hang', 'hang', 'hang');
    expect(await status(indicator)).toBe('up');
    expect((await indicator.check('runtime')).runtime).toMatchObject({ status: 'up', failing: 'no answer within 0.05 s' });
    expect(await status(indicator)).toBe('up');
    expect((await indicator.check('runtime')).runtime).toMatchObject({ status: 'down', message: 'no answer within 0.05 s' });
  });

  it('reuses a result for cacheMs, and probes that come together share one check', async () => {
    const { runtime, answers, checks } = runtimeAnswering();
    const indicator = new RuntimeHealthIndicator(runtime, new ReadinessPolicy({ cacheMs: 60_000 }), new HealthIndicatorService());
    answers.push(up);
    const results = await Promise.all([indicator.check('runtime'), indicator.check('runtime'), indicator.check('runtime')]);
    expect(results.map((result) => result.runtime.status)).toEqual(['up', 'up', 'up']);
    expect(await status(indicator)).toBe('up');
    expect(checks()).toBe(1);
  });
});
