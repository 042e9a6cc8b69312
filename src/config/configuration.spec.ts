import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfiguration } from './configuration.js';
import { ConfigurationError, secretProblem } from './validate-environment.js';

const STRONG = 'k3P9x-QvT7mZ2wLr8sYb4nHc6dJf1gUa0eXo5iRtVyWq';

function problemsOf(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfiguration(env, tmpdir());
  } catch (error) {
    if (error instanceof ConfigurationError) return error.problems;
    throw error;
  }
  return [];
}

describe('loadConfiguration', () => {
  let dataDir: string;
  beforeEach(() => (dataDir = mkdtempSync(join(tmpdir(), 'devpocket-config-'))));
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  it('has working defaults for development', () => {
    const config = loadConfiguration({ DATA_DIR: dataDir });
    expect(config.app).toMatchObject({ nodeEnv: 'development', isProduction: false, port: 8000, host: '0.0.0.0', dataDir });
    expect(config.database).toMatchObject({ uri: null, dbName: 'devpocket', timeoutMs: 5000 });
    expect(config.http).toMatchObject({ corsOrigins: [], trustedProxies: [], rateLimitTtlMs: 60_000, rateLimitMax: 600 });
    expect(config.observability).toEqual({ logLevel: 'info', metricsToken: null });
  });

  it('generates a development JWT secret once, private to the owner, and reuses it', () => {
    const first = loadConfiguration({ DATA_DIR: dataDir }).auth.jwtSecret;
    expect(Buffer.byteLength(first)).toBeGreaterThanOrEqual(32);
    expect(loadConfiguration({ DATA_DIR: dataDir }).auth.jwtSecret).toBe(first);
    const file = join(dataDir, 'dev-jwt-secret');
    expect(readFileSync(file, 'utf8').trim()).toBe(first);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('parses lists, numbers and booleans', () => {
    const config = loadConfiguration({
      DATA_DIR: dataDir,
      PORT: ' 9000 ',
      CORS_ORIGINS: 'https://a.example, https://b.example',
      TRUSTED_PROXIES: 'loopback,10.0.0.0/8',
      SWAGGER_ENABLED: 'false',
      RATE_LIMIT_TTL_SECONDS: '30',
    });
    expect(config.app.port).toBe(9000);
    expect(config.app.swaggerEnabled).toBe(false);
    expect(config.http.corsOrigins).toEqual(['https://a.example', 'https://b.example']);
    expect(config.http.trustedProxies).toEqual(['loopback', '10.0.0.0/8']);
    expect(config.http.rateLimitTtlMs).toBe(30_000);
  });

  it('reports every bad variable at once, naming each', () => {
    const problems = problemsOf({ PORT: '70000', LOG_LEVEL: 'chatty', MONGODB_URI: 'http://db', SWAGGER_ENABLED: 'maybe' });
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(['LOG_LEVEL', 'MONGODB_URI', 'PORT', 'SWAGGER_ENABLED']);
    expect(problems.find((p) => p.startsWith('PORT'))).toContain('(got "70000")');
  });

  it('configures the Kubernetes runtime, and checks its settings', () => {
    mkdirSync(join(dataDir, 'kube'));
    writeFileSync(join(dataDir, 'kube/config'), 'apiVersion: v1\n');
    const config = loadConfiguration(
      { DATA_DIR: dataDir, RUNTIME: 'kubernetes', KUBECONFIG: 'kube/config', KUBERNETES_NAMESPACE_MODE: 'per-user' },
      dataDir,
    );
    expect(config.runtime.kind).toBe('kubernetes');
    expect(config.runtime.kubernetes).toEqual({
      kubeconfig: join(dataDir, 'kube/config'),
      namespace: 'devpocket-environments',
      namespaceMode: 'per-user',
      storageClass: null,
      imagePullPolicy: 'IfNotPresent',
      imageRegistry: null,
      podSecurityLevel: 'restricted',
      requestTimeoutMs: 15_000,
      apiRetries: 5,
    });
    expect(
      problemsOf({ KUBERNETES_NAMESPACE: 'Not_A_Namespace', KUBERNETES_IMAGE_PULL_POLICY: 'Sometimes' }).map((p) => p.split(':')[0]),
    ).toEqual(['KUBERNETES_NAMESPACE', 'KUBERNETES_IMAGE_PULL_POLICY']);
    expect(problemsOf({ RUNTIME: 'kubernetes', KUBECONFIG: join(dataDir, 'missing') })).toEqual([
      'KUBECONFIG: no such file (RUNTIME=kubernetes reads the cluster and credentials from it)',
    ]);
    expect(problemsOf({ RUNTIME: 'kubernetes' })).toEqual([
      expect.stringMatching(/^KUBECONFIG: is required with RUNTIME=kubernetes outside a cluster/),
    ]);
    expect(problemsOf({ RUNTIME: 'kubernetes', KUBERNETES_SERVICE_HOST: '10.96.0.1' })).toEqual([]);
    expect(problemsOf({ KUBERNETES_NAMESPACE_MODE: 'per-user', KUBERNETES_NAMESPACE: 'a'.repeat(39) })).toEqual([
      expect.stringMatching(/^KUBERNETES_NAMESPACE: with KUBERNETES_NAMESPACE_MODE=per-user it is a prefix of at most 38 characters/),
    ]);
  });

  it('in production requires MONGODB_URI and a strong JWT_SECRET', () => {
    expect(problemsOf({ NODE_ENV: 'production', ALLOW_UNSANDBOXED_LOCAL_RUNTIME: 'true' })).toEqual([
      'MONGODB_URI: is required in production (the embedded database is for development and tests only)',
      'JWT_SECRET: is required in production',
    ]);
    expect(problemsOf({ NODE_ENV: 'production', MONGODB_URI: 'mongodb://db:27017', JWT_SECRET: STRONG, LOCAL_SANDBOX: 'bwrap' })).toEqual(
      [],
    );
  });

  it('in production refuses the unsandboxed local runtime unless explicitly allowed', () => {
    const base = { NODE_ENV: 'production', MONGODB_URI: 'mongodb://db:27017', JWT_SECRET: STRONG };
    expect(problemsOf(base)).toEqual([expect.stringMatching(/^RUNTIME: the local runtime without a sandbox is for a single trusted user/)]);
    expect(problemsOf({ ...base, ALLOW_UNSANDBOXED_LOCAL_RUNTIME: 'true' })).toEqual([]);
    expect(problemsOf({ ...base, RUNTIME: 'kubernetes', KUBERNETES_SERVICE_HOST: '10.96.0.1' })).toEqual([]);
    expect(problemsOf({ DATA_DIR: '/tmp/x' })).toEqual([]);
  });

  it('never echoes a secret in its messages', () => {
    const problems = problemsOf({ NODE_ENV: 'production', MONGODB_URI: 'mongodb://db', JWT_SECRET: 'short-secret' });
    expect(problems.join('\n')).not.toContain('short-secret');
  });
});

describe('secretProblem', () => {
  it.each([
    ['changeme-changeme-changeme-changeme', /placeholder/],
    ['your-jwt-secret-goes-here-0123456789', /placeholder/],
    ['please-replace-me-with-something-long', /placeholder/],
    ['aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', /placeholder/],
    ['abababababababababababababababababab', /placeholder/],
    ['tooshort', /at least 32 bytes/],
    ['', /required/],
  ])('refuses %j', (secret, problem) => {
    expect(secretProblem(secret)).toMatch(problem);
  });

  it('accepts a random secret', () => {
    expect(secretProblem(STRONG)).toBeNull();
  });
});
