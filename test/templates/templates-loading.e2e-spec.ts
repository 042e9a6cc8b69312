import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { TemplatesLoader } from '../../src/templates/templates.loader.js';
import { TemplatesService } from '../../src/templates/templates.service.js';
import { AccountsApp, createAccountsApp, TestAccount } from '../support/accounts.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase } from '../support/database.js';
import { createTestApp, TestApp } from '../support/test-app.js';
import { adminOf, definition, names, SHIPPED, SHIPPED_DIR, templateDocuments, TemplateBody } from '../support/templates.js';

describe('templates: loading files', () => {
  let dir: string;
  let app: AccountsApp;
  let admin: TestAccount;
  let loader: TemplatesLoader;
  let service: TemplatesService;

  const write = (name: string, changes: Record<string, unknown>, from = name): void => {
    const doc = parse(readFileSync(join(SHIPPED_DIR, `${from}.yaml`), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, `${name}.yaml`), stringify({ ...doc, ...changes }));
  };
  const get = (name: string, query = '') =>
    app.json<TemplateBody>('GET', `/api/v1/templates/${name}${query}`, { token: admin.tokens.access_token });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'devpocket-templates-'));
    copyFileSync(join(SHIPPED_DIR, 'python.yaml'), join(dir, 'python.yaml'));
    copyFileSync(join(SHIPPED_DIR, 'nodejs.yaml'), join(dir, 'nodejs.yaml'));
    write('bad', { name: 'bad', default_resources: { cpu: '500m', memory: 'a lot', storage: '5Gi' } }, 'python');
    writeFileSync(join(dir, 'broken.yaml'), 'name: broken\ndescription: [unclosed\n');
    writeFileSync(join(dir, 'README.md'), 'not a template');
    app = await createAccountsApp({ env: { TEMPLATES_DIR: dir } });
    loader = app.app.get(TemplatesLoader);
    service = app.app.get(TemplatesService);
    admin = await adminOf(app);
  }, 120_000);

  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('boots with a bad file: the good ones load, the bad ones are refused naming file and field', async () => {
    const list = await app.json<TemplateBody[]>('GET', '/api/v1/templates', { token: admin.tokens.access_token });
    expect(names(list.body)).toEqual(['nodejs', 'python']);
    const report = await loader.load();
    expect(report.unchanged).toEqual(['nodejs', 'python']);
    expect(report.errors).toEqual([
      {
        file: join(dir, 'bad.yaml'),
        message: `${join(dir, 'bad.yaml')}: default_resources.memory must be a Kubernetes quantity like 512Mi or 1Gi`,
      },
      {
        file: join(dir, 'broken.yaml'),
        message: expect.stringMatching(/broken\.yaml: not valid YAML: .* at line \d+, column \d+$/) as string,
      },
    ]);
  });

  it('reloads version-aware: a newer file updates, an older one does not, usage_count and created_at survive', async () => {
    const original = (await get('python')).body;
    await service.incrementUsage(original.id);

    // The shipped files are 1.1.0.
    write('python', { version: '1.2.0', description: 'Newer' });
    expect(await loader.load()).toMatchObject({ updated: ['python'], unchanged: ['nodejs'], skipped: [] });
    const newer = (await get('python')).body;
    expect(newer).toMatchObject({
      id: original.id,
      description: 'Newer',
      version: '1.2.0',
      usage_count: original.usage_count + 1,
      created_at: original.created_at,
    });

    write('python', { version: '1.0.5', description: 'Older' });
    const older = await loader.load();
    expect(older.updated).toEqual([]);
    expect(older.skipped).toEqual([
      {
        file: join(dir, 'python.yaml'),
        name: 'python',
        message: "the stored version 1.2.0 is newer than the file's 1.0.5 (changed through the admin API?); the stored template was kept",
      },
    ]);
    expect((await get('python')).body.description).toBe('Newer');

    write('python', { version: '1.2.0', description: 'Same version, other content' });
    expect((await loader.load()).updated).toEqual(['python']);
    expect((await get('python')).body.description).toBe('Same version, other content');
    expect((await loader.load()).unchanged).toEqual(['nodejs', 'python']);
  });

  it('applies a newer file once when several loads run at once', async () => {
    write('nodejs', { version: '1.1.0', description: 'Loaded concurrently' });
    const reports = await Promise.all(Array.from({ length: 4 }, () => loader.load()));
    expect(reports.flatMap((r) => r.updated)).toEqual(['nodejs']);
    expect(reports.map((r) => [...r.updated, ...r.unchanged].includes('nodejs'))).toEqual([true, true, true, true]);
    expect((await get('nodejs')).body.description).toBe('Loaded concurrently');
  });

  it("keeps an admin's newer change and an admin's deletion until a newer file comes", async () => {
    const changed = await app.json<TemplateBody>('PUT', '/api/v1/templates/python', {
      token: admin.tokens.access_token,
      body: { version: '2.0.0', display_name: 'Python (admin)' },
    });
    expect(changed.status).toBe(200);
    expect((await loader.load()).skipped.map((s) => s.name)).toEqual(['python']);
    expect((await get('python')).body.display_name).toBe('Python (admin)');

    const nodejs = (await get('nodejs')).body;
    expect((await app.json('DELETE', '/api/v1/templates/nodejs', { token: admin.tokens.access_token })).status).toBe(200);
    const kept = await loader.load();
    expect(kept.skipped.find((s) => s.name === 'nodejs')?.message).toContain('deleted by an admin');
    expect((await get('nodejs')).status).toBe(404);

    write('nodejs', { version: '1.1.1' });
    expect((await loader.load()).loaded).toEqual(['nodejs']);
    expect((await get('nodejs')).body).toMatchObject({ id: nodejs.id, version: '1.1.1', deleted_at: null });
  });

  it('templates:load in the CLI reports, exits 1 on a bad file, and --prune soft-deletes templates whose file is gone', async () => {
    const created = await app.json<TemplateBody>('POST', '/api/v1/templates', {
      token: admin.tokens.access_token,
      body: definition('api-only'),
    });
    expect(created.status).toBe(201);
    write('golang', {});

    const withBadFiles = await runCli(app.database, ['templates:load'], { TEMPLATES_DIR: dir });
    expect(withBadFiles.code).toBe(1);
    expect(withBadFiles.stdout).toContain('loaded (1): golang');
    expect(withBadFiles.stdout).toContain('bad.yaml: default_resources.memory must be a Kubernetes quantity like 512Mi or 1Gi');
    expect(withBadFiles.stderr).toContain('2 template file(s) refused; the others were loaded');
    expect((await get('golang')).status).toBe(200);

    unlinkSync(join(dir, 'bad.yaml'));
    unlinkSync(join(dir, 'broken.yaml'));
    unlinkSync(join(dir, 'golang.yaml'));
    const pruned = await runCli(app.database, ['templates:load', '--prune'], { TEMPLATES_DIR: dir });
    expect(pruned.code).toBe(0);
    expect(pruned.stdout).toContain('pruned (1): golang');
    expect(pruned.stdout).toContain('errors (0): -');
    expect((await get('golang')).status).toBe(404);
    expect((await get('golang', '?include_deleted=true')).body.deleted_at).not.toBeNull();
    expect((await get('api-only')).status).toBe(200);

    const again = await runCli(app.database, ['templates:load', '--prune'], { TEMPLATES_DIR: dir });
    expect(again.stdout).toContain('pruned (0): -');

    write('golang', {});
    const restored = await runCli(app.database, ['templates:load'], { TEMPLATES_DIR: dir });
    expect(restored.code).toBe(0);
    expect(restored.stdout).toContain('loaded (1): golang');
    expect((await get('golang')).status).toBe(200);

    const empty = mkdtempSync(join(tmpdir(), 'devpocket-no-templates-'));
    const refused = await runCli(app.database, ['templates:load', '--prune'], { TEMPLATES_DIR: empty });
    rmSync(empty, { recursive: true, force: true });
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain('refusing to prune every template');
    expect((await get('python')).status).toBe(200);

    expect((await runCli(app.database, ['templates:load', '--purge'], { TEMPLATES_DIR: dir })).code).toBe(2);
  }, 120_000);

  it('follows symbolic links (a Kubernetes ConfigMap volume) and ignores directories and hidden files', async () => {
    symlinkSync(join(SHIPPED_DIR, 'rust.yaml'), join(dir, 'rust.yaml'));
    mkdirSync(join(dir, 'folder.yaml'));
    writeFileSync(join(dir, '.hidden.yaml'), 'not: a template');
    const report = await loader.load();
    expect(report.loaded).toEqual(['rust']);
    expect(report.errors).toEqual([]);
  });
});

describe('templates: concurrent loads', () => {
  it('several replicas booting at once against an empty database store each template once', async () => {
    const database = createTestDatabase('templates_concurrent');
    const apps: TestApp[] = [];
    try {
      apps.push(...(await Promise.all([1, 2, 3].map(() => createTestApp({ database })))));
      await Promise.all(apps.flatMap((a) => [a.app.get(TemplatesLoader).load(), a.app.get(TemplatesLoader).load()]));
      const stored = (await templateDocuments(database)).map((d) => d.name).sort();
      expect(stored).toEqual(SHIPPED);
    } finally {
      await Promise.all(apps.map((a) => a.close()));
      await database.drop();
    }
  }, 120_000);

  it('several CLI processes loading at once store each template once', async () => {
    const database = createTestDatabase('templates_cli_concurrent');
    try {
      const runs = await Promise.all([1, 2, 3].map(() => runCli(database, ['templates:load'], { TEMPLATES_DIR: SHIPPED_DIR })));
      expect(runs.map((r) => r.code)).toEqual([0, 0, 0]);
      expect((await templateDocuments(database)).map((d) => d.name).sort()).toEqual(SHIPPED);
    } finally {
      await database.drop();
    }
  }, 120_000);
});
