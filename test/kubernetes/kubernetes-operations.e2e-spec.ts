import { WebSocket } from 'ws';
import { ReadinessPolicy } from '../../src/common/health/runtime-health.js';
import type { TestAccount } from '../support/accounts.js';
import type { EnvironmentsApp } from '../support/environments.js';
import { eventually } from '../support/eventually.js';
import type { FaultProxy } from '../support/k8s/fault-proxy.js';
import { startAppBehindProxy, type AppBehindProxy } from '../support/kubernetes-proxied.js';
import { sampleValue } from '../support/prometheus.js';

interface ReadyBody {
  detail?: string;
  code?: string;
  details?: Record<string, { status: string; [key: string]: unknown }>;
}

/**
 * What operators see of the Kubernetes runtime, on the whole server with its provider behind the
 * fault proxy: `/health/ready` (the API server's reachability, with hysteresis), a stopped
 * environment's log (REST and the logs WebSocket), and the Prometheus series of the runtime and its
 * API requests.
 */
describe('the Kubernetes runtime, as operators see it', () => {
  let proxy: FaultProxy;
  let behindProxy: AppBehindProxy | undefined;
  let app: EnvironmentsApp;
  let owner: TestAccount & { id: string };

  const ready = async (): Promise<{ status: number; body: ReadyBody }> => {
    const res = await fetch(`${app.baseUrl}/health/ready`);
    return { status: res.status, body: (await res.json()) as ReadyBody };
  };
  const scrape = async (): Promise<string> => (await fetch(`${app.baseUrl}/metrics`)).text();
  const requests = (text: string, verb: string, resource: string, code: string): number =>
    sampleValue(text, 'kubernetes_api_requests_total', { verb, resource, code }) ?? 0;

  beforeAll(async () => {
    behindProxy = await startAppBehindProxy('devpocket-k8s-ops', {
      // Every probe checks (no cache), a check fails after 1 s, three failures in a row make it not ready.
      override: (builder) =>
        builder.overrideProvider(ReadinessPolicy).useValue(new ReadinessPolicy({ cacheMs: 0, timeoutMs: 1_000, failureThreshold: 3 })),
    });
    ({ app, proxy } = behindProxy);
    owner = await app.account('pro');
  }, 120_000);

  afterEach(() => proxy.clear());

  afterAll(() => behindProxy?.close(), 120_000);

  it('readiness rides out one failed and one slow call, turns 503 in a sustained outage, and comes back', async () => {
    const version = /^\/version/;
    const first = await ready();
    expect(first.status).toBe(200);
    expect(first.body.details?.runtime).toMatchObject({ status: 'up', runtime: 'kubernetes' });
    expect(String(first.body.details?.runtime?.detail)).toMatch(/^Kubernetes API v\d/);

    proxy.fail({ path: version }, { status: 503, times: 1 });
    const failedOnce = await ready();
    expect(failedOnce.status).toBe(200);
    expect(failedOnce.body.details?.runtime).toMatchObject({ status: 'up', consecutive_failures: 1 });
    expect((await ready()).body.details?.runtime).toMatchObject({ status: 'up' });
    expect((await ready()).body.details?.runtime).not.toHaveProperty('consecutive_failures');

    proxy.delay({ path: version }, 3_000, { times: 1 });
    const slowOnce = await ready();
    expect(slowOnce.status).toBe(200);
    expect(slowOnce.body.details?.runtime).toMatchObject({ status: 'up', consecutive_failures: 1 });
    expect(String(slowOnce.body.details?.runtime?.failing)).toMatch(/timed out/);
    expect((await ready()).body.details?.runtime).not.toHaveProperty('consecutive_failures');

    proxy.fail({ path: version }, { status: 503, message: 'etcdserver: leader changed' });
    expect((await ready()).status).toBe(200);
    expect((await ready()).status).toBe(200);
    const outage = await ready();
    expect(outage.status).toBe(503);
    expect(outage.body).toMatchObject({ code: 'not_ready' });
    expect(outage.body.detail).toMatch(
      /^Not ready: runtime is down: the Kubernetes API did not answer: etcdserver: leader changed \(HTTP 503\)/,
    );
    expect((await fetch(`${app.baseUrl}/health/live`)).status).toBe(200);

    proxy.clear();
    await eventually(async () => expect((await ready()).status).toBe(200));

    const text = await scrape();
    expect(requests(text, 'get', '/version', '503')).toBeGreaterThanOrEqual(4);
    expect(requests(text, 'get', '/version', '200')).toBeGreaterThanOrEqual(3);
  });

  it("serves a stopped environment's log (REST and the logs WebSocket), and exports the series of what was done", async () => {
    const env = await app.createRunning(owner, { name: 'Stopped but readable', template: 'debian' });
    const token = owner.tokens.access_token;
    expect((await app.json('POST', `/api/v1/environments/${env.id}/stop`, { token })).status).toBeLessThan(300);
    await app.waitForPhase(owner, env.id, 'stopped');

    const page = await app.json<{ logs: string[]; total: number }>('GET', `/api/v1/environments/${env.id}/logs?lines=1000`, { token });
    expect(page.status).toBe(200);
    expect(page.body.logs.some((line) => line.includes('[runtime] started: pod'))).toBe(true);
    expect(page.body.logs.at(-1)).toMatch(/^\S+ \[runtime\] stopped$/);

    const socket = new WebSocket(`${app.baseUrl.replace('http', 'ws')}/api/v1/ws/logs/${env.id}?token=${token}&lines=3`);
    const received: string[] = [];
    socket.on('message', (data: Buffer) => received.push((JSON.parse(data.toString()) as { line: string }).line));
    try {
      await eventually(() => expect(received).toEqual(page.body.logs.slice(-3)), 20_000);
    } finally {
      socket.close();
    }

    const text = await scrape();
    expect(sampleValue(text, 'devpocket_environments', { phase: 'stopped' })).toBeGreaterThanOrEqual(1);
    const operation = (name: string): number =>
      sampleValue(text, 'devpocket_runtime_operation_duration_seconds_count', { runtime: 'kubernetes', operation: name, outcome: 'ok' }) ??
      0;
    for (const name of ['provision', 'status', 'stop', 'logs']) expect(operation(name)).toBeGreaterThanOrEqual(1);
    expect(requests(text, 'create', 'apps/statefulsets', '201')).toBeGreaterThanOrEqual(1);
    expect(requests(text, 'patch', 'apps/statefulsets', '200')).toBeGreaterThanOrEqual(1);
    expect(requests(text, 'create', 'configmaps', '201')).toBeGreaterThanOrEqual(2);
    expect(requests(text, 'get', 'pods', '200')).toBeGreaterThanOrEqual(1);
    expect(requests(text, 'get', 'pods', '404')).toBeGreaterThanOrEqual(1);
    expect(requests(text, 'list', 'pods', '200')).toBeGreaterThanOrEqual(1);
    expect(requests(text, 'watch', 'pods', '200')).toBeGreaterThanOrEqual(1);
    expect(requests(text, 'create', 'pods/exec', '101')).toBeGreaterThanOrEqual(1);

    expect((await app.json('DELETE', `/api/v1/environments/${env.id}`, { token })).status).toBe(200);
    await app.waitForPhase(owner, env.id, 'terminated');
  }, 180_000);
});
