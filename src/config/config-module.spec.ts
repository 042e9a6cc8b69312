import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import { ConfigModule, ConfigService, type ConfigType } from '@nestjs/config';
import { Test, type TestingModule } from '@nestjs/testing';
import { CONFIG_NAMESPACES, configModule, loadConfiguration } from './configuration.js';
import { httpConfig } from './namespaces/http.config.js';
import { runtimeConfig } from './namespaces/runtime.config.js';

const SECRET = 'config-module-spec-secret-2b8e4f6a0c1d3e5f7a9b';

/** A provider injecting namespaces the way the application's providers do. */
@Injectable()
class Consumer {
  constructor(
    @Inject(httpConfig.KEY) readonly http: ConfigType<typeof httpConfig>,
    @Inject(runtimeConfig.KEY) readonly runtime: ConfigType<typeof runtimeConfig>,
  ) {}
}

describe('configModule', () => {
  const dirs: string[] = [];
  const modules: TestingModule[] = [];
  const scratch = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'devpocket-config-module-'));
    dirs.push(dir);
    return dir;
  };
  const compile = async (env: Record<string, string>): Promise<TestingModule> => {
    const configuration = loadConfiguration({ JWT_SECRET: SECRET, ...env });
    const moduleRef = await Test.createTestingModule({ imports: [configModule(configuration)], providers: [Consumer] }).compile();
    modules.push(moduleRef);
    return moduleRef;
  };

  afterEach(async () => {
    for (const moduleRef of modules.splice(0)) await moduleRef.close();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('provides every namespace of the configuration under its key', async () => {
    const configuration = loadConfiguration({ DATA_DIR: scratch(), JWT_SECRET: SECRET });
    const moduleRef = await Test.createTestingModule({ imports: [configModule(configuration)] }).compile();
    modules.push(moduleRef);
    for (const namespace of CONFIG_NAMESPACES) {
      expect(moduleRef.get(namespace.KEY)).toBe(configuration[namespace.NAMESPACE]);
    }
    expect(moduleRef.get(ConfigService).get<number>('http.rateLimitMax')).toBe(600);
  });

  it('gives each application in the process its own values', async () => {
    const [a, b] = await Promise.all([
      compile({ DATA_DIR: scratch(), RATE_LIMIT_MAX: '5', TEMPLATES_DIR: '/srv/a' }),
      compile({ DATA_DIR: scratch(), RATE_LIMIT_MAX: '7', TEMPLATES_DIR: '/srv/b' }),
    ]);
    expect([a.get(Consumer).http.rateLimitMax, b.get(Consumer).http.rateLimitMax]).toEqual([5, 7]);
    expect([a.get(Consumer).runtime.templatesDir, b.get(Consumer).runtime.templatesDir]).toEqual(['/srv/a', '/srv/b']);
    expect([a.get(ConfigService).get<number>('http.rateLimitMax'), b.get(ConfigService).get<number>('http.rateLimitMax')]).toEqual([5, 7]);
  });

  it('neither reads nor writes process.env', async () => {
    const before = { ...process.env };
    process.env.RATE_LIMIT_MAX = '3';
    try {
      const moduleRef = await compile({ DATA_DIR: scratch(), NODE_ENV: 'test', PORT: '9123', SWAGGER_ENABLED: 'false' });
      expect(moduleRef.get(Consumer).http.rateLimitMax).toBe(600);
      // ConfigService does not fall back to the process environment either.
      expect(moduleRef.get(ConfigService).get('RATE_LIMIT_MAX')).toBeUndefined();
      expect(moduleRef.get(ConfigService).get('PATH')).toBeUndefined();
      delete process.env.RATE_LIMIT_MAX;
      expect(process.env).toEqual(before);
    } finally {
      delete process.env.RATE_LIMIT_MAX;
    }
  });

  it('refuses to load a namespace the stock way, from process.env', async () => {
    expect(() => httpConfig()).toThrow(
      'The http configuration is loaded per application by configModule(configuration), not from process.env',
    );
    const attempt = Test.createTestingModule({ imports: [ConfigModule.forRoot({ ignoreEnvFile: true, load: [httpConfig] })] }).compile();
    await expect(attempt).rejects.toThrow(/loaded per application by configModule/);
  });
});
