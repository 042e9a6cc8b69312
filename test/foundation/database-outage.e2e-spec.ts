import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchDatabase, LaunchedDatabase } from '../../src/database/launcher/database-launcher.js';
import { withDatabaseName } from '../../src/database/launcher/mongodb-uri.js';
import { ProbeModule } from '../support/probe.module.js';
import { createTestApp, TestApp } from '../support/test-app.js';
import { eventually } from '../support/eventually.js';

/**
 * The database goes away and comes back: requests answer 503 with a readable detail, readiness
 * reports it, and the same server process recovers without a restart. This file runs its own
 * database process (same port, same data directory across the restart) so the shared one is
 * never disturbed.
 */
describe('database outage and recovery', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'devpocket-outage-'));
  let database: LaunchedDatabase;
  let port: number;
  let t: TestApp;

  beforeAll(async () => {
    database = await launchDatabase({ dataDir, log: () => undefined });
    port = Number(new URL(database.uri).port);
    const name = 'outage';
    t = await createTestApp({
      imports: [ProbeModule],
      env: { MONGODB_TIMEOUT_MS: '1000' },
      database: { uri: withDatabaseName(database.uri, name), serverUri: database.uri, name, drop: async () => undefined },
    });
  });

  afterAll(async () => {
    await t?.close();
    await database?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const post = (body: unknown): Promise<Response> =>
    fetch(`${t.baseUrl}/api/v1/probe/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('answers 503 while the database is down and recovers when it returns', async () => {
    expect((await post({ name: 'before', count: 1 })).status).toBe(201);
    expect((await fetch(`${t.baseUrl}/health/ready`)).status).toBe(200);

    await database.stop();

    const ready = await fetch(`${t.baseUrl}/health/ready`);
    expect(ready.status).toBe(503);
    const readyBody = (await ready.json()) as { detail: string; code: string };
    expect(readyBody.code).toBe('not_ready');
    expect(readyBody.detail).toMatch(/^Not ready: mongodb is down/);

    const write = await post({ name: 'during', count: 2 });
    expect(write.status).toBe(503);
    expect(write.headers.get('retry-after')).toBe('5');
    const writeBody = (await write.json()) as { detail: string; code: string };
    expect(writeBody).toMatchObject({
      code: 'database_unavailable',
      detail: 'The database is unavailable right now; please try again shortly',
    });

    // liveness is about the process, not its dependencies
    expect((await fetch(`${t.baseUrl}/health`)).status).toBe(200);

    database = await launchDatabase({ dataDir, port, log: () => undefined });

    await eventually(async () => expect((await fetch(`${t.baseUrl}/health/ready`)).status).toBe(200), 20_000);
    const read = await fetch(`${t.baseUrl}/api/v1/probe/items/before`);
    expect(read.status).toBe(200);
    expect((await post({ name: 'after', count: 3 })).status).toBe(201);
  });
});
