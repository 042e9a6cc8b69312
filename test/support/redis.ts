import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';

export { startRedis, type TestRedis } from './redis-server.js';

/** URL of the run's Redis (started by test/support/global-setup.ts). */
export function testRedisUrl(): string {
  const url = inject('redisUrl');
  if (!url) throw new Error('No test Redis: run the tests through vitest with test/support/global-setup.ts as globalSetup');
  return url;
}

/** A key prefix of its own for one test file (or one cluster): files sharing the run's Redis never see each other's keys or events. */
export function testRedisPrefix(name: string): string {
  return `t:${name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 40)}:${randomBytes(4).toString('hex')}:`;
}
