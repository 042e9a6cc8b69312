import { WebSocket } from 'ws';
import { EnvironmentsRepository } from '../../src/environments/environments.repository.js';
import { createEnvironmentsApp, EnvironmentBody, EnvironmentsApp } from '../support/environments.js';
import { eventually } from '../support/eventually.js';
import type { TestAccount } from '../support/accounts.js';

interface ErrorBody {
  detail: string;
  code: string;
  errors?: { field: string; message: string }[];
  status?: string;
  phase?: string;
}

const STATUSES = ['creating', 'running', 'stopped', 'terminated', 'error'];

/** Runs a command in the environment through the runtime port and returns its output. */
async function run(app: EnvironmentsApp, environment: EnvironmentBody, argv: string[]): Promise<{ output: string; code: number | null }> {
  const record = await app.app.get(EnvironmentsRepository).findById(environment.id);
  const spec = await app.service.specFor(record!);
  const session = await app.runtime.exec(spec, argv, { tty: false });
  let output = '';
  session.stream.on('data', (chunk: Buffer) => (output += chunk.toString()));
  session.stream.end();
  const exit = await session.exit;
  return { output, code: exit.code };
}

describe('environments on the local runtime', () => {
  let app: EnvironmentsApp;
  beforeAll(async () => (app = await createEnvironmentsApp()), 120_000);
  afterAll(() => app?.close(), 120_000);

  const api = <T>(method: string, path: string, account: TestAccount, body?: unknown) =>
    app.json<T>(method, `/api/v1/environments${path}`, { token: account.tokens.access_token, body });

  describe('the mobile client contract', () => {
    it('creates from the python template with a display name and reaches running, every field present', async () => {
      const account = await app.account('pro');
      const res = await api<EnvironmentBody>('POST', '/', account, {
        name: 'My Awesome Project',
        template: 'python',
        resources: null,
        environment_variables: null,
      });
      expect(res.status).toBe(201);
      expect(res.body.status).toBe('creating');
      expect(res.body.phase).toBe('provisioning');
      const env = await app.waitForPhase(account, res.body.id, 'running');
      expect(env).toMatchObject({
        name: 'My Awesome Project',
        slug: 'my-awesome-project',
        template: 'python',
        status: 'running',
        environment_variables: {},
        // The template's port 8000, previewed on the path form (no PREVIEW_DOMAIN here), with a grant (docs/previews.md).
        web_port: 8000,
      });
      expect(env.external_url).toBe(
        `${app.baseUrl}/preview/${env.id}/8000/?devpocket_grant=${new URL(env.external_url!).searchParams.get('devpocket_grant')}`,
      );
      expect(typeof env.template_id).toBe('string');
      expect(env.resource_limits).toEqual(env.resources);
      expect(env.resource_limits).toEqual({ cpu: '1', memory: '2Gi', storage: '10Gi' });
      for (const field of ['created_at', 'updated_at'])
        expect(new Date(env[field as 'created_at']).toISOString()).toBe(env[field as 'created_at']);

      const list = await api<EnvironmentBody[]>('GET', '/', account);
      expect(Array.isArray(list.body)).toBe(true);
      expect(list.body.map((e) => e.id)).toEqual([env.id]);
      for (const e of list.body) expect(STATUSES).toContain(e.status);

      // the startup script's output is in the logs, and the installation finishes
      const done = await eventually(async () => {
        const body = await app.get(account, env.id);
        if (!body.installation_completed) throw new Error('installation running');
        return body;
      }, 120_000);
      expect(done.installation_progress).toBe(100);
    }, 180_000);

    it('accepts the older field names with explicit nulls, and answers with a trailing slash', async () => {
      const account = await app.account('pro');
      const res = await app.json<EnvironmentBody>('POST', '/api/v1/environments/', {
        token: account.tokens.access_token,
        body: {
          name: 'Old client',
          template_id: 'debian',
          resource_limits: { cpu: '500m', memory: '512Mi', storage: null },
          environment_variables: { GREETING: 'hi' },
        },
      });
      expect(res.status).toBe(201);
      expect(res.body.resources).toEqual({ cpu: '500m', memory: '512Mi', storage: '10Gi' });
      expect(res.body.environment_variables).toEqual({ GREETING: 'hi' });
      expect((await app.json('GET', '/api/v1/environments/', { token: account.tokens.access_token })).status).toBe(200);
      await app.waitForPhase(account, res.body.id, 'running');
    });
  });

  describe('validation and quotas', () => {
    it('enforces the plan: the free plan has one live environment (403 naming the limit) and the slot returns after delete', async () => {
      const account = await app.account('free');
      const first = await app.createRunning(account);
      const second = await api<ErrorBody>('POST', '/', account, { name: 'Second', template: 'debian' });
      expect(second.status).toBe(403);
      expect(second.body.detail).toMatch(/Free plan allows 1 environment/);
      expect((await api('DELETE', `/${first.id}`, account)).status).toBe(200);
      await app.waitForPhase(account, first.id, 'terminated');
      const third = await api<EnvironmentBody>('POST', '/', account, { name: 'Third', template: 'debian' });
      expect(third.status).toBe(201);
      await app.waitForPhase(account, third.body.id, 'running');
    });

    it('never lets parallel creations exceed the quota', async () => {
      const account = await app.account('starter');
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) => api<EnvironmentBody>('POST', '/', account, { name: `Parallel ${i}`, template: 'debian' })),
      );
      expect(results.filter((r) => r.status === 201)).toHaveLength(3);
      expect(results.filter((r) => r.status === 403)).toHaveLength(3);
      for (const r of results.filter((x) => x.status === 201)) await app.waitForPhase(account, r.body.id, 'running');
    });

    it('refuses resources above the plan with 422 naming the field; omitted ones take the plan defaults', async () => {
      const account = await app.account('free');
      const over = await api<ErrorBody>('POST', '/', account, { name: 'Big', template: 'debian', resources: { cpu: '2', memory: '8Gi' } });
      expect(over.status).toBe(422);
      expect(over.body.errors?.map((e) => e.field).sort()).toEqual(['resources.cpu', 'resources.memory']);
      expect(over.body.detail).toMatch(/exceeds your Free plan's maximum of 1Gi/);
      const bad = await api<ErrorBody>('POST', '/', account, { name: 'Bad', template: 'debian', resources: { memory: 'lots' } });
      expect(bad.status).toBe(422);
      expect(bad.body.errors?.[0]?.field).toBe('resources.memory');
    });

    it('accepts and ignores unknown keys in resources and resource_limits (older builds send max_instances), on create and update', async () => {
      const account = await app.account('pro');
      const created = await api<EnvironmentBody>('POST', '/', account, {
        name: 'Older build',
        template_id: 'debian',
        resource_limits: { cpu: '1', memory: '1Gi', storage: '5Gi', max_instances: 3 },
        environment_variables: null,
      });
      expect(created.status).toBe(201);
      expect(created.body.resource_limits).toEqual({ cpu: '1', memory: '1Gi', storage: '5Gi' });
      expect(created.body.resources).toEqual({ cpu: '1', memory: '1Gi', storage: '5Gi' });
      expect(JSON.stringify(created.body)).not.toContain('max_instances');

      const updated = await api<EnvironmentBody>('PUT', `/${created.body.id}`, account, {
        resources: { memory: '2Gi', max_instances: 5, region: { name: 'eu' } },
      });
      expect(updated.status).toBe(200);
      expect(updated.body.resources).toEqual({ cpu: '1', memory: '2Gi', storage: '5Gi' });
      const renamed = await api<EnvironmentBody>('PUT', `/${created.body.id}`, account, {
        resource_limits: { cpu: 0.5, storage: '10Gi', max_instances: 1 },
      });
      expect(renamed.status).toBe(200);
      // A number of cores is taken to the millicore.
      expect(renamed.body.resource_limits).toEqual({ cpu: '500m', memory: '2Gi', storage: '10Gi' });

      const fetched = await app.get(account, created.body.id);
      for (const body of [updated.body, renamed.body, fetched]) {
        expect(JSON.stringify(body)).not.toContain('max_instances');
        expect(JSON.stringify(body)).not.toContain('region');
      }
      const stored = await app.app.get(EnvironmentsRepository).findById(created.body.id);
      expect(Object.keys(stored!.resources).sort()).toEqual(['cpu', 'memory', 'storage']);
      await app.waitForPhase(account, created.body.id, 'running');
    });

    it('still refuses an unknown top-level field with 422, on create and update', async () => {
      const account = await app.account('free');
      const create = await api<ErrorBody & { errors: { field: string; code: string }[] }>('POST', '/', account, {
        name: 'Extra',
        template: 'debian',
        max_instances: 3,
      });
      expect(create.status).toBe(422);
      expect(create.body.errors).toEqual([
        { field: 'max_instances', message: 'max_instances is not a known field', code: 'unknown_field' },
      ]);
      expect(create.body.code).toBe('validation_failed');

      const env = await app.createRunning(account);
      const update = await api<ErrorBody & { errors: { field: string; code: string }[] }>('PUT', `/${env.id}`, account, {
        name: 'Renamed',
        max_instances: 3,
      });
      expect(update.status).toBe(422);
      expect(update.body.errors).toEqual([
        { field: 'max_instances', message: 'max_instances is not a known field', code: 'unknown_field' },
      ]);
      expect((await app.get(account, env.id)).name).toBe('Test Environment');
    });

    it.each([
      ['an invalid name', { '1BAD': 'x' }],
      ['a name with a dash', { 'MY-VAR': 'x' }],
      ['HOME', { HOME: '/tmp' }],
      ['PATH', { PATH: '/evil' }],
      ['a DEVPOCKET_ name', { DEVPOCKET_ID: 'x' }],
      ['a value over 4 KiB', { BIG: 'x'.repeat(4097) }],
      ['a non-string value', { NUM: 5 }],
      ['65 variables', Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`V${i}`, 'x']))],
    ])('refuses environment_variables with %s (422)', async (_label, variables) => {
      const account = await app.account('free');
      const res = await api<ErrorBody>('POST', '/', account, { name: 'Vars', template: 'debian', environment_variables: variables });
      expect(res.status).toBe(422);
      expect(res.body.errors?.[0]?.field).toBe('environment_variables');
    });

    it.each([
      ['no name', { template: 'debian' }, 'name'],
      ['a 65-character name', { name: 'x'.repeat(65), template: 'debian' }, 'name'],
      ['a control character in the name', { name: 'bad\u0007name', template: 'debian' }, 'name'],
      ['no template', { name: 'x' }, 'template'],
      ['an unknown template', { name: 'x', template: 'cobol' }, 'template'],
    ])('refuses %s (422)', async (_label, body, field) => {
      const account = await app.account('free');
      const res = await api<ErrorBody>('POST', '/', account, body);
      expect(res.status).toBe(422);
      expect(res.body.errors?.map((e) => e.field)).toContain(field);
    });

    it('passes variables to the shell as an environment, never through a shell string', async () => {
      const account = await app.account('free');
      const payload = '$(touch /tmp/devpocket-pwned); rm -rf ~ `id`';
      const env = await app.createRunning(account, { environment_variables: { TRICKY: payload } });
      const printed = await run(app, env, ['printenv', 'TRICKY']);
      expect(printed.output).toBe(`${payload}\n`);
      expect(printed.code).toBe(0);
    });
  });

  describe('lifecycle', () => {
    it('stops and starts with files in the home kept; invalid transitions are 409 with the current state', async () => {
      const account = await app.account('free');
      const env = await app.createRunning(account);
      expect((await run(app, env, ['sh', '-c', 'echo kept > "$HOME/notes.txt"'])).code).toBe(0);

      const startRunning = await api<ErrorBody>('POST', `/${env.id}/start`, account);
      expect(startRunning.status).toBe(409);
      expect(startRunning.body).toMatchObject({ status: 'running', phase: 'running' });
      expect(startRunning.body.detail).toBe('Cannot start an environment that is running');

      expect((await api('POST', `/${env.id}/stop`, account)).status).toBe(202);
      const stopped = await app.waitForPhase(account, env.id, 'stopped');
      expect(stopped.status).toBe('stopped');
      expect((await api<ErrorBody>('POST', `/${env.id}/stop`, account)).status).toBe(409);

      expect((await api('POST', `/${env.id}/start`, account)).status).toBe(202);
      const again = await app.waitForPhase(account, env.id, 'running');
      expect((await run(app, again, ['cat', 'notes.txt'])).output).toBe('kept\n');

      expect((await api('POST', `/${env.id}/restart`, account)).status).toBe(202);
      await app.waitForPhase(account, env.id, 'running');
    });

    it('two concurrent starts provision once: one 202, one 409', async () => {
      const account = await app.account('free');
      const env = await app.createRunning(account);
      await api('POST', `/${env.id}/stop`, account);
      await app.waitForPhase(account, env.id, 'stopped');
      const [a, b] = await Promise.all([api('POST', `/${env.id}/start`, account), api('POST', `/${env.id}/start`, account)]);
      expect([a.status, b.status].sort()).toEqual([202, 409]);
      await app.waitForPhase(account, env.id, 'running');
      const log = await api<{ logs: string[] }>('GET', `/${env.id}/logs?lines=1000`, account);
      // one workload start at creation, exactly one more for the two concurrent requests; one provisioning
      expect(log.body.logs.filter((line) => line.includes('[runtime] started:'))).toHaveLength(2);
      expect(log.body.logs.filter((line) => line.includes('[runtime] provisioning from template'))).toHaveLength(1);
    });

    it('delete removes every runtime resource, storage included, and keeps the record as terminated', async () => {
      const account = await app.account('free');
      const env = await app.createRunning(account);
      expect(app.exists(env.id)).toBe(true);
      const res = await api<EnvironmentBody>('DELETE', `/${env.id}`, account);
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('terminated');
      const gone = await app.waitForPhase(account, env.id, 'terminated');
      expect(gone.status).toBe('terminated');
      expect(app.exists(env.id)).toBe(false);
      const list = await api<EnvironmentBody[]>('GET', '/', account);
      expect(list.body.find((e) => e.id === env.id)?.status).toBe('terminated');
      expect((await api<ErrorBody>('DELETE', `/${env.id}`, account)).status).toBe(409);
      expect((await api<ErrorBody>('POST', `/${env.id}/start`, account)).status).toBe(409);
    });

    it('renames and changes variables with PUT', async () => {
      const account = await app.account('free');
      const env = await app.createRunning(account);
      const res = await api<EnvironmentBody>('PUT', `/${env.id}`, account, { name: 'Renamed Project', environment_variables: { A: '1' } });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ name: 'Renamed Project', slug: 'renamed-project', environment_variables: { A: '1' } });
      expect((await api<ErrorBody>('PUT', `/${env.id}`, account, { resources: { memory: '64Gi' } })).status).toBe(422);
      // replacing variables with the same values under other names really replaces them
      const renamed = await api<EnvironmentBody>('PUT', `/${env.id}`, account, { environment_variables: { B: '1' } });
      expect(renamed.body.environment_variables).toEqual({ B: '1' });
      expect((await app.get(account, env.id)).environment_variables).toEqual({ B: '1' });
    });
  });

  describe('ownership', () => {
    it("answers 404 for another user's environment on every route", async () => {
      const owner = await app.account('free');
      const stranger = await app.account('free');
      const env = await app.createRunning(owner);
      for (const [method, path] of [
        ['GET', ''],
        ['PUT', ''],
        ['DELETE', ''],
        ['POST', '/start'],
        ['POST', '/stop'],
        ['POST', '/restart'],
        ['GET', '/logs'],
        ['GET', '/metrics'],
      ] as const) {
        const res = await api<ErrorBody>(method, `/${env.id}${path}`, stranger, method === 'PUT' ? { name: 'hijack' } : undefined);
        expect(res.status).toBe(404);
        expect(res.body.detail).toBe('Environment not found');
      }
      expect((await api('GET', '/000000000000000000000000', stranger)).status).toBe(404);
      expect((await api('GET', '/not-an-id', stranger)).status).toBe(404);
      expect((await app.get(owner, env.id)).name).toBe('Test Environment');
      expect((await api<EnvironmentBody[]>('GET', '/', stranger)).body).toEqual([]);
    });
  });

  describe('logs and metrics', () => {
    it('returns logs as {logs, total, has_more}, honouring lines and since', async () => {
      const account = await app.account('free');
      const env = await app.createRunning(account);
      const all = await api<{ logs: string[]; total: number; has_more: boolean }>('GET', `/${env.id}/logs?lines=5000`, account);
      expect(all.status).toBe(200);
      expect(all.body.logs.length).toBe(all.body.total);
      expect(all.body.has_more).toBe(false);
      expect(all.body.total).toBeGreaterThan(1);
      const one = await api<{ logs: string[]; total: number; has_more: boolean }>('GET', `/${env.id}/logs?lines=1`, account);
      expect(one.body.logs).toEqual(all.body.logs.slice(-1));
      expect(one.body.has_more).toBe(true);
      const future = await api<{ logs: string[] }>('GET', `/${env.id}/logs?since=2999-01-01T00:00:00Z`, account);
      expect(future.body.logs).toEqual([]);
      expect((await api('GET', `/${env.id}/logs?lines=0`, account)).status).toBe(422);
      expect((await api('GET', `/${env.id}/logs?since=yesterday`, account)).status).toBe(422);
    });

    it('streams new log lines over /api/v1/ws/logs/{id}', async () => {
      const account = await app.account('free');
      const env = await app.createRunning(account);
      const socket = new WebSocket(
        `${app.baseUrl.replace('http', 'ws')}/api/v1/ws/logs/${env.id}?token=${account.tokens.access_token}&lines=0`,
      );
      const lines: string[] = [];
      socket.on('message', (data: Buffer) => lines.push((JSON.parse(data.toString()) as { line: string }).line));
      await new Promise((resolve) => socket.once('open', resolve));
      await api('POST', `/${env.id}/stop`, account);
      await app.waitForPhase(account, env.id, 'stopped');
      await eventually(() => expect(lines.length).toBeGreaterThan(0), 15_000);
      socket.close();
    });

    it('refuses a logs socket without a valid token (4001) or for another user (4004)', async () => {
      const owner = await app.account('free');
      const stranger = await app.account('free');
      const env = await app.createRunning(owner);
      const close = (url: string) =>
        new Promise<{ code: number; messages: string[] }>((resolve) => {
          const socket = new WebSocket(url);
          const messages: string[] = [];
          socket.on('message', (data: Buffer) => messages.push(data.toString()));
          socket.on('close', (code) => resolve({ code, messages }));
        });
      const base = `${app.baseUrl.replace('http', 'ws')}/api/v1/ws/logs/${env.id}`;
      const anonymous = await close(base);
      expect(anonymous.code).toBe(4001);
      expect(JSON.parse(anonymous.messages[0] ?? '{}')).toMatchObject({ type: 'error' });
      expect((await close(`${base}?token=${owner.tokens.refresh_token}`)).code).toBe(4001);
      expect((await close(`${base}?token=${stranger.tokens.access_token}`)).code).toBe(4004);
    });

    it('reports metrics with every field present, real figures for memory and disk', async () => {
      const account = await app.account('free');
      const env = await app.createRunning(account);
      const res = await api<Record<string, number | string | null>>('GET', `/${env.id}/metrics`, account);
      expect(res.status).toBe(200);
      for (const field of ['cpu_usage', 'memory_usage', 'disk_usage', 'network_in', 'network_out', 'timestamp'])
        expect(res.body).toHaveProperty(field);
      expect(typeof res.body.memory_bytes).toBe('number');
      expect(Number(res.body.memory_bytes)).toBeGreaterThan(0);
      expect(typeof res.body.disk_bytes).toBe('number');
      expect(typeof res.body.memory_usage).toBe('number');
    });
  });

  describe('reconciler and idle auto-stop', () => {
    it('resumes a provisioning abandoned by a crashed server', async () => {
      const account = await app.account('free');
      const repository = app.app.get(EnvironmentsRepository);
      const template = await app.json<{ id: string }>('GET', '/api/v1/templates/debian', { token: account.tokens.access_token });
      const past = new Date(app.clock.nowMs() - 5 * 60_000);
      const orphaned = await repository.create({
        userId: account.id,
        name: 'Crashed mid-provisioning',
        slug: 'crashed',
        templateId: template.body.id,
        templateName: 'debian',
        resources: { cpu: '500m', memory: '1Gi', storage: '5Gi' },
        environmentVariables: {},
        operation: { id: 'dead-server-operation', kind: 'provision', startedAt: past, heartbeatAt: past },
      });
      const report = await app.reconciler.reconcile();
      expect(report.resumed).toBeGreaterThanOrEqual(1);
      await app.waitForPhase(account, orphaned.id, 'running');
    });

    it('marks an environment whose workload stopped behind its back, and destroys runtime resources nobody owns', async () => {
      const account = await app.account('free');
      const env = await app.createRunning(account);
      const record = await app.app.get(EnvironmentsRepository).findById(env.id);
      await app.runtime.stop(await app.service.specFor(record!));
      await app.reconciler.reconcile();
      const after = await app.waitForPhase(account, env.id, 'stopped');
      expect(after.status_message).toMatch(/stopped outside DevPocket/);

      const { specForOrphan } = await import('../../src/environments/orphan-spec.js');
      const strayId = 'abcdefabcdefabcdefabcdef';
      await app.runtime.provision({ ...specForOrphan(strayId), template: (await app.service.specFor(record!)).template });
      expect(app.exists(strayId)).toBe(true);
      const report = await app.reconciler.reconcile();
      expect(report.orphansDestroyed).toBeGreaterThanOrEqual(1);
      expect(app.exists(strayId)).toBe(false);
    });

    it('recounts a leaked quota slot after two passes that agree it leaked', async () => {
      const account = await app.account('free');
      const repository = app.app.get(EnvironmentsRepository);
      expect(await repository.reserveSlot(account.id, 1)).toBe(true); // a slot taken by a creation that never happened
      const blocked = await api<ErrorBody>('POST', '/', account, { name: 'Blocked', template: 'debian' });
      expect(blocked.status).toBe(403);
      await app.reconciler.reconcile();
      await app.reconciler.reconcile();
      const created = await api<EnvironmentBody>('POST', '/', account, { name: 'Unblocked', template: 'debian' });
      expect(created.status).toBe(201);
      await app.waitForPhase(account, created.body.id, 'running');
    });

    it('stops environments idle for their plan timeout (clock moved, not slept)', async () => {
      const account = await app.account('free');
      const env = await app.createRunning(account);
      /** The clock moves past the access token's 15 minutes too: sign in again, as the app would. */
      const signedIn = async (): Promise<TestAccount> => {
        const login = await app.json<TestAccount['tokens']>('POST', '/api/v1/auth/login', {
          body: { username_or_email: account.username, password: account.password },
          ip: '10.9.9.9',
        });
        return { ...account, tokens: login.body };
      };
      app.clock.advance(29 * 60_000);
      await app.reconciler.stopIdle();
      expect((await app.get(await signedIn(), env.id)).phase).toBe('running');
      app.clock.advance(2 * 60_000);
      await app.reconciler.stopIdle();
      const stopped = await app.waitForPhase(await signedIn(), env.id, 'stopped');
      expect(stopped.status_message).toBe('Stopped after 30 minutes without terminal activity');
    });

    it('terminal activity (touch) keeps an environment from idling out', async () => {
      const account = await app.account('free');
      const env = await app.createRunning(account);
      app.clock.advance(25 * 60_000);
      await app.service.touch(env.id);
      app.clock.advance(10 * 60_000);
      await app.reconciler.stopIdle();
      const login = await app.json<TestAccount['tokens']>('POST', '/api/v1/auth/login', {
        body: { username_or_email: account.username, password: account.password },
        ip: '10.9.9.8',
      });
      const body = await app.get({ ...account, tokens: login.body }, env.id);
      expect(body.phase).toBe('running');
      expect(body.last_accessed).not.toBeNull();
    });
  });

  describe('account deletion', () => {
    it("deletes the user's environments and their runtime resources", async () => {
      const account = await app.account('starter');
      const a = await app.createRunning(account);
      const b = await app.createRunning(account, { name: 'Second' });
      expect((await app.json('DELETE', '/api/v1/users/me', { token: account.tokens.access_token })).status).toBe(200);
      expect(app.exists(a.id)).toBe(false);
      expect(app.exists(b.id)).toBe(false);
      expect(await app.app.get(EnvironmentsRepository).listForUser(account.id)).toEqual([]);
    });
  });
});
