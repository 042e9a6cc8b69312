import { mkdtempSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../../src/common/clock/clock.js';
import { ReadinessPolicy } from '../../src/common/health/runtime-health.js';
import type { AppConfig } from '../../src/config/namespaces/app.config.js';
import type { RuntimeConfig } from '../../src/config/namespaces/runtime.config.js';
import { findExecutable } from '../../src/runtime/local/local-host.js';
import type { RuntimeInstrumentation } from '../../src/runtime/runtime-instrumentation.js';
import type { Installation } from '../../src/settings/installation.js';
import { createRuntime, RUNTIME_DEPENDENCIES } from '../../src/runtime/runtime.module.js';
import { RuntimeProvider } from '../../src/runtime/runtime.provider.js';
import { createTestApp, TestApp } from '../support/test-app.js';

interface ReadyBody {
  status?: string;
  detail?: string;
  code?: string;
  details?: Record<string, { status: string; [key: string]: unknown }>;
}

/**
 * `/health/ready` with the local runtime: ready while tmux runs; not ready, with the reason, once
 * tmux is gone from the runtime's PATH (after the policy's failures in a row), and ready again when
 * it is back. The real LocalRuntime, given a PATH of its own: a directory holding a link to tmux.
 */
describe('/health/ready: the local runtime', () => {
  let t: TestApp;
  let bin: string;
  let tmux: string;
  const ready = async (): Promise<{ status: number; body: ReadyBody }> => {
    const res = await fetch(`${t.baseUrl}/health/ready`);
    return { status: res.status, body: (await res.json()) as ReadyBody };
  };

  beforeAll(async () => {
    tmux = (await findExecutable('tmux', process.env.PATH ?? '')) ?? 'tmux';
    bin = mkdtempSync(join(tmpdir(), 'devpocket-ready-'));
    symlinkSync(tmux, join(bin, 'tmux'));
    t = await createTestApp({
      override: (builder) =>
        builder
          .overrideProvider(RuntimeProvider)
          .useFactory({
            inject: RUNTIME_DEPENDENCIES,
            factory: (
              config: RuntimeConfig,
              app: AppConfig,
              clock: Clock,
              instrumentation: RuntimeInstrumentation,
              installation: Installation,
            ) => createRuntime(config, app, clock, instrumentation, installation, { local: { path: bin } }),
          })
          .overrideProvider(ReadinessPolicy)
          .useValue(new ReadinessPolicy({ cacheMs: 0, failureThreshold: 2 })),
    });
  });

  afterAll(async () => {
    await t?.close();
    rmSync(bin, { recursive: true, force: true });
  });

  it('is ready while tmux runs, and says which', async () => {
    const { status, body } = await ready();
    expect(status).toBe(200);
    expect(body.details?.runtime).toMatchObject({ status: 'up', runtime: 'local' });
    expect(String(body.details?.runtime?.detail)).toMatch(/^tmux \S+/);
    expect(body.details?.mongodb?.status).toBe('up');
  });

  it('answers 503 with the reason once tmux is gone (after two failed checks in a row), stays live, and recovers', async () => {
    unlinkSync(join(bin, 'tmux'));
    const first = await ready();
    expect(first.status).toBe(200);
    expect(first.body.details?.runtime).toMatchObject({ status: 'up', consecutive_failures: 1, failing: 'tmux was not found on PATH' });

    const second = await ready();
    expect(second.status).toBe(503);
    expect(second.body).toMatchObject({ code: 'not_ready', detail: 'Not ready: runtime is down: tmux was not found on PATH' });
    expect((await fetch(`${t.baseUrl}/health/live`)).status).toBe(200);

    symlinkSync(tmux, join(bin, 'tmux'));
    const back = await ready();
    expect(back.status).toBe(200);
    expect(back.body.details?.runtime).toMatchObject({ status: 'up', runtime: 'local' });
  });
});
