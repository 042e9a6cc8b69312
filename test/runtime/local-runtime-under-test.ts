/** The local runtime under test: a data directory of its own, a runtime (or several, as after a restart) on it, specs of the contract's template. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SystemClock } from '../../src/common/clock/clock.js';
import { loadConfiguration } from '../../src/config/configuration.js';
import type { AppConfig } from '../../src/config/namespaces/app.config.js';
import type { RuntimeConfig } from '../../src/config/namespaces/runtime.config.js';
import { LocalRuntime, LocalRuntimeOptions } from '../../src/runtime/local/local-runtime.js';
import type { EnvironmentSpec } from '../../src/runtime/runtime.provider.js';
import { contractTemplate, RuntimeUnderTest, SpecOverrides } from './runtime-contract.js';

export type Sandbox = RuntimeConfig['localSandbox'];

/** A data directory of its own (short, under /tmp: tmux socket paths are limited to 107 bytes). */
function scratchDataDir(): string {
  return mkdtempSync('/tmp/dp-rt-');
}

function configs(dataDir: string, localSandbox: Sandbox): { runtime: RuntimeConfig; app: AppConfig } {
  return {
    runtime: {
      kind: 'local',
      localSandbox,
      localRoot: join(dataDir, 'environments'),
      templatesDir: join(dataDir, 'templates'),
      retentionDays: 30,
      kubernetes: loadConfiguration({}).runtime.kubernetes,
    },
    app: {
      nodeEnv: 'test',
      isProduction: false,
      host: '127.0.0.1',
      port: 0,
      dataDir,
      swaggerEnabled: false,
      shutdownTimeoutMs: 5000,
    },
  };
}

export function newId(): string {
  return randomBytes(12).toString('hex');
}

export function specFor(overrides: SpecOverrides = {}): EnvironmentSpec {
  const template = contractTemplate(overrides.template);
  return {
    id: newId(),
    slug: 'contract-test',
    userId: 'a'.repeat(24),
    template,
    resources: template.defaultResources,
    environmentVariables: { ...template.environmentVariables, ...overrides.environmentVariables },
  };
}

export interface LocalUnderTest extends RuntimeUnderTest {
  runtime: LocalRuntime;
  dataDir: string;
  instance(options?: LocalRuntimeOptions): LocalRuntime;
}

export async function localRuntimeUnderTest(localSandbox: Sandbox, options: LocalRuntimeOptions = {}): Promise<LocalUnderTest> {
  const dataDir = scratchDataDir();
  const { runtime: runtimeConfig, app } = configs(dataDir, localSandbox);
  const instances: LocalRuntime[] = [];
  const instance = (extra: LocalRuntimeOptions = {}): LocalRuntime => {
    const created = new LocalRuntime(runtimeConfig, app, new SystemClock(), { ...options, ...extra });
    instances.push(created);
    return created;
  };
  const runtime = instance();
  return {
    runtime,
    dataDir,
    instance,
    spec: specFor,
    anotherInstance: async () => instance(),
    cleanup: async () => {
      for (const id of await runtime.list()) await runtime.destroy({ ...specFor(), id });
      for (const each of instances) await each.onApplicationShutdown();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
