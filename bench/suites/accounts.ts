import autocannon from 'autocannon';
import { load, LoadResult } from '../support/load.js';
import { startServer } from '../support/server.js';
import type { BenchContext } from '../context.js';

const ACCOUNTS = 120;
const PASSWORD = 'Bench1Password';

interface Tokens {
  access_token: string;
}

const ipFor = (i: number): string => `10.77.${Math.floor(i / 250)}.${(i % 250) + 1}`;

async function post<T>(url: string, body: unknown, ip: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as T };
}

/** The server's own event-loop delay p99 since the previous scrape (prom-client resets it on each). */
async function eventLoopP99Ms(baseUrl: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const match = /^nodejs_eventloop_lag_p99_seconds (\S+)$/m.exec(text);
  return match?.[1] ? Math.round(Number(match[1]) * 1000 * 100) / 100 : Number.NaN;
}

/**
 * Sign-in throughput (argon2id-bound: each login verifies one hash on libuv's thread pool) with
 * the server's event-loop delay during the run, and authenticated GET /auth/me (JWT + session +
 * user lookups per request).
 */
export async function accounts(ctx: BenchContext): Promise<Record<string, unknown>> {
  const server = await startServer(ctx.mongodbUri, 'bench_accounts', ctx.port, { TRUSTED_PROXIES: 'loopback' });
  try {
    const usernames: string[] = [];
    let token = '';
    for (let i = 0; i < ACCOUNTS; i += 1) {
      const username = `bench_${i}`;
      const res = await post<Tokens>(
        `${server.baseUrl}/api/v1/auth/register`,
        { username, email: `${username}@bench.example`, password: PASSWORD },
        ipFor(i),
      );
      if (res.status !== 201) throw new Error(`register ${username}: ${res.status}`);
      usernames.push(username);
      token = res.body.access_token;
    }

    await eventLoopP99Ms(server.baseUrl); // resets the server's event-loop histogram
    let n = 0;
    const login = await new Promise<autocannon.Result>((resolve, reject) => {
      autocannon(
        {
          url: `${server.baseUrl}/api/v1/auth/login`,
          connections: 16,
          duration: Number(process.env.BENCH_SECONDS ?? 8),
          requests: [
            {
              method: 'POST',
              setupRequest: (request) => {
                n += 1;
                return {
                  ...request,
                  headers: { 'content-type': 'application/json', 'x-forwarded-for': ipFor(n % 60_000) },
                  body: JSON.stringify({ username_or_email: usernames[n % usernames.length], password: PASSWORD }),
                };
              },
            },
          ],
        },
        (error: unknown, result) => (error ? reject(error instanceof Error ? error : new Error('autocannon failed')) : resolve(result)),
      );
    });
    const eventLoopDuringLogin = await eventLoopP99Ms(server.baseUrl);

    const me: LoadResult = await load({ url: `${server.baseUrl}/api/v1/auth/me`, headers: { authorization: `Bearer ${token}` } });
    const eventLoopDuringMe = await eventLoopP99Ms(server.baseUrl);
    return {
      login: {
        logins_per_second: Math.round(login.requests.average),
        latency_p50_ms: login.latency.p50,
        latency_p99_ms: login.latency.p99,
        requests: login.requests.total,
        non_2xx: login.non2xx,
        server_event_loop_delay_p99_ms: eventLoopDuringLogin,
        argon2: 'argon2id m=19456 KiB t=2 p=1',
      },
      auth_me: { ...me, server_event_loop_delay_p99_ms: eventLoopDuringMe },
    };
  } finally {
    await server.stop();
  }
}
