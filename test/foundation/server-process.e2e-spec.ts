import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase } from '../support/database.js';
import { ServerProcess } from '../support/server-process.js';
import { TEST_JWT_SECRET } from '../support/test-app.js';

const STRONG_SECRET = 'k3P9x-QvT7mZ2wLr8sYb4nHc6dJf1gUa0eXo5iRtVyWq';

describe('the server process', () => {
  describe('refuses bad configuration with one clear message per variable', () => {
    it('production without MONGODB_URI', async () => {
      const server = new ServerProcess({ NODE_ENV: 'production', JWT_SECRET: STRONG_SECRET });
      expect((await server.exited).code).toBe(78);
      expect(server.stderr).toContain('MONGODB_URI: is required in production');
    });

    it.each([
      ['missing', undefined, 'JWT_SECRET: is required in production'],
      ['short', 'Zx8#kq2!', 'JWT_SECRET: must be at least 32 bytes in production'],
      ['a placeholder', 'change-me-please-this-is-a-placeholder-secret', 'JWT_SECRET: looks like a placeholder'],
    ])('production with a %s JWT_SECRET, and the secret never printed', async (_label, secret, message) => {
      const env: Record<string, string> = { NODE_ENV: 'production', MONGODB_URI: 'mongodb://127.0.0.1:1' };
      if (secret !== undefined) env.JWT_SECRET = secret;
      const server = new ServerProcess(env);
      expect((await server.exited).code).toBe(78);
      expect(server.stderr).toContain(message);
      if (secret !== undefined) expect(server.stderr + server.stdout).not.toContain(secret);
    });

    it('every bad variable at once', async () => {
      const server = new ServerProcess({ PORT: 'eighty', LOG_LEVEL: 'loud', MONGODB_URI: 'postgres://nope' });
      expect((await server.exited).code).toBe(78);
      expect(server.stderr).toContain('PORT:');
      expect(server.stderr).toContain('LOG_LEVEL:');
      expect(server.stderr).toContain('MONGODB_URI: must be a mongodb:// or mongodb+srv:// URI');
    });
  });

  describe('with a database', () => {
    const database = createTestDatabase('process');
    afterAll(() => database.drop());

    it('keeps credentials out of its logs and shuts down cleanly on SIGTERM', async () => {
      const server = new ServerProcess({
        NODE_ENV: 'production',
        ALLOW_UNSANDBOXED_LOCAL_RUNTIME: 'true',
        MONGODB_URI: database.serverUri,
        MONGODB_DB_NAME: database.name,
        JWT_SECRET: TEST_JWT_SECRET,
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
      });
      const baseUrl = await server.listening();
      const bearer = 'eyJhbGciOiJIUzI1NiJ9.bearer-secret-value.sig';
      const queryToken = 'query-token-secret-value';
      const res = await fetch(`${baseUrl}/api/v1/anything?token=${queryToken}&access_token=${queryToken}2&page=2`, {
        headers: { Authorization: `Bearer ${bearer}`, Cookie: 'session=cookie-secret-value' },
      });
      expect(res.status).toBe(404);
      expect((await server.stop()).code).toBe(0);

      const requestLine = server.stdout.split('\n').find((line) => line.includes('"url":"/api/v1/anything'));
      expect(requestLine).toBeDefined();
      expect(JSON.parse(requestLine!)).toMatchObject({
        req: { url: '/api/v1/anything?token=[REDACTED]&access_token=[REDACTED]&page=2', method: 'GET' },
        res: { status: 404 },
      });
      const everything = server.stdout + server.stderr;
      for (const secret of [bearer, 'bearer-secret-value', queryToken, 'cookie-secret-value', TEST_JWT_SECRET]) {
        expect(everything).not.toContain(secret);
      }
      expect(everything).toContain('SIGTERM received');
      expect(everything).toContain('Stopped');
    });
  });

  describe('in development without MONGODB_URI', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'devpocket-dev-'));
    afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

    it('starts the embedded database under DATA_DIR/db, stops it on shutdown, and keeps the data', async () => {
      const env = { NODE_ENV: 'development', DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1' };
      const first = new ServerProcess(env);
      const baseUrl = await first.listening(180_000);
      expect((await fetch(`${baseUrl}/health/ready`)).status).toBe(200);
      expect(first.stdout).toContain(join(dataDir, 'db'));
      expect((await first.stop()).code).toBe(0);
      expect(readdirSync(join(dataDir, 'db')).length).toBeGreaterThan(0);
      expect(existsSync(join(dataDir, 'dev-jwt-secret'))).toBe(true);

      const second = new ServerProcess(env);
      const again = await second.listening(60_000);
      expect((await fetch(`${again}/health/ready`)).status).toBe(200);
      expect((await second.stop()).code).toBe(0);
    });
  });
});
