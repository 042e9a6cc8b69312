import type { TestAccount } from '../support/accounts.js';
import { createEnvironmentsApp, EnvironmentsApp } from '../support/environments.js';
import { sampleValue, seriesOf } from '../support/prometheus.js';
import { TerminalTestClient } from '../support/terminal-client.js';
import { EnvironmentsRepository } from '../../src/environments/environments.repository.js';

/**
 * The Prometheus series of environments and of the runtime (docs/operations.md#metrics), scraped
 * from `/metrics` after real operations on the local runtime.
 */
describe('metrics of environments and the runtime', () => {
  let app: EnvironmentsApp;
  let owner: TestAccount & { id: string };

  beforeAll(async () => {
    app = await createEnvironmentsApp();
    owner = await app.account('pro');
  }, 120_000);

  afterAll(() => app?.close(), 120_000);

  const scrape = async (): Promise<string> => {
    const res = await fetch(`${app.baseUrl}/metrics`);
    expect(res.status).toBe(200);
    return res.text();
  };
  const operation = (text: string, name: string, outcome = 'ok'): number | null =>
    sampleValue(text, 'devpocket_runtime_operation_duration_seconds_count', { runtime: 'local', operation: name, outcome });

  it('counts environments by phase, times each runtime operation with its outcome, and has no Kubernetes series', async () => {
    const env = await app.createRunning(owner, { name: 'Measured' });
    const running = await scrape();
    expect(sampleValue(running, 'devpocket_environments', { phase: 'running' })).toBe(1);
    expect(sampleValue(running, 'devpocket_environments', { phase: 'stopped' })).toBe(0);
    expect(seriesOf(running, 'devpocket_environments').map((labels) => labels.phase)).toEqual(
      expect.arrayContaining([
        'provisioning',
        'starting',
        'running',
        'stopping',
        'stopped',
        'restarting',
        'terminating',
        'terminated',
        'error',
      ]),
    );

    const client = await TerminalTestClient.connect(app.baseUrl, env.id, { token: owner.tokens.access_token });
    await client.waitForFrame((frame) => frame.type === 'welcome');
    await client.close();
    const token = owner.tokens.access_token;
    expect((await app.json('GET', `/api/v1/environments/${env.id}/logs`, { token })).status).toBe(200);
    expect((await app.json('GET', `/api/v1/environments/${env.id}/metrics`, { token })).status).toBe(200);
    expect((await app.json('POST', `/api/v1/environments/${env.id}/stop`, { token })).status).toBeLessThan(300);
    await app.waitForPhase(owner, env.id, 'stopped');
    // A runtime's own refusal (exec in a stopped environment: 409) is `refused`, not an error.
    const spec = await app.service.specFor((await app.app.get(EnvironmentsRepository).findById(env.id))!);
    await expect(app.runtime.exec(spec, ['true'], { tty: false })).rejects.toThrow(/not running/);

    const text = await scrape();
    expect(sampleValue(text, 'devpocket_environments', { phase: 'running' })).toBe(0);
    expect(sampleValue(text, 'devpocket_environments', { phase: 'stopped' })).toBe(1);
    for (const name of ['provision', 'attach', 'logs', 'metrics', 'stop']) expect(operation(text, name)).toBeGreaterThanOrEqual(1);
    expect(operation(text, 'exec', 'refused')).toBe(1);
    expect(
      sampleValue(text, 'devpocket_runtime_operation_duration_seconds_bucket', {
        runtime: 'local',
        operation: 'provision',
        outcome: 'ok',
        le: '+Inf',
      }),
    ).toBe(operation(text, 'provision'));
    expect(text).not.toContain('kubernetes_api_requests_total');
  });
});
