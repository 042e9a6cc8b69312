import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import type { DestinationStream } from 'pino';
import { pinoHttp } from 'pino-http';
import type { LogFormat } from '../../config/environment.schema.js';
import { loggerParams, pinoHttpOptions, prettyDestination } from './log-output.js';

const SECRETS = {
  query: 'query-token-secret',
  header: 'header-bearer-secret',
  cookie: 'cookie-secret',
  password: 'password-field-secret',
  token: 'token-field-secret',
  nested: 'nested-refresh-secret',
};

/**
 * Serves one request through pino-http with the server's options, writing to `format`'s destination:
 * a request carrying secrets in its query string and headers, whose handler logs an object with
 * secret fields (top level and one level down). Returns everything written.
 */
async function logOneRequest(format: LogFormat): Promise<string> {
  let output = '';
  const capture: DestinationStream = { write: (line: string) => void (output += line) };
  const destination = format === 'json' ? capture : await prettyDestination(capture);
  if (!destination) throw new Error('pino-pretty is a devDependency and must be installed for the tests');
  const logRequests = pinoHttp(pinoHttpOptions({ logLevel: 'info', metricsToken: null }), destination);
  const server = createServer((req, res) => {
    req.id = 'request-id-1';
    logRequests(req, res);
    req.log.warn(
      { password: SECRETS.password, token: SECRETS.token, user: { name: 'ada', refresh_token: SECRETS.nested } },
      'signing in failed',
    );
    res.statusCode = 401;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/auth/login?token=${SECRETS.query}&page=2`, {
      headers: { Authorization: `Bearer ${SECRETS.header}`, Cookie: `sid=${SECRETS.cookie}` },
    });
    await res.arrayBuffer();
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  return stripVTControlCharacters(output);
}

describe('log output', () => {
  it.each<LogFormat>(['json', 'pretty'])('redacts tokens and passwords in the %s format', async (format) => {
    const output = await logOneRequest(format);
    expect(output).toContain('signing in failed');
    expect(output).toContain('[REDACTED]');
    for (const secret of Object.values(SECRETS)) expect(output).not.toContain(secret);
  });

  it('json: one object per line, the URL redacted', async () => {
    const lines = (await logOneRequest('json'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toEqual([
      expect.objectContaining({
        msg: 'signing in failed',
        password: '[REDACTED]',
        token: '[REDACTED]',
        user: { name: 'ada', refresh_token: '[REDACTED]' },
      }),
      expect.objectContaining({
        msg: 'request completed',
        req: expect.objectContaining({ id: 'request-id-1', url: '/api/v1/auth/login?token=[REDACTED]&page=2' }) as unknown,
        res: { status: 401 },
      }),
    ]);
  });

  it('pretty: readable lines, not JSON, a request as method, redacted URL and status', async () => {
    const output = await logOneRequest('pretty');
    const lines = output.trim().split('\n');
    expect(() => void JSON.parse(lines[0])).toThrow();
    expect(lines[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: signing in failed$/);
    expect(output).toMatch(/WARN: GET \/api\/v1\/auth\/login\?token=\[REDACTED\]&page=2 401 \d+ms/);
  });

  it('json is the default output: no destination of its own, so pino writes JSON to stdout', async () => {
    const json = await loggerParams({ logLevel: 'info', metricsToken: null }, { format: 'json' });
    expect(Array.isArray(json.pinoHttp)).toBe(false);
    const pretty = await loggerParams({ logLevel: 'info', metricsToken: null }, { format: 'pretty' });
    expect(Array.isArray(pretty.pinoHttp)).toBe(true);
  });

  it('production never loads pino-pretty (a devDependency, pruned from the Docker image): no value import of it in src/', () => {
    const root = join(import.meta.dirname, '..', '..');
    const sources = readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts'));
    const offenders = sources.filter((file) =>
      readFileSync(join(root, file), 'utf8')
        .split('\n')
        .some((line) => /from 'pino-pretty'|require\('pino-pretty'\)/.test(line) && !/^import type /.test(line)),
    );
    expect(offenders).toEqual([]);
    // The one place that loads it, and only for LOG_FORMAT=pretty.
    expect(readFileSync(join(root, 'common', 'logging', 'log-output.ts'), 'utf8')).toContain("await import('pino-pretty')");
  });
});
