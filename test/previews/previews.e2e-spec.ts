import { request } from 'node:http';
import { PATH_FORM_CSP } from '../../src/previews/preview-proxy.js';
import type { TestAccount } from '../support/accounts.js';
import { createEnvironmentsApp, EnvironmentBody, EnvironmentsApp } from '../support/environments.js';
import { eventually } from '../support/eventually.js';
import { echoThrough, freePort, startPreviewServer, upgradeRefusal } from './preview-fixtures.js';

interface Reply {
  status: number;
  headers: { get(name: string): string | null };
  json(): unknown;
}

interface HeadersEcho {
  path: string;
  headers: Record<string, string>;
}

/**
 * Web previews over HTTP and WebSocket, without a browser: who gets through, what the environment's
 * server sees, and the grant of external_url. The browser's side is in previews-browser.e2e-spec.ts.
 */
describe('web previews', () => {
  let app: EnvironmentsApp;
  let owner: TestAccount & { id: string };
  let stranger: TestAccount & { id: string };
  let env: EnvironmentBody;
  let port: number;

  beforeAll(async () => {
    app = await createEnvironmentsApp({ env: { PREVIEW_DOMAIN: 'localhost' } });
    owner = await app.account('free');
    stranger = await app.account('free');
    env = await app.createRunning(owner);
    port = await freePort();
    const put = await app.json<EnvironmentBody>('PUT', `/api/v1/environments/${env.id}`, {
      token: owner.tokens.access_token,
      body: { ports: [port] },
    });
    expect(put.status).toBe(200);
    await startPreviewServer(app, env, port);
  }, 120_000);
  afterAll(() => app?.close(), 120_000);

  const pathBase = (): string => `${app.baseUrl}/preview/${env.id}/${port}`;
  const hostBase = (): string => `http://${port}-${env.id}.localhost:${new URL(app.baseUrl).port}`;

  /**
   * A GET without following redirects. A `*.localhost` host (the subdomain form) is sent to this
   * server with that Host header: browsers resolve `*.localhost` to loopback, Node's resolver does not.
   */
  const get = (url: string, headers: Record<string, string> = {}): Promise<Reply> => {
    const target = new URL(url);
    return new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: target.port, path: `${target.pathname}${target.search}`, headers: { ...headers, host: target.host } },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => {
            const header = (name: string): string | null => {
              const value = res.headers[name];
              return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
            };
            resolve({ status: res.statusCode ?? 0, headers: { get: header }, json: () => JSON.parse(body) as unknown });
          });
        },
      );
      req.on('error', reject);
      req.end();
    });
  };

  /** Subdomain form, first use with the access token: a cookie of its host and a redirect to the clean address. */
  const admitHost = async (token = owner.tokens.access_token): Promise<string> => {
    const first = await get(`${hostBase()}/headers?devpocket_token=${token}&keep=1`);
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe('/headers?keep=1');
    const cookie = first.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/^devpocket_preview=[^;]+; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax$/);
    return cookie.split(';')[0];
  };

  /** Path form, first use: a redirect to the preview's address with its key in the path (no cookie: sandboxed pages send none). */
  const admitPath = async (token = owner.tokens.access_token): Promise<string> => {
    const first = await get(`${pathBase()}/headers?devpocket_token=${token}&keep=1`);
    expect(first.status).toBe(303);
    expect(first.headers.get('set-cookie')).toBeNull();
    const location = first.headers.get('location') ?? '';
    const keyed = new RegExp(`^/preview/${env.id}/${port}/~([\\w-]+\\.[\\w-]+)/headers\\?keep=1$`).exec(location);
    expect(keyed).not.toBeNull();
    return `${app.baseUrl}/preview/${env.id}/${port}/~${keyed![1]}`;
  };

  it('lists the template’s and the added ports’ previews on GET, with external_url and web_port', async () => {
    const res = await app.json<EnvironmentBody & { previews: { port: number; url: string; name: string | null; open_url: string }[] }>(
      'GET',
      `/api/v1/environments/${env.id}`,
      { token: owner.tokens.access_token },
    );
    // Without PUBLIC_URL, on the address the client used (its port), under PREVIEW_DOMAIN.
    const clean = `${hostBase()}/`;
    expect(res.body.previews).toEqual([{ port, name: null, url: clean, open_url: expect.stringMatching(/\?devpocket_grant=/) as unknown }]);
    expect(res.body.web_port).toBe(port);
    expect(res.body.external_url).toMatch(new RegExp(`^${clean.replace(/\./g, '\\.')}\\?devpocket_grant=[\\w-]+\\.[\\w-]+$`));
  });

  it('path form: the owner’s token becomes a key in the path; the environment never sees DevPocket’s credentials', async () => {
    const keyed = await admitPath();
    await eventually(async () => expect((await get(`${keyed}/headers`)).status).toBe(200), 15_000, 200);
    // A token again means a first use again: redirected, never forwarded.
    expect((await get(`${keyed}/headers?devpocket_token=${owner.tokens.access_token}`)).status).toBe(303);
    const proxied = await get(`${keyed}/headers?x=1`, { cookie: 'theirs=kept', authorization: `Bearer ${owner.tokens.access_token}` });
    expect(proxied.status).toBe(200);
    const echo = proxied.json() as HeadersEcho;
    expect(echo.path).toBe('/headers?x=1');
    expect(echo.headers.cookie).toBe('theirs=kept');
    expect(echo.headers.authorization).toBeUndefined();
    expect(JSON.stringify(echo)).not.toContain(owner.tokens.access_token);
    expect(proxied.headers.get('content-security-policy')).toBe(PATH_FORM_CSP);
    expect(proxied.headers.get('referrer-policy')).toBe('no-referrer');
    // The environment's cookies stay inside its preview.
    expect(proxied.headers.get('set-cookie')).toBe(`app_cookie=from-the-app; Path=${new URL(keyed).pathname}/`);
    // Without its key, the path form is nobody's.
    expect((await get(`${pathBase()}/headers`)).status).toBe(404);
  });

  it('subdomain form: the same, on its own host (no sandbox needed: another origin)', async () => {
    const cookie = await admitHost();
    const res = await get(`${hostBase()}/headers`, { cookie: `${cookie}; theirs=kept`, authorization: 'Bearer x' });
    expect(res.status).toBe(200);
    const echo = res.json() as HeadersEcho;
    expect(echo.path).toBe('/headers');
    expect(echo.headers.cookie).toBe('theirs=kept');
    expect(echo.headers.authorization).toBeUndefined();
    expect(res.headers.get('content-security-policy')).toBeNull();
    expect(res.headers.get('set-cookie')).toBe('app_cookie=from-the-app; Path=/');
  });

  it('answers 404 to anyone else, to no credentials, to an undeclared port, and to a cookie of another preview', async () => {
    expect((await get(`${pathBase()}/`)).status).toBe(404);
    expect((await get(`${pathBase()}/?devpocket_token=${stranger.tokens.access_token}`)).status).toBe(404);
    expect((await get(`${pathBase()}/?devpocket_token=${owner.tokens.refresh_token}`)).status).toBe(404);
    const other = port === 65_535 ? port - 1 : port + 1;
    expect((await get(`${app.baseUrl}/preview/${env.id}/${other}/?devpocket_token=${owner.tokens.access_token}`)).status).toBe(404);
    expect((await get(`${app.baseUrl}/preview/${'0'.repeat(24)}/${port}/?devpocket_token=${owner.tokens.access_token}`)).status).toBe(404);
    expect((await get(`${app.baseUrl}/preview/nonsense`)).status).toBe(404);
    // A key or cookie is for its own preview only.
    const key = new URL(await admitPath()).pathname.split('/~')[1];
    expect((await get(`${app.baseUrl}/preview/${env.id}/${other}/~${key}/`)).status).toBe(404);
    expect((await get(`${app.baseUrl}/preview/${env.id}/${port}/~${key}x/`)).status).toBe(404);
    const cookie = await admitHost();
    expect((await get(`http://${other}-${env.id}.localhost:${new URL(app.baseUrl).port}/`, { cookie })).status).toBe(404);
  });

  it('external_url: its grant works with no token at all, sets the cookie and leaves the address', async () => {
    const res = await app.json<EnvironmentBody>('GET', `/api/v1/environments/${env.id}`, { token: owner.tokens.access_token });
    const external = new URL(res.body.external_url!);
    expect(external.origin).toBe(hostBase());
    const first = await get(external.href);
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe('/');
    const cookie = (first.headers.get('set-cookie') ?? '').split(';')[0];
    expect((await get(`${hostBase()}/headers`, { cookie })).status).toBe(200);
    // A grant is for its own preview only.
    const grant = external.searchParams.get('devpocket_grant')!;
    expect((await get(`${pathBase()}/?devpocket_grant=${grant}x`)).status).toBe(404);
  });

  it('proxies a WebSocket (echo) for the owner, and refuses anyone else before the upgrade', async () => {
    const keyed = await admitPath();
    expect(await echoThrough(`${keyed.replace('http', 'ws')}/echo`, 'hello')).toBe('echo: hello');
    const refused = await upgradeRefusal(`${pathBase().replace('http', 'ws')}/echo?devpocket_token=${stranger.tokens.access_token}`);
    expect(refused).toBe(404);
  });

  it('ends the key and the cookie with the sign-in session that made them', async () => {
    const session = await app.json<{ access_token: string }>('POST', '/api/v1/auth/login', {
      body: { username_or_email: owner.username, password: owner.password },
    });
    const keyed = await admitPath(session.body.access_token);
    const cookie = await admitHost(session.body.access_token);
    expect((await get(`${keyed}/headers`)).status).toBe(200);
    expect((await get(`${hostBase()}/headers`, { cookie })).status).toBe(200);
    await app.json('POST', '/api/v1/auth/logout', { token: session.body.access_token });
    // At once: the admissions reused for a page's burst of requests end with the sign-out too.
    expect((await get(`${keyed}/headers`)).status).toBe(404);
    expect((await get(`${hostBase()}/headers`, { cookie })).status).toBe(404);
  });

  it('refuses invalid ports on PUT (422), and [] removes the added ones', async () => {
    const put = (ports: unknown) =>
      app.json<{ code: string }>('PUT', `/api/v1/environments/${env.id}`, { token: owner.tokens.access_token, body: { ports } });
    for (const bad of [[0], [65_536], [1.5], ['80'], [80, 80], Array.from({ length: 11 }, (_, i) => 3000 + i), 8080])
      expect((await put(bad)).status).toBe(422);
    const cleared = await app.json<EnvironmentBody & { previews: unknown[] }>('PUT', `/api/v1/environments/${env.id}`, {
      token: owner.tokens.access_token,
      body: { ports: [] },
    });
    expect(cleared.status).toBe(200);
    expect(cleared.body.previews).toEqual([]);
    expect(cleared.body.external_url).toBeNull();
    expect(cleared.body.web_port).toBeNull();
  });
});
