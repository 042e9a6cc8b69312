import { getConnectionToken } from '@nestjs/mongoose';
import type { Connection } from 'mongoose';
import { createAccountsApp, type AccountsApp, type TestAccount } from '../support/accounts.js';
import { eventually } from '../support/eventually.js';
import { startRedis, testRedisPrefix, type TestRedis } from '../support/redis.js';

/** Counts what the application reads from the database, by collection (Mongoose's debug hook on its connection). */
class DatabaseReads {
  private readonly counts = new Map<string, number>();

  constructor(app: AccountsApp) {
    const connection = app.app.get<Connection>(getConnectionToken());
    connection.set('debug', (collection: string, method: string) => {
      if (!/^find|^count|^aggregate/.test(method)) return;
      this.counts.set(collection, (this.counts.get(collection) ?? 0) + 1);
    });
  }

  /** Reads of the sessions and users collections while `work` runs. */
  async during(work: () => Promise<void>): Promise<{ sessions: number; users: number }> {
    this.counts.clear();
    await work();
    return { sessions: this.counts.get('sessions') ?? 0, users: this.counts.get('users') ?? 0 };
  }
}

const REQUESTS = 20;

describe('authenticated requests read the session and the user once, not on every request', () => {
  /** REQUESTS authenticated GET /auth/me, each answered 200. */
  const authenticatedRequests = (t: AccountsApp, account: TestAccount) => async (): Promise<void> => {
    for (let i = 0; i < REQUESTS; i += 1) {
      const res = await t.request('GET', '/api/v1/auth/me', { token: account.tokens.access_token });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
  };

  describe('one process, without Redis', () => {
    let t: AccountsApp;
    let reads: DatabaseReads;
    beforeAll(async () => {
      t = await createAccountsApp();
      reads = new DatabaseReads(t);
    });
    afterAll(() => t.close());

    it('reads nothing once warm, and sees every change at once (invalidated in the process)', async () => {
      const account = await t.register();
      // Warm-up: the first request reads both.
      expect(await reads.during(authenticatedRequests(t, account))).toEqual({ sessions: 1, users: 1 });
      expect(await reads.during(authenticatedRequests(t, account))).toEqual({ sessions: 0, users: 0 });

      const renamed = await t.json('PUT', '/api/v1/users/me', { token: account.tokens.access_token, body: { full_name: 'Ada Cached' } });
      expect(renamed.status).toBe(200);
      const me = await t.json<{ full_name: string }>('GET', '/api/v1/auth/me', { token: account.tokens.access_token });
      expect(me.body.full_name).toBe('Ada Cached');

      const signedOut = await t.request('POST', '/api/v1/auth/logout', { token: account.tokens.access_token });
      expect(signedOut.status).toBe(200);
      const refused = await t.json<{ code: string }>('GET', '/api/v1/auth/me', { token: account.tokens.access_token });
      expect(refused).toMatchObject({ status: 401, body: { code: 'session_revoked' } });
    });
  });

  describe('replicas sharing a Redis', () => {
    let redis: TestRedis;
    let t: AccountsApp;
    let reads: DatabaseReads;
    beforeAll(async () => {
      redis = await startRedis();
      t = await createAccountsApp({ env: { REDIS_URL: redis.url, REDIS_KEY_PREFIX: testRedisPrefix('auth-cache') } });
      reads = new DatabaseReads(t);
    });
    afterAll(async () => {
      await t.close();
      await redis.close();
    });

    it('reads nothing once warm while Redis is there, reads both on every request while it is not, and caches again once it is back', async () => {
      const account = await t.register();
      expect(await reads.during(authenticatedRequests(t, account))).toEqual({ sessions: 1, users: 1 });
      expect(await reads.during(authenticatedRequests(t, account))).toEqual({ sessions: 0, users: 0 });

      await redis.stop();
      // Invalidations of other replicas could be missed now: every request reads the database again.
      await eventually(async () =>
        expect(await reads.during(authenticatedRequests(t, account))).toEqual({ sessions: REQUESTS, users: REQUESTS }),
      );

      await redis.start();
      await eventually(async () => {
        await reads.during(authenticatedRequests(t, account));
        expect(await reads.during(authenticatedRequests(t, account))).toEqual({ sessions: 0, users: 0 });
      }, 15_000);
    });
  });
});
