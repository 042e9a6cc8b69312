import { AppError } from '../../src/common/errors/app-error.js';
import { TEMPLATE_CATEGORIES, TEMPLATE_STATUSES } from '../../src/templates/template.js';
import { TemplatesLoader } from '../../src/templates/templates.loader.js';
import { TemplatesService } from '../../src/templates/templates.service.js';
import { AccountsApp, createAccountsApp, TestAccount } from '../support/accounts.js';
import { adminOf, definition, ErrorBody, names, SHIPPED, TemplateBody } from '../support/templates.js';

describe('templates: the shipped files and the API', () => {
  let app: AccountsApp;
  let admin: TestAccount;
  let user: TestAccount;
  let service: TemplatesService;

  beforeAll(async () => {
    app = await createAccountsApp();
    service = app.app.get(TemplatesService);
    [admin, user] = await Promise.all([adminOf(app), app.register()]);
  }, 120_000);

  afterAll(() => app.close());

  const asUser = <T>(method: string, path: string, body?: unknown) => app.json<T>(method, path, { token: user.tokens.access_token, body });
  const asAdmin = <T>(method: string, path: string, body?: unknown) =>
    app.json<T>(method, path, { token: admin.tokens.access_token, body });

  it('loads every shipped file when the server boots', async () => {
    const list = await asUser<TemplateBody[]>('GET', '/api/v1/templates');
    expect(list.status).toBe(200);
    expect(names(list.body)).toEqual(expect.arrayContaining(SHIPPED));
    expect(SHIPPED).toEqual(expect.arrayContaining(['coding-agent', 'debian', 'golang', 'nodejs', 'python', 'rust', 'ubuntu']));
    const again = await app.app.get(TemplatesLoader).load();
    expect(again.errors).toEqual([]);
    expect(again.unchanged.sort()).toEqual(SHIPPED);
  });

  it("lists a bare array of the client's Template, with the runtime fields", async () => {
    const list = await asUser<TemplateBody[]>('GET', '/api/v1/templates/');
    expect(Array.isArray(list.body)).toBe(true);
    for (const t of list.body) {
      for (const field of ['id', 'name', 'display_name', 'description', 'docker_image', 'version', 'shell', 'working_directory']) {
        expect(typeof t[field as keyof TemplateBody]).toBe('string');
      }
      expect(TEMPLATE_CATEGORIES).toContain(t.category);
      expect(TEMPLATE_STATUSES).toContain(t.status);
      expect(t.tags.every((tag) => typeof tag === 'string')).toBe(true);
      expect(Object.values(t.default_resources).every((v) => typeof v === 'string')).toBe(true);
      expect(Object.keys(t.default_resources).sort()).toEqual(['cpu', 'memory', 'storage']);
      expect(Object.values(t.environment_variables).every((v) => typeof v === 'string')).toBe(true);
      expect(t.startup_commands).toEqual([...t.startup.system, ...t.startup.user]);
      expect(Number.isInteger(t.usage_count)).toBe(true);
      expect(new Date(t.created_at).toISOString()).toBe(t.created_at);
      expect(new Date(t.updated_at).toISOString()).toBe(t.updated_at);
      for (const optional of ['default_port', 'documentation_url', 'icon_url']) expect(t).toHaveProperty(optional);
      expect(t.default_port === null || Number.isInteger(t.default_port)).toBe(true);
      expect(typeof t.run_as_non_root).toBe('boolean');
      expect(t.deleted_at).toBeNull();
    }
    const python = list.body.find((t) => t.name === 'python')!;
    expect(python).toMatchObject({
      docker_image: 'devpocket/env-python:1',
      run_as_non_root: true,
      startup: { system: [], user: expect.any(Array) as unknown },
      category: 'programming_language',
      status: 'active',
      default_resources: { cpu: '500m', memory: '1Gi', storage: '5Gi' },
      user: { name: 'devpocket', uid: 1000, gid: 1000, home: '/home/devpocket' },
      ports: [{ name: 'http', port: 8000, protocol: 'TCP' }],
      default_port: 8000,
    });
    expect(python.required_commands).toEqual(expect.arrayContaining(['bash', 'tmux', 'git', 'python3']));
  });

  it('needs an access token', async () => {
    expect((await app.json('GET', '/api/v1/templates')).status).toBe(401);
    expect((await app.json('GET', '/api/v1/templates/python')).status).toBe(401);
  });

  it('filters by category and status', async () => {
    const os = await asUser<TemplateBody[]>('GET', '/api/v1/templates?category=operating_system');
    expect(os.status).toBe(200);
    expect(names(os.body)).toEqual(expect.arrayContaining(['debian', 'ubuntu']));
    expect(os.body.every((t) => t.category === 'operating_system')).toBe(true);
    const beta = await asUser<TemplateBody[]>('GET', '/api/v1/templates?status=beta');
    expect(names(beta.body)).toContain('coding-agent');
    expect(beta.body.every((t) => t.status === 'beta')).toBe(true);
    const both = await asUser<TemplateBody[]>('GET', '/api/v1/templates?category=programming_language&status=active');
    expect(names(both.body)).toEqual(expect.arrayContaining(['golang', 'nodejs', 'python', 'rust']));
    const empty = await asUser<TemplateBody[]>('GET', '/api/v1/templates?category=&status=');
    expect(names(empty.body)).toEqual(expect.arrayContaining(SHIPPED));
    const bad = await asUser<ErrorBody>('GET', '/api/v1/templates?category=games');
    expect(bad.status).toBe(422);
    expect(bad.body.errors?.[0]?.field).toBe('category');
    expect((await asUser('GET', '/api/v1/templates?status=retired')).status).toBe(422);
  });

  it('gets one template by id or by name; 404 otherwise', async () => {
    const byName = await asUser<TemplateBody>('GET', '/api/v1/templates/python');
    expect(byName.status).toBe(200);
    const byId = await asUser<TemplateBody>('GET', `/api/v1/templates/${byName.body.id}`);
    expect(byId.body).toEqual(byName.body);
    for (const missing of ['no-such-template', '000000000000000000000000', 'Python']) {
      const res = await asUser<ErrorBody>('GET', `/api/v1/templates/${missing}`);
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('template_not_found');
    }
    // `/templates/..` is `/api/v1`: no route at all.
    const dots = await asUser<ErrorBody>('GET', '/api/v1/templates/%2E%2E');
    expect(dots.status).toBe(404);
    expect(dots.body.code).toBe('not_found');
  });

  it('refuses the admin routes to users (403) and to anonymous callers (401)', async () => {
    for (const [method, path, body] of [
      ['POST', '/api/v1/templates', definition('users-cannot')],
      ['PUT', '/api/v1/templates/python', { display_name: 'Hacked' }],
      ['DELETE', '/api/v1/templates/python', undefined],
    ] as const) {
      const forbidden = await asUser<ErrorBody>(method, path, body);
      expect(forbidden.status).toBe(403);
      expect(forbidden.body.detail).toBe('This action requires the admin role');
      expect((await app.json(method, path, { body })).status).toBe(401);
    }
    expect((await asUser<TemplateBody>('GET', '/api/v1/templates/python')).body.display_name).toBe('Python 3.12');
    expect((await asUser('GET', '/api/v1/templates?include_deleted=true')).status).toBe(403);
  });

  it('lets an admin create a template, validated like a file', async () => {
    const created = await asAdmin<TemplateBody>('POST', '/api/v1/templates', definition('pg-admin'));
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: 'pg-admin',
      docker_image: 'postgres:16-bookworm',
      usage_count: 0,
      run_as_non_root: true,
      version: '1.0.0',
    });
    expect((await asUser<TemplateBody>('GET', '/api/v1/templates/pg-admin')).status).toBe(200);

    const duplicate = await asAdmin<ErrorBody>('POST', '/api/v1/templates', definition('python'));
    expect(duplicate.status).toBe(409);

    const invalid = await asAdmin<ErrorBody>('POST', '/api/v1/templates', {
      ...definition('pg-bad'),
      default_resources: { cpu: '250m', memory: 'lots', storage: '1Gi' },
      version: '1.0',
    });
    expect(invalid.status).toBe(422);
    expect(invalid.body.errors?.map((e) => e.field).sort()).toEqual(['default_resources.memory', 'version']);
    expect(invalid.body.detail).toContain('default_resources.memory must be a Kubernetes quantity like 512Mi or 1Gi');

    const unknown = await asAdmin<ErrorBody>('POST', '/api/v1/templates', { ...definition('pg-bad'), startup_commands: [] });
    expect(unknown.status).toBe(422);
    expect(unknown.body.errors).toContainEqual(expect.objectContaining({ field: 'startup_commands', code: 'unknown_field' }));

    const crossField = await asAdmin<ErrorBody>('POST', '/api/v1/templates', definition('pg-bad', { default_port: 80 }));
    expect(crossField.status).toBe(422);
    expect(crossField.body.errors?.[0]?.field).toBe('default_port');

    // Root at every start is the opt-in of an image of its own: system steps need run_as_non_root: false.
    const systemSteps = { startup: { system: ['apt-get update && apt-get install -y tmux'], user: ['echo ready'] } };
    const notOptedIn = await asAdmin<ErrorBody>('POST', '/api/v1/templates', definition('pg-bad', systemSteps));
    expect(notOptedIn.status).toBe(422);
    expect(notOptedIn.body.errors).toEqual([expect.objectContaining({ field: 'startup.system', code: 'systemStepsNeedRoot' })]);
    const ownImage = await asAdmin<ErrorBody>(
      'POST',
      '/api/v1/templates',
      definition('pg-bad', { image: 'devpocket/env-debian:1', run_as_non_root: false }),
    );
    expect(ownImage.status).toBe(422);
    expect(ownImage.body.errors).toEqual([expect.objectContaining({ field: 'run_as_non_root', code: 'ownImageRunsAsUser' })]);
    const optedIn = await asAdmin<TemplateBody>(
      'POST',
      '/api/v1/templates',
      definition('pg-root', { ...systemSteps, run_as_non_root: false }),
    );
    expect(optedIn.status).toBe(201);
    expect(optedIn.body).toMatchObject({ run_as_non_root: false, startup: systemSteps.startup });
    expect((await asUser('GET', '/api/v1/templates/pg-bad')).status).toBe(404);
  });

  it('lets an admin change fields; the name stays, nothing is bumped, the result is validated', async () => {
    const created = await asAdmin<TemplateBody>('POST', '/api/v1/templates', definition('pg-update'));
    const updated = await asAdmin<TemplateBody>('PUT', '/api/v1/templates/pg-update', {
      display_name: 'PostgreSQL 16',
      documentation_url: null,
      tags: ['postgres', 'sql'],
    });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({
      id: created.body.id,
      display_name: 'PostgreSQL 16',
      documentation_url: null,
      tags: ['postgres', 'sql'],
      version: '1.0.0',
    });
    const byId = await asAdmin<TemplateBody>('PUT', `/api/v1/templates/${created.body.id}/`, { version: '1.1.0' });
    expect(byId.body.version).toBe('1.1.0');

    const rename = await asAdmin<ErrorBody>('PUT', '/api/v1/templates/pg-update', { name: 'pg-renamed' });
    expect(rename.status).toBe(422);
    expect(rename.body.errors?.[0]?.field).toBe('name');
    const required = await asAdmin<ErrorBody>('PUT', '/api/v1/templates/pg-update', { display_name: null });
    expect(required.status).toBe(422);
    expect(required.body.errors).toEqual([{ field: 'display_name', message: 'display_name is required', code: 'displayName' }]);
    const nonRoot = await asAdmin<ErrorBody>('PUT', '/api/v1/templates/pg-update', {
      user: { name: 'root', uid: 0, gid: 0, home: '/root' },
    });
    expect(nonRoot.status).toBe(422);
    expect(nonRoot.body.errors?.[0]?.field).toBe('run_as_non_root');
    const badNested = await asAdmin<ErrorBody>('PUT', '/api/v1/templates/pg-update', {
      ports: [{ name: 'x', port: 99999, protocol: 'TCP' }],
    });
    expect(badNested.status).toBe(422);
    expect(badNested.body.errors?.[0]?.field).toBe('ports.0.port');
    expect((await asAdmin('PUT', '/api/v1/templates/no-such-template', { display_name: 'x' })).status).toBe(404);
  });

  it('hides deprecated templates from users but not from admins', async () => {
    const created = await asAdmin<TemplateBody>('POST', '/api/v1/templates', definition('pg-legacy', { status: 'deprecated' }));
    expect(created.status).toBe(201);
    expect(names((await asUser<TemplateBody[]>('GET', '/api/v1/templates')).body)).not.toContain('pg-legacy');
    expect((await asUser<TemplateBody[]>('GET', '/api/v1/templates?status=deprecated')).body).toEqual([]);
    expect((await asUser('GET', '/api/v1/templates/pg-legacy')).status).toBe(404);
    expect((await asUser('GET', `/api/v1/templates/${created.body.id}`)).status).toBe(404);

    expect(names((await asAdmin<TemplateBody[]>('GET', '/api/v1/templates')).body)).toContain('pg-legacy');
    expect(names((await asAdmin<TemplateBody[]>('GET', '/api/v1/templates?status=deprecated')).body)).toEqual(['pg-legacy']);
    expect((await asAdmin('GET', '/api/v1/templates/pg-legacy')).status).toBe(200);

    const refused = await service.findForNewEnvironment('pg-legacy').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AppError);
    expect((refused as AppError).status).toBe(422);
    expect((refused as AppError).options.errors).toEqual([
      {
        field: 'template',
        message: 'template "pg-legacy" is deprecated and cannot be used for new environments',
        code: 'deprecated_template',
      },
    ]);
    expect((await service.findById(created.body.id))?.name).toBe('pg-legacy');
  });

  it('soft-deletes: hidden everywhere, still found by id for existing environments, brought back by a new POST', async () => {
    const created = await asAdmin<TemplateBody>('POST', '/api/v1/templates', definition('pg-delete', { status: 'beta' }));
    await service.incrementUsage(created.body.id);
    expect((await service.findForNewEnvironment('pg-delete')).id).toBe(created.body.id);

    const deleted = await asAdmin<{ message: string }>('DELETE', '/api/v1/templates/pg-delete');
    expect(deleted.status).toBe(200);
    expect((await asAdmin('DELETE', '/api/v1/templates/pg-delete')).status).toBe(404);
    expect(names((await asUser<TemplateBody[]>('GET', '/api/v1/templates')).body)).not.toContain('pg-delete');
    expect(names((await asAdmin<TemplateBody[]>('GET', '/api/v1/templates')).body)).not.toContain('pg-delete');
    expect((await asUser('GET', '/api/v1/templates/pg-delete')).status).toBe(404);
    expect((await asAdmin('GET', '/api/v1/templates/pg-delete')).status).toBe(404);
    expect((await asAdmin('PUT', '/api/v1/templates/pg-delete', { display_name: 'x' })).status).toBe(404);

    const asked = await asAdmin<TemplateBody>('GET', '/api/v1/templates/pg-delete?include_deleted=true');
    expect(asked.status).toBe(200);
    expect(new Date(asked.body.deleted_at!).toISOString()).toBe(asked.body.deleted_at);
    expect(names((await asAdmin<TemplateBody[]>('GET', '/api/v1/templates?include_deleted=true')).body)).toContain('pg-delete');

    expect((await service.findById(created.body.id))?.deletedAt).toBeInstanceOf(Date);
    const refused = await service.findForNewEnvironment(created.body.id).catch((e: unknown) => e);
    expect((refused as AppError).options.errors?.[0]).toMatchObject({ field: 'template', code: 'deleted_template' });
    const unknown = await service.findForNewEnvironment('no-such-template').catch((e: unknown) => e);
    expect((unknown as AppError).options.errors?.[0]).toMatchObject({
      field: 'template',
      message: 'template "no-such-template" does not exist',
    });

    const revived = await asAdmin<TemplateBody>('POST', '/api/v1/templates', definition('pg-delete', { version: '2.0.0' }));
    expect(revived.status).toBe(201);
    expect(revived.body).toMatchObject({ id: created.body.id, usage_count: 1, version: '2.0.0', deleted_at: null });

    const audit = await asAdmin<{ items: { action: string; target: string; actor_username: string }[] }>(
      'GET',
      `/api/v1/admin/audit-events?target_id=${created.body.id}&page_size=10`,
    );
    expect(audit.body.items.map((e) => e.action)).toEqual(['admin.template_created', 'admin.template_deleted', 'admin.template_created']);
    expect(audit.body.items.every((e) => e.target === 'pg-delete' && e.actor_username === admin.username)).toBe(true);
  });

  it('counts usage atomically without touching updated_at', async () => {
    const before = (await asUser<TemplateBody>('GET', '/api/v1/templates/debian')).body;
    await Promise.all(Array.from({ length: 5 }, () => service.incrementUsage(before.id)));
    const after = (await asUser<TemplateBody>('GET', '/api/v1/templates/debian')).body;
    expect(after.usage_count).toBe(before.usage_count + 5);
    expect(after.updated_at).toBe(before.updated_at);
    await service.incrementUsage('not-an-id');
  });

  it('documents the routes in OpenAPI', async () => {
    const res = await fetch(`${app.baseUrl}/docs-json`);
    const doc = (await res.json()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths['/api/v1/templates'] ?? {}).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/api/v1/templates/{idOrName}'] ?? {}).sort()).toEqual(['delete', 'get', 'put']);
  });
});
