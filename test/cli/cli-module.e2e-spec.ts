import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { MongoClient, ObjectId } from 'mongodb';
import { runCli, type CliResult } from '../support/cli.js';
import { createTestDatabase } from '../support/database.js';

/** The directories of this process's PATH that hold no tmux: a host where tmux is not installed. */
const PATH_WITHOUT_TMUX = (process.env.PATH ?? '')
  .split(delimiter)
  .filter((dir) => dir !== '' && !existsSync(join(dir, 'tmux')))
  .join(delimiter);

/**
 * The admin command line loads CliModule (configuration, database, audit, and the feature modules a
 * command needs), not AppModule: it starts on a host without tmux, and a command never reaches the
 * runtime or the environments (no reconciler pass).
 */
describe('the CLI without the runtime', () => {
  const database = createTestDatabase('cli');
  const dataDir = mkdtempSync(join(tmpdir(), 'devpocket-cli-'));
  const client = new MongoClient(database.uri);
  afterAll(async () => {
    await client.close();
    await database.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** The built CLI on a PATH without tmux. */
  const cli = (args: string[]): Promise<CliResult> =>
    runCli(database, args, { PATH: PATH_WITHOUT_TMUX, RUNTIME: 'local', DATA_DIR: dataDir });

  it('runs on a PATH without tmux, and set-plan leaves the environments alone (no reconcile pass)', async () => {
    expect(spawnSync('tmux', ['-V'], { env: { PATH: PATH_WITHOUT_TMUX } }).error).toMatchObject({ code: 'ENOENT' });

    const created = await cli(['create-admin', '--username', 'cli_owner', '--email', 'cli_owner@example.com', '--password', 'Cli-Owner-1']);
    expect(created).toMatchObject({ code: 0 });
    expect(created.stdout).toContain('Created admin cli_owner');
    const ownerId = /id=([0-9a-f]{24})/.exec(created.stdout)?.[1];
    expect(ownerId).toBeDefined();

    // Records a reconciler pass would change at once: a `running` environment whose workload does not
    // exist (it would become `error`) and an operation whose heartbeat is long stale (it would be taken over).
    const longAgo = new Date(Date.now() - 3_600_000);
    const record = (name: string, extra: Record<string, unknown>): Record<string, unknown> => ({
      _id: new ObjectId(),
      user_id: ownerId,
      name,
      slug: name,
      template_id: new ObjectId().toHexString(),
      template_name: 'debian',
      resources: { cpu: '500m', memory: '1Gi', storage: '5Gi' },
      environment_variables: [],
      status_message: null,
      installation: null,
      operation: null,
      queued_action: null,
      last_accessed: null,
      started_at: longAgo,
      terminated_at: null,
      created_at: longAgo,
      updated_at: longAgo,
      ...extra,
    });
    const environments = client.db(database.name).collection('environments');
    await environments.insertMany([
      record('vanished', { phase: 'running' }),
      record('abandoned', {
        phase: 'starting',
        operation: { id: 'stale-operation', kind: 'start', started_at: longAgo, heartbeat_at: longAgo },
      }),
    ]);
    const before = await environments.find({}).sort({ name: 1 }).toArray();

    const plan = await cli(['set-plan', 'cli_owner', 'pro']);
    expect(plan).toMatchObject({ code: 0 });
    expect(plan.stdout).toContain('plan=pro');
    const role = await cli(['set-role', 'cli_owner@example.com', 'user']);
    expect(role).toMatchObject({ code: 0 });
    expect(role.stdout).toContain('role=user');

    expect(await environments.find({}).sort({ name: 1 }).toArray()).toEqual(before);
    // The runtime was never built: the local runtime creates DATA_DIR/environments when it is.
    expect(existsSync(join(dataDir, 'environments'))).toBe(false);
  }, 60_000);

  it('loads the templates on a PATH without tmux', async () => {
    const loaded = await cli(['templates:load']);
    expect(loaded).toMatchObject({ code: 0 });
    expect(loaded.stdout).toContain('debian');
    expect(await client.db(database.name).collection('templates').countDocuments({ name: 'debian' })).toBe(1);
  }, 60_000);

  it('keeps its exit codes: 2 for bad usage, 0 for help', async () => {
    expect((await cli(['set-plan', 'cli_owner', 'platinum'])).code).toBe(2);
    expect((await cli(['toString'])).code).toBe(2);
    expect((await cli(['help'])).code).toBe(0);
  }, 60_000);
});
