import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { EnvironmentsRepository } from '../../src/environments/environments.repository.js';
import { EnvironmentsReconciler } from '../../src/environments/environments.reconciler.js';
import { EnvironmentsService } from '../../src/environments/environments.service.js';
import { RuntimeProvider } from '../../src/runtime/runtime.provider.js';
import type { PlanName } from '../../src/users/plans.js';
import { UsersRepository } from '../../src/users/users.repository.js';
import { AccountsApp, createAccountsApp, TestAccount } from './accounts.js';
import { eventually } from './eventually.js';
import type { TestAppOptions } from './test-app.js';

export interface EnvironmentBody {
  id: string;
  name: string;
  slug: string;
  template_id: string;
  template: string;
  status: string;
  phase: string;
  status_message: string | null;
  installation_completed: boolean;
  installation_progress: number | null;
  resource_limits: { cpu: string; memory: string; storage: string };
  resources: { cpu: string; memory: string; storage: string };
  environment_variables: Record<string, string>;
  created_at: string;
  updated_at: string;
  last_accessed: string | null;
  external_url: string | null;
  web_port: number | null;
  ssh_port: number | null;
}

export interface EnvironmentsApp extends AccountsApp {
  runtime: RuntimeProvider;
  service: EnvironmentsService;
  reconciler: EnvironmentsReconciler;
  /** A registered account on the given plan. */
  account(plan?: PlanName): Promise<TestAccount & { id: string }>;
  /** Creates an environment and waits until it runs. */
  createRunning(account: TestAccount, body?: Record<string, unknown>): Promise<EnvironmentBody>;
  get(account: TestAccount, id: string): Promise<EnvironmentBody>;
  /** Waits until the environment reaches the phase (through the API, as a client would). */
  waitForPhase(account: TestAccount, id: string, phase: string, timeoutMs?: number): Promise<EnvironmentBody>;
  environmentDir(id: string): string;
  exists(id: string): boolean;
}

/** The application with the local runtime under a scratch DATA_DIR, and account helpers. */
export async function createEnvironmentsApp(options: TestAppOptions = {}): Promise<EnvironmentsApp> {
  const app = await createAccountsApp(options);
  const users = app.app.get(UsersRepository);
  const account: EnvironmentsApp['account'] = async (plan = 'free') => {
    const created = await app.register();
    const me = await app.json<{ id: string }>('GET', '/api/v1/users/me', { token: created.tokens.access_token });
    if (plan !== 'free') await users.updateAsAdmin(me.body.id, { plan });
    return { ...created, id: me.body.id };
  };
  const get: EnvironmentsApp['get'] = async (acc, id) => {
    const res = await app.json<EnvironmentBody>('GET', `/api/v1/environments/${id}`, { token: acc.tokens.access_token });
    if (res.status !== 200) throw new Error(`GET environment ${id}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const waitForPhase: EnvironmentsApp['waitForPhase'] = (acc, id, phase, timeoutMs = 60_000) =>
    eventually(async () => {
      const body = await get(acc, id);
      if (body.phase !== phase) throw new Error(`environment ${id} is ${body.phase} (${body.status_message ?? ''}), waiting for ${phase}`);
      return body;
    }, timeoutMs);
  const createRunning: EnvironmentsApp['createRunning'] = async (acc, body = {}) => {
    const res = await app.json<EnvironmentBody>('POST', '/api/v1/environments', {
      token: acc.tokens.access_token,
      body: { name: 'Test Environment', template: 'debian', ...body },
    });
    if (res.status !== 201) throw new Error(`create: ${res.status} ${JSON.stringify(res.body)}`);
    return waitForPhase(acc, res.body.id, 'running');
  };
  const environmentDir = (id: string): string => join(app.configuration.runtime.localRoot, id);
  return {
    ...app,
    runtime: app.app.get(RuntimeProvider),
    service: app.app.get(EnvironmentsService),
    reconciler: app.app.get(EnvironmentsReconciler),
    account,
    createRunning,
    get,
    waitForPhase,
    environmentDir,
    exists: (id) => existsSync(environmentDir(id)),
    close: async () => {
      const service = app.app.get(EnvironmentsService);
      const runtime = app.app.get(RuntimeProvider);
      await service.idle();
      // Leave nothing behind: destroy whatever the runtime still holds of this application's environments.
      // (A local runtime's DATA_DIR is this application's alone: everything in it goes.)
      const held = await runtime.list();
      const ours = runtime.kind === 'local' ? new Set(held) : await app.app.get(EnvironmentsRepository).existingIds(held);
      for (const id of held.filter((candidate) => ours.has(candidate))) {
        const { specForOrphan } = await import('../../src/environments/orphan-spec.js');
        await runtime.destroy(specForOrphan(id));
      }
      await app.close();
    },
  };
}
