import { Logger } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { NoSharedState, SharedState } from '../shared-state/shared-state.js';
import { ReadinessPolicy } from './readiness-judge.js';
import { SharedStateHealthIndicator } from './shared-state-health.js';

/** A Redis whose pings answer what the test queues (one answer per check), with a subscription state the test sets. */
class ScriptedRedis extends SharedState {
  readonly enabled = true;
  readonly answers: ('pong' | 'refused')[] = [];
  subscribedNow = true;
  readonly available = true;
  readonly client = null;

  get subscribed(): boolean {
    return this.subscribedNow;
  }

  ping(): Promise<string> {
    const answer = this.answers.shift();
    if (answer === undefined) throw new Error('unexpected ping');
    return answer === 'pong' ? Promise.resolve('Redis 7.0.15') : Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6379'));
  }

  channel(name: string): string {
    return name;
  }

  publish(): Promise<void> {
    throw new Error('unexpected publish');
  }

  subscribe(): void {}
  onSubscribedChange(): void {}
  onAvailable(): void {}
}

describe('SharedStateHealthIndicator', () => {
  const policy = new ReadinessPolicy({ cacheMs: 0, timeoutMs: 50, failureThreshold: 3 });
  beforeAll(() => Logger.overrideLogger(false));
  afterAll(() => Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose', 'fatal']));

  const indicatorOf = (redis: SharedState): SharedStateHealthIndicator =>
    new SharedStateHealthIndicator(redis, policy, new HealthIndicatorService());

  it('is down until the first success, then flips only after three failures in a row, and back at once', async () => {
    const redis = new ScriptedRedis();
    const indicator = indicatorOf(redis);
    redis.answers.push('refused', 'pong', 'refused', 'refused', 'refused', 'pong');
    expect((await indicator.check('redis')).redis).toMatchObject({
      status: 'down',
      message: 'Redis cannot be reached: connect ECONNREFUSED 127.0.0.1:6379',
    });
    expect((await indicator.check('redis')).redis).toEqual({ status: 'up', detail: 'Redis 7.0.15', subscribed: true });
    expect((await indicator.check('redis')).redis).toMatchObject({ status: 'up', consecutive_failures: 1 });
    expect((await indicator.check('redis')).redis).toMatchObject({ status: 'up', consecutive_failures: 2 });
    expect((await indicator.check('redis')).redis).toMatchObject({ status: 'down', consecutive_failures: 3 });
    expect((await indicator.check('redis')).redis).toMatchObject({ status: 'up' });
  });

  it('fails a check while the subscription to the other replicas is down, even if Redis answers', async () => {
    const redis = new ScriptedRedis();
    const indicator = indicatorOf(redis);
    redis.subscribedNow = false;
    redis.answers.push('pong');
    expect((await indicator.check('redis')).redis).toMatchObject({
      status: 'down',
      message: "the subscription to the other replicas' events is down",
      subscribed: false,
    });
  });

  it('has nothing to check without Redis', () => {
    expect(indicatorOf(new NoSharedState()).enabled).toBe(false);
  });
});
