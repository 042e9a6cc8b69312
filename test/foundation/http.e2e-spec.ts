import { request } from 'node:http';
import { ProbeModule } from '../support/probe.module.js';
import { createTestApp, TestApp } from '../support/test-app.js';

interface ErrorBody {
  detail: string;
  code: string;
  errors?: { field: string; message: string; code?: string }[];
  path: string;
  timestamp: string;
  request_id: string;
}

interface RawResponse {
  status: number;
  headers: Headers;
  body: string;
}

/** A request with any method (fetch refuses some, e.g. TRACE). */
function rawRequest(baseUrl: string, method: string, path: string, headers: Record<string, string>): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(`${baseUrl}${path}`, { method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        const received = new Headers();
        for (const [name, value] of Object.entries(res.headers)) if (typeof value === 'string') received.set(name, value);
        resolve({ status: res.statusCode ?? 0, headers: received, body });
      });
    });
    req.once('error', reject);
    req.end();
  });
}

function expectErrorBody(body: ErrorBody, code: string, path: string): void {
  expect(typeof body.detail).toBe('string');
  expect(body.detail.length).toBeGreaterThan(0);
  expect(body.code).toBe(code);
  expect(body.path).toBe(path);
  expect(new Date(body.timestamp).toISOString()).toBe(body.timestamp);
  expect(body.request_id).toMatch(/\S+/);
}

