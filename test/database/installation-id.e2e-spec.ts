/**
 * The installation id (src/settings/installation.ts): INSTALLATION_ID when configured, otherwise one
 * stored in the `settings` collection by the first server that booted, the same for every replica,
 * even replicas booting at the same moment.
 */
import mongoose, { type Connection } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Installation, INSTALLATION_ID_PATTERN } from '../../src/settings/installation.js';
import { SETTINGS_ID, SettingsRecord, SettingsSchema } from '../../src/settings/schemas/settings.schema.js';
import { SettingsRepository } from '../../src/settings/settings.repository.js';
import { createTestDatabase } from '../support/database.js';
import { createTestApp, type TestApp } from '../support/test-app.js';

describe('the installation id', () => {
  describe('in the settings collection', () => {
    const database = createTestDatabase('installation');
    let connection: Connection;

    beforeAll(async () => {
      connection = await mongoose.createConnection(database.uri, { maxPoolSize: 20 }).asPromise();
    });

    afterAll(async () => {
      await connection?.close();
      await database.drop();
    });

    it('is stored once: concurrent first callers all get the one id that won', async () => {
      const repository = new SettingsRepository(connection.model<SettingsRecord>(SettingsRecord.name, SettingsSchema));
      const candidates = Array.from({ length: 20 }, (_, index) => `candidate-${index}`);
      const ids = await Promise.all(candidates.map((candidate) => repository.installationId(candidate)));
      expect(new Set(ids).size).toBe(1);
      expect(candidates).toContain(ids[0]);
      expect(await repository.installationId('later')).toBe(ids[0]);
      const documents = await connection.collection('settings').find({}).toArray();
      expect(documents).toEqual([expect.objectContaining({ _id: SETTINGS_ID, installation_id: ids[0] })]);
    });
  });

  describe('of servers', () => {
    const database = createTestDatabase('installation-apps');
    const apps: TestApp[] = [];

    afterAll(async () => {
      for (const app of apps) await app.close();
      await database.drop();
    });

    it('is the same for two servers booting together on one database, and INSTALLATION_ID wins', async () => {
      apps.push(...(await Promise.all([createTestApp({ database }), createTestApp({ database })])));
      const [first, second] = apps.map((app) => app.app.get(Installation));
      expect(first?.source).toBe('database');
      expect(first?.id).toMatch(INSTALLATION_ID_PATTERN);
      expect(second?.id).toBe(first?.id);

      const configured = await createTestApp({ database, env: { INSTALLATION_ID: 'blue-cluster.1' } });
      apps.push(configured);
      expect(configured.app.get(Installation)).toMatchObject({ id: 'blue-cluster.1', source: 'configuration' });
    });
  });
});
