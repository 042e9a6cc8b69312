import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../support/cli.js';
import { createTestDatabase } from '../support/database.js';
import { eventually } from '../support/eventually.js';
import { REPO_ROOT, ServerProcess, testServerEnv } from '../support/server-process.js';
import { TEST_JWT_SECRET } from '../support/test-app.js';

/**
 * Schemathesis, driven by /docs-json, against the built server: every request the OpenAPI
 * description allows must be accepted (or refused for a reason no schema can know, which
 * openapi-fuzz/schemathesis.toml lists per operation), every request it forbids refused with a 4xx,
 * no 5xx, every answer as documented, and a method a path does not serve a 405 with `Allow`.
 *
 * Two runs on one server: a signed-in user over everything but the admin routes (environments
 * are created from the shipped templates only), then an admin over the admin routes (templates and
 * users), after the user's environments are gone: so a template the fuzzer wrote never runs.
 *
 * `npm run setup` installs schemathesis (scripts/setup.sh); without it this test is skipped,
 * except in CI, where it fails.
 */
const SCHEMATHESIS = join(homedir(), '.cache', 'devpocket', 'schemathesis', 'bin', 'schemathesis');
const FUZZ_DIR = join(REPO_ROOT, 'test', 'foundation', 'openapi-fuzz');
const SEED = '20261205';
const MAX_EXAMPLES = '100';
const RUN_TIMEOUT_MS = 240_000;

const missing = !existsSync(SCHEMATHESIS);
if (missing && process.env.CI) throw new Error(`${SCHEMATHESIS} is missing: npm run setup installs it`);

interface FuzzRun {
  code: number | null;
  output: string;
}

