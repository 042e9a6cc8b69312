import { setTimeout as delay } from 'node:timers/promises';
import { mapLimited } from '../../src/common/async/map-limited.js';

/** The API calls the benches make as users: register, sign in, create environments, wait for a phase. */

const log = (message: string): void => void process.stderr.write(`[bench] ${message}\n`);

export const PASSWORD = 'Bench1Password';

export interface EnvironmentBody {
  id: string;
  phase: string;
}

export interface User {
  name: string;
  token: string;
  /** Every request of this user comes from its own address (TRUSTED_PROXIES=loopback). */
  ip: string;
}

export async function call<T>(
  baseUrl: string,
  ip: string,
  method: string,
  path: string,
  token: string | null,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-forwarded-for': ip };
  if (token) headers.authorization = `Bearer ${token}`;
  for (;;) {
    const res = await fetch(`${baseUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (res.status === 429) {
      // Respect the limiter rather than fail: wait as told and try again.
      const retry = Number(res.headers.get('retry-after') ?? 1);
      await res.arrayBuffer();
      log(`429 on ${method} ${path}; waiting ${retry} s`);
      await delay(Math.max(1, retry) * 1000);
      continue;
    }
    return { status: res.status, body: (await res.json()) as T };
  }
}

export async function register(baseUrl: string, name: string, ip: string): Promise<User> {
  const res = await call<{ access_token: string }>(baseUrl, ip, 'POST', '/api/v1/auth/register', null, {
    username: name,
    email: `${name}@bench.example`,
    password: PASSWORD,
  });
  if (res.status !== 201) throw new Error(`register ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  return { name, token: res.body.access_token, ip };
}

export async function login(baseUrl: string, user: User): Promise<void> {
  const res = await call<{ access_token: string }>(baseUrl, user.ip, 'POST', '/api/v1/auth/login', null, {
    username_or_email: user.name,
    password: PASSWORD,
  });
  if (res.status !== 200 && res.status !== 201) throw new Error(`login ${user.name}: ${res.status} ${JSON.stringify(res.body)}`);
  user.token = res.body.access_token;
}

export async function createEnvironment(baseUrl: string, user: User, name: string): Promise<string> {
  const res = await call<EnvironmentBody>(baseUrl, user.ip, 'POST', '/api/v1/environments', user.token, { name, template: 'debian' });
  if (res.status !== 201) throw new Error(`create ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id;
}

/** Polls each user's list until every id is in `phase`. */
export async function waitForPhase(baseUrl: string, owners: Map<User, string[]>, phase: string, timeoutMs: number): Promise<void> {
  const started = performance.now();
  for (const [user, ids] of owners) {
    const wanted = new Set(ids);
    for (;;) {
      const res = await call<EnvironmentBody[]>(baseUrl, user.ip, 'GET', '/api/v1/environments', user.token);
      const found = res.body.filter((environment) => wanted.has(environment.id));
      const failed = found.find((environment) => environment.phase === 'error');
      if (failed && phase !== 'terminated') throw new Error(`environment ${failed.id} failed: ${JSON.stringify(failed)}`);
      if (found.length === wanted.size && found.every((environment) => environment.phase === phase)) break;
      if (performance.now() - started > timeoutMs) {
        throw new Error(`environments not ${phase} after ${timeoutMs} ms: ${JSON.stringify(found.filter((e) => e.phase !== phase))}`);
      }
      await delay(200);
    }
  }
}

/** Runs `work` over `items` with at most `concurrency` in flight (the server's own `mapLimited`). */
export const pool = mapLimited;

// ---- terminal clients ----------------------------------------------------------------------------

/** `call` bound to one client address: every request of a bench that acts as one phone. */
export function callerAt(ip: string) {
  return <T>(baseUrl: string, method: string, path: string, token: string | null, body?: unknown): Promise<{ status: number; body: T }> =>
    call<T>(baseUrl, ip, method, path, token, body);
}
