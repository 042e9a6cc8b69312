import type { TestAccount } from '../support/accounts.js';
import type { EnvironmentBody, EnvironmentsApp } from '../support/environments.js';
import { startAppBehindProxy, type AppBehindProxy } from '../support/kubernetes-proxied.js';
import { echoThrough, startPlainHttpServer, startPreviewServer, upgradeRefusal } from '../previews/preview-fixtures.js';

/** python's template declares 8000; the WebSocket echo server listens on a port its owner adds. */
const TEMPLATE_PORT = 8000;
const ADDED_PORT = 8001;

/**
 * Web previews with RUNTIME=kubernetes: the whole server on the cluster of the run (on the test
 * cluster, a real python container on its real node, whose pod IP is on a host bridge this host
 * reaches; no kube-proxy), the proxy connecting to the pod's IP (docs/previews.md).
 */
describe('web previews on Kubernetes', () => {
  let behindProxy: AppBehindProxy | undefined;
  let app: EnvironmentsApp;
  let owner: TestAccount & { id: string };
  let stranger: TestAccount & { id: string };
  let env: EnvironmentBody;

  beforeAll(async () => {
    behindProxy = await startAppBehindProxy('devpocket-k8s-previews');
    app = behindProxy.app;
    owner = await app.account('pro');
    stranger = await app.account('pro');
    env = await app.createRunning(owner, { name: 'Previews on Kubernetes', template: 'python' });
    const put = await app.json('PUT', `/api/v1/environments/${env.id}`, {
      token: owner.tokens.access_token,
      body: { ports: [ADDED_PORT] },
    });
    expect(put.status).toBe(200);
    // In a pod, servers listen on 0.0.0.0: the proxy reaches them on the pod's IP.
    await startPlainHttpServer(app, env, TEMPLATE_PORT, '0.0.0.0');
    await startPreviewServer(app, env, ADDED_PORT, '0.0.0.0');
  }, 240_000);

  afterAll(() => behindProxy?.close(), 120_000);

  const get = (path: string): Promise<Response> => fetch(`${app.baseUrl}${path}`, { redirect: 'manual' });

  /** Path form, first use with a token: 303 to the preview's address with its key in the path. */
  const admit = async (port: number, token = owner.tokens.access_token): Promise<string> => {
    const first = await get(`/preview/${env.id}/${port}/?devpocket_token=${token}`);
    expect(first.status).toBe(303);
    const location = first.headers.get('location') ?? '';
    expect(location).toMatch(new RegExp(`^/preview/${env.id}/${port}/~[\\w-]+\\.[\\w-]+/$`));
    return location;
  };

  it('lists the template’s port first: external_url and web_port', async () => {
    const body = await app.get(owner, env.id);
    expect(body).toMatchObject({ web_port: TEMPLATE_PORT });
    expect(body.external_url).toMatch(/\?devpocket_grant=/);
  });

  it('serves python3 -m http.server from the pod to its owner; anyone else gets 404', async () => {
    const page = await get(await admit(TEMPLATE_PORT));
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Served by python3 -m http.server');

    expect((await get(`/preview/${env.id}/${TEMPLATE_PORT}/?devpocket_token=${stranger.tokens.access_token}`)).status).toBe(404);
    expect((await get(`/preview/${env.id}/${TEMPLATE_PORT}/`)).status).toBe(404);
    // An undeclared port is a 404 even to the owner.
    expect((await get(`/preview/${env.id}/9999/?devpocket_token=${owner.tokens.access_token}`)).status).toBe(404);
  });

  it('proxies a WebSocket to the pod for its owner, and refuses anyone else before the upgrade', async () => {
    const keyed = `${app.baseUrl.replace('http', 'ws')}${await admit(ADDED_PORT)}echo`;
    expect(await echoThrough(keyed, 'from the test')).toBe('echo: from the test');
    const strangers = `${app.baseUrl.replace('http', 'ws')}/preview/${env.id}/${ADDED_PORT}/echo?devpocket_token=${stranger.tokens.access_token}`;
    expect(await upgradeRefusal(strangers)).toBe(404);
  });

  it('a stopped environment’s preview answers 503 to its owner', async () => {
    const keyed = await admit(TEMPLATE_PORT);
    expect((await app.json('POST', `/api/v1/environments/${env.id}/stop`, { token: owner.tokens.access_token })).status).toBeLessThan(300);
    await app.waitForPhase(owner, env.id, 'stopped');
    // A decision is reused for the same key for a few seconds (docs/previews.md): a request then
    // fails on the gone pod (502), which ends the reuse; the next one is told the environment stopped.
    const first = await get(keyed);
    expect([502, 503]).toContain(first.status);
    const answer = await get(keyed);
    expect(answer.status).toBe(503);
    expect(await answer.json()).toMatchObject({ code: 'preview_unavailable' });
  }, 120_000);
});