function schemathesis(args: string[], env: Record<string, string>, cwd: string): Promise<FuzzRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(SCHEMATHESIS, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

const tomlString = (value: string): string => JSON.stringify(value);

/** The run's summary (operations, phases, test cases, duration) in the test's output. */
function summarise(label: string, run: FuzzRun): void {
  const summary = run.output.slice(run.output.lastIndexOf('SUMMARY'));
  process.stdout.write(`schemathesis ${label}: ${summary.replace(/\n{2,}/g, '\n')}\n`);
}

describe('the OpenAPI description agrees with the server (schemathesis)', () => {
  const database = createTestDatabase('fuzz');
  const scratch = mkdtempSync(join(tmpdir(), 'devpocket-fuzz-'));
  let server: ServerProcess | undefined;
  let baseUrl = '';

  const request = async <T>(method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const headers: Record<string, string> = { 'x-forwarded-for': '10.250.0.1' };
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${baseUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  };

  const signIn = async (username: string, password: string): Promise<string> => {
    const res = await request<{ access_token: string }>('POST', '/api/v1/auth/login', undefined, { username_or_email: username, password });
    if (res.status !== 200) throw new Error(`login ${username}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.access_token;
  };

  const cli = async (args: string[]): Promise<number | null> => (await runCli(database, args, { JWT_SECRET: TEST_JWT_SECRET })).code;

  beforeAll(async () => {
    if (missing) return;
    server = new ServerProcess({
      ...testServerEnv(database, join(scratch, 'data')),
      // The global budget must not end the run; each request comes from its own address
      // (openapi-fuzz/hooks.py sets X-Forwarded-For), so the per-address route limits do not either.
      RATE_LIMIT_MAX: '1000000',
      TRUSTED_PROXIES: 'loopback',
      // Configured, so that Google sign-in answers 401 to the fuzzer's tokens rather than 503.
      GOOGLE_CLIENT_IDS: 'openapi-fuzz.apps.googleusercontent.com',
      // The console's Google sign-in on, with Google's endpoints somewhere nothing answers.
      GOOGLE_WEB_CLIENT_ID: 'openapi-fuzz-web.apps.googleusercontent.com',
      GOOGLE_WEB_CLIENT_SECRET: 'openapi-fuzz-web-secret',
      GOOGLE_AUTHORIZATION_URL: 'http://127.0.0.1:9/authorize',
      GOOGLE_TOKEN_URL: 'http://127.0.0.1:9/token',
      GOOGLE_USERINFO_URL: 'http://127.0.0.1:9/userinfo',
    });
    baseUrl = await server.listening();
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    await database.drop();
    rmSync(scratch, { recursive: true, force: true });
  }, 120_000);

  it.skipIf(missing)(
    'finds no request the description and the validation disagree on, no 5xx and no undocumented answer',
    async () => {
      // A user with one environment (its id and the template names feed the fuzzer's dictionaries).
      const password = 'Fuzz-Passw0rd-1';
      const registered = await request<{ user: { id: string } }>('POST', '/api/v1/auth/register', undefined, {
        username: 'fuzz_user',
        email: 'fuzz.user@example.com',
        password,
      });
      expect(registered.status).toBe(201);
      const userToken = await signIn('fuzz_user', password);
      const environment = await request<{ id: string }>('POST', '/api/v1/environments', userToken, { name: 'Fuzzed', template: 'debian' });
      expect(environment.status).toBe(201);
      expect(await cli(['create-admin', '--username', 'fuzz_admin', '--email', 'fuzz.admin@example.com', '--password', password])).toBe(0);
      const adminToken = await signIn('fuzz_admin', password);

      const templateNames = readdirSync(join(REPO_ROOT, 'templates'))
        .filter((file) => file.endsWith('.yaml'))
        .map((file) => file.slice(0, -'.yaml'.length));
      const config = join(scratch, 'schemathesis.toml');
      writeFileSync(
        config,
        [
          readFileSync(join(FUZZ_DIR, 'schemathesis.toml'), 'utf8'),
          '[dictionaries.environment_ids]',
          `values = [${tomlString(environment.body.id)}]`,
          '[dictionaries.user_ids]',
          `values = [${tomlString(registered.body.user.id)}]`,
          '[dictionaries.template_names]',
          `values = [${templateNames.map(tomlString).join(', ')}]`,
          '',
        ].join('\n'),
      );
      const run = (token: string, filters: string[]): Promise<FuzzRun> =>
        schemathesis(
          [
            '--config-file',
            config,
            'run',
            `${baseUrl}/docs-json`,
            '--url',
            baseUrl,
            '--seed',
            SEED,
            '--max-examples',
            MAX_EXAMPLES,
            '--no-color',
            ...filters,
          ],
          { DEVPOCKET_FUZZ_TOKEN: token, SCHEMATHESIS_HOOKS: join(FUZZ_DIR, 'hooks.py') },
          scratch,
        );

      const asUser = await run(userToken, ['--exclude-name-regex', '^[A-Z]+ /api/v1/admin/|^(POST|PUT|DELETE) /api/v1/templates']);
      summarise('as a user', asUser);
      expect(asUser.code, asUser.output).toBe(0);

      // Nothing of the user's may keep running once the admin can change templates.
      const list = await request<{ id: string; phase: string }[]>('GET', '/api/v1/environments', userToken);
      for (const env of list.body.filter((e) => e.phase !== 'terminated' && e.phase !== 'terminating')) {
        expect([200, 409]).toContain((await request('DELETE', `/api/v1/environments/${env.id}`, userToken)).status);
      }
      await eventually(async () => {
        const left = await request<{ phase: string }[]>('GET', '/api/v1/environments', userToken);
        expect(left.body.filter((e) => e.phase !== 'terminated')).toEqual([]);
      }, 60_000);

      const asAdmin = await run(adminToken, ['--include-path-regex', '^/api/v1/(admin|templates)']);
      summarise('as an admin', asAdmin);
      expect(asAdmin.code, asAdmin.output).toBe(0);
    },
    2 * RUN_TIMEOUT_MS + 120_000,
  );
});