describe('HTTP foundation', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp({ imports: [ProbeModule] });
  });

  afterAll(async () => {
    await t.close();
  });

  const get = (path: string, init?: RequestInit): Promise<Response> => fetch(`${t.baseUrl}${path}`, init);
  const postJson = (path: string, body: string): Promise<Response> =>
    fetch(`${t.baseUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

  describe('health', () => {
    it.each(['/health', '/health/live'])('%s answers 200 without the API prefix', async (path) => {
      const res = await get(path);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ok' });
    });

    it('/health/ready answers 200 when MongoDB answers', async () => {
      const res = await get('/health/ready');
      expect(res.status).toBe(200);
      const body = (await res.json()) as { status: string; details: Record<string, { status: string }> };
      expect(body.status).toBe('ok');
      expect(body.details.mongodb?.status).toBe('up');
    });
  });

  describe('trailing slashes are answered directly, never redirected', () => {
    it.each(['/health/', '/health/live/', '/health/ready/', '/docs-json/'])('%s', async (path) => {
      const res = await get(path, { redirect: 'manual' });
      expect(res.status).toBe(200);
      expect(res.headers.get('location')).toBeNull();
    });

    it('a parameterised API route with a trailing slash reaches its handler', async () => {
      const res = await get('/api/v1/probe/items/none/', { redirect: 'manual' });
      expect(res.status).toBe(404);
      expect(((await res.json()) as ErrorBody).detail).toBe('No probe item named none');
    });

    it('POST with a trailing slash reaches the route', async () => {
      const res = await postJson('/api/v1/probe/items/', JSON.stringify({ name: 'slash', count: 1 }));
      expect(res.status).toBe(201);
      expect(await res.json()).toEqual({ name: 'slash', count: 1 });
    });
  });

  describe('the one error body', () => {
    it('unknown route: 404', async () => {
      const res = await get('/api/v1/does-not-exist');
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toContain('application/json');
      const body = (await res.json()) as ErrorBody;
      expectErrorBody(body, 'not_found', '/api/v1/does-not-exist');
      expect(body.detail).toContain('/api/v1/does-not-exist');
    });

    it.each(['/nothing', '/docs/missing/page', '/health/nope'])(
      'a path outside the API prefix: 404 in the same JSON shape (%s)',
      async (path) => {
        const res = await get(path);
        expect(res.status).toBe(404);
        expect(res.headers.get('content-type')).toContain('application/json');
        expectErrorBody((await res.json()) as ErrorBody, 'not_found', path);
      },
    );

    it('a route that answers 404 itself uses the same body', async () => {
      const res = await get('/api/v1/probe/items/missing');
      expect(res.status).toBe(404);
      const body = (await res.json()) as ErrorBody;
      expectErrorBody(body, 'not_found', '/api/v1/probe/items/missing');
      expect(body.detail).toBe('No probe item named missing');
    });

    it('malformed JSON: 400', async () => {
      const res = await postJson('/api/v1/probe/items', '{"name": "x",');
      expect(res.status).toBe(400);
      const body = (await res.json()) as ErrorBody;
      expectErrorBody(body, 'malformed_json', '/api/v1/probe/items');
      expect(body.detail).toBe('The request body is not valid JSON');
    });

    it('validation: 422 with one entry per field and a readable detail', async () => {
      const res = await postJson('/api/v1/probe/items', JSON.stringify({ name: '', count: -1, limits: { cpu: 99 } }));
      expect(res.status).toBe(422);
      const body = (await res.json()) as ErrorBody;
      expectErrorBody(body, 'validation_failed', '/api/v1/probe/items');
      const fields = body.errors?.map((e) => e.field).sort();
      expect(fields).toEqual(['count', 'limits.cpu', 'name']);
      expect(body.detail).toContain('name must be longer than or equal to 1 characters');
      expect(body.detail).toContain('limits.cpu must not be greater than 10');
    });

    it('unknown fields are rejected with 422', async () => {
      const res = await postJson('/api/v1/probe/items', JSON.stringify({ name: 'ok', count: 1, is_admin: true }));
      expect(res.status).toBe(422);
      const body = (await res.json()) as ErrorBody;
      expect(body.errors).toEqual([{ field: 'is_admin', message: 'is_admin is not a known field', code: 'unknown_field' }]);
    });

    it('rate limit: 429 with Retry-After', async () => {
      expect((await get('/api/v1/probe/limited')).status).toBe(200);
      expect((await get('/api/v1/probe/limited')).status).toBe(200);
      const res = await get('/api/v1/probe/limited');
      expect(res.status).toBe(429);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      const body = (await res.json()) as ErrorBody;
      expectErrorBody(body, 'rate_limited', '/api/v1/probe/limited');
      expect(body.detail).toMatch(/Too many requests/);
    });

    it('an unexpected error: 500 that reveals nothing', async () => {
      const res = await get('/api/v1/probe/boom');
      expect(res.status).toBe(500);
      const text = await res.text();
      expect(text).not.toContain('secret internal failure');
      expect(text).not.toContain('at ');
      expectErrorBody(JSON.parse(text) as ErrorBody, 'internal_error', '/api/v1/probe/boom');
    });

    it('schema indexes exist at boot, and a duplicate key is a 409, not a 500', async () => {
      expect(await fetchIndexes(t)).toContain('name_1');
      expect((await postJson('/api/v1/probe/items', JSON.stringify({ name: 'dup', count: 1 }))).status).toBe(201);
      const res = await postJson('/api/v1/probe/items', JSON.stringify({ name: 'dup', count: 2 }));
      expect(res.status).toBe(409);
      expectErrorBody((await res.json()) as ErrorBody, 'conflict', '/api/v1/probe/items');
    });
  });

  describe('a method the path is not served with: 405 with Allow', () => {
    const call = (method: string, path: string, headers: Record<string, string> = {}): Promise<RawResponse> =>
      rawRequest(t.baseUrl, method, path, headers);

    it.each([
      ['TRACE', '/api/v1/probe/items', 'POST'],
      ['DELETE', '/api/v1/probe/items', 'POST'],
      ['DELETE', '/api/v1/probe/items/some-name', 'GET, HEAD'],
      ['POST', '/api/v1/probe/items/some-name/', 'GET, HEAD'],
      ['DELETE', '/health', 'GET, HEAD'],
      ['POST', '/health/ready', 'GET, HEAD'],
      ['PUT', '/metrics', 'GET, HEAD'],
      ['POST', '/docs-json', 'GET, HEAD'],
      ['HEAD', '/api/v1/probe/items', 'POST'],
    ])('%s %s', async (method, path, allow) => {
      const res = await call(method, path);
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe(allow);
      if (method === 'HEAD') return;
      expect(res.headers.get('content-type')).toContain('application/json');
      const body = JSON.parse(res.body) as ErrorBody;
      expectErrorBody(body, 'method_not_allowed', path);
      expect(body.detail).toBe(`${method} is not allowed on ${path}; allowed: ${allow}`);
    });

    it('lists every method of a path served by several routes', async () => {
      const res = await call('PATCH', '/api/v1/users/me');
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('GET, HEAD, PUT, DELETE');
    });

    it('a path no route matches is still 404, whatever the method', async () => {
      for (const [method, path] of [
        ['DELETE', '/api/v1/nothing'],
        ['TRACE', '/nothing'],
        ['POST', '/api/v1/probe/items/a/b'],
      ] as const) {
        const res = await call(method, path);
        expect(res.status).toBe(404);
        expect(res.headers.get('allow')).toBeNull();
        expectErrorBody(JSON.parse(res.body) as ErrorBody, 'not_found', path);
      }
    });

    it('HEAD is answered wherever GET is, and OPTIONS stays a 404 without CORS', async () => {
      const head = await call('HEAD', '/health');
      expect(head.status).toBe(200);
      expect(head.body).toBe('');
      const options = await call('OPTIONS', '/api/v1/probe/items');
      expect(options.status).toBe(404);
      expect(options.headers.get('allow')).toBeNull();
    });

    it('a wrong method is refused before authentication and is not rate-limited', async () => {
      for (let i = 0; i < 3; i += 1) expect((await call('DELETE', '/api/v1/probe/limited')).status).toBe(405);
      expect((await call('DELETE', '/api/v1/environments', { authorization: 'Bearer not-a-token' })).status).toBe(405);
    });
  });

  describe('with CORS_ORIGINS set', () => {
    let cors: TestApp;
    beforeAll(async () => {
      cors = await createTestApp({ imports: [ProbeModule], env: { CORS_ORIGINS: 'https://app.example.com' } });
    });
    afterAll(async () => {
      await cors.close();
    });

    it('answers a preflight before routing, and a wrong method still gets 405 with the CORS headers', async () => {
      const preflight = await fetch(`${cors.baseUrl}/api/v1/probe/items`, {
        method: 'OPTIONS',
        headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
      expect(preflight.headers.get('access-control-allow-methods')).toContain('POST');

      const wrong = await fetch(`${cors.baseUrl}/api/v1/probe/items`, { method: 'DELETE', headers: { origin: 'https://app.example.com' } });
      expect(wrong.status).toBe(405);
      expect(wrong.headers.get('allow')).toBe('POST');
      expect(wrong.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    });
  });

  describe('request ids', () => {
    it('echoes a well-formed X-Request-Id into the header and the error body', async () => {
      const res = await get('/api/v1/nowhere', { headers: { 'X-Request-Id': 'client-abc.123' } });
      expect(res.headers.get('x-request-id')).toBe('client-abc.123');
      expect(((await res.json()) as ErrorBody).request_id).toBe('client-abc.123');
    });

    it('replaces a malformed one with a generated id', async () => {
      const res = await get('/health', { headers: { 'X-Request-Id': 'bad id with spaces' } });
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    });
  });

  describe('API documentation', () => {
    it('serves the OpenAPI JSON at /docs-json with bearer auth and the error body', async () => {
      const res = await get('/docs-json');
      expect(res.status).toBe(200);
      const doc = (await res.json()) as {
        openapi: string;
        paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
        components: { securitySchemes: Record<string, { scheme: string }>; schemas: Record<string, unknown> };
      };
      expect(doc.openapi).toMatch(/^3\./);
      expect(doc.components.securitySchemes.bearer?.scheme).toBe('bearer');
      expect(doc.components.schemas.ErrorBodyDto).toBeDefined();
      expect(doc.paths['/health/ready']?.get?.responses.default).toBeDefined();
    });

    it('serves Swagger UI at /docs', async () => {
      const res = await get('/docs');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/html');
      expect(await res.text()).toContain('swagger-ui');
    });
  });

  describe('security headers and metrics', () => {
    it('sets helmet headers', async () => {
      const res = await get('/health');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-powered-by')).toBeNull();
    });

    it('exposes Prometheus metrics with the route pattern, not the raw path', async () => {
      await get('/api/v1/probe/items/some-name');
      const res = await get('/metrics');
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).toContain('process_cpu_user_seconds_total');
      expect(text).toMatch(
        /http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/probe\/items\/:name",status_code="404"\} \d+/,
      );
      expect(text).not.toContain('some-name');
    });
  });
});

async function fetchIndexes(t: TestApp): Promise<string[]> {
  const { MongoClient } = await import('mongodb');
  const client = new MongoClient(t.database.uri);
  try {
    const indexes = await client.db(t.database.name).collection('probe_items').indexes();
    return indexes.map((index) => String(index.name));
  } finally {
    await client.close();
  }
}
