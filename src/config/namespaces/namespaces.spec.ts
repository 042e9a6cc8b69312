import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigFactoryKeyHost } from '@nestjs/config';
import { Test } from '@nestjs/testing';
import { configModule, loadConfiguration } from '../configuration.js';
import { ConfigurationError } from '../validate-environment.js';
import { appConfig } from './app.config.js';
import { authConfig, GOOGLE_ENDPOINTS } from './auth.config.js';
import { databaseConfig } from './database.config.js';
import { httpConfig } from './http.config.js';
import { loggingConfig } from './logging.config.js';
import { mailConfig } from './mail.config.js';
import { observabilityConfig } from './observability.config.js';
import { runtimeConfig } from './runtime.config.js';
import { terminalConfig } from './terminal.config.js';

const SECRET = 'namespaces-spec-secret-9f3a7c1e5b2d8f4a6c0e9b7d';

/** The working directory and DATA_DIR of every configuration below: relative paths resolve from it. */
let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'devpocket-namespaces-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A namespace's values as a provider gets them (`@Inject(namespace.KEY)`), in an application configured by `env` alone. */
async function injected<T>(namespace: ConfigFactoryKeyHost<T>, env: Record<string, string> = {}): Promise<T> {
  const configuration = loadConfiguration({ DATA_DIR: dir, ...env }, dir);
  const moduleRef = await Test.createTestingModule({ imports: [configModule(configuration)] }).compile();
  try {
    return moduleRef.get<T>(namespace.KEY);
  } finally {
    await moduleRef.close();
  }
}

/** The lines the configuration is refused with (none when it is valid). */
function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfiguration({ DATA_DIR: dir, JWT_SECRET: SECRET, ...env }, dir);
  } catch (error) {
    if (error instanceof ConfigurationError) return error.problems;
    throw error;
  }
  return [];
}

describe('app namespace', () => {
  it('reads its variables', async () => {
    const env = { NODE_ENV: 'test', HOST: '127.0.0.1', PORT: '9000', SWAGGER_ENABLED: 'off', SHUTDOWN_TIMEOUT_MS: '0' };
    await expect(injected(appConfig, { ...env, DATA_DIR: 'state', JWT_SECRET: SECRET })).resolves.toEqual({
      nodeEnv: 'test',
      isProduction: false,
      host: '127.0.0.1',
      port: 9000,
      dataDir: join(dir, 'state'),
      swaggerEnabled: false,
      shutdownTimeoutMs: 0,
    });
  });

  it('has defaults', async () => {
    await expect(injected(appConfig)).resolves.toEqual({
      nodeEnv: 'development',
      isProduction: false,
      host: '0.0.0.0',
      port: 8000,
      dataDir: dir,
      swaggerEnabled: true,
      shutdownTimeoutMs: 10_000,
    });
  });

  it('refuses a bad value with its line', () => {
    expect(problemsOf({ NODE_ENV: 'staging' })).toEqual([
      'NODE_ENV: NODE_ENV must be one of the following values: development, production, test (got "staging")',
    ]);
  });
});

describe('database namespace', () => {
  it('reads its variables', async () => {
    const env = { MONGODB_URI: 'mongodb://db:27017', MONGODB_DB_NAME: 'dp_test', MONGODB_TIMEOUT_MS: '2000', MONGODB_CONNECT_RETRIES: '0' };
    await expect(injected(databaseConfig, env)).resolves.toEqual({
      uri: 'mongodb://db:27017',
      dbName: 'dp_test',
      timeoutMs: 2000,
      connectRetries: 0,
    });
  });

  it('has defaults: no URI means the embedded database', async () => {
    await expect(injected(databaseConfig)).resolves.toEqual({ uri: null, dbName: 'devpocket', timeoutMs: 5000, connectRetries: 5 });
  });

  it('refuses bad values with their lines, never echoing the URI', () => {
    expect(problemsOf({ MONGODB_DB_NAME: 'two words', MONGODB_URI: 'http://user:hunter2@db' })).toEqual([
      'MONGODB_URI: must be a mongodb:// or mongodb+srv:// URI',
      'MONGODB_DB_NAME: must be 1-63 characters of A-Z a-z 0-9 _ - (got "two words")',
    ]);
  });
});

describe('auth namespace', () => {
  it('reads its variables', async () => {
    const env = {
      JWT_SECRET: SECRET,
      JWT_ACCESS_TTL_SECONDS: '60',
      JWT_REFRESH_TTL_SECONDS: '3600',
      REFRESH_REUSE_GRACE_SECONDS: '0',
      LOGIN_LOCKOUT_THRESHOLD: '3',
      LOGIN_LOCKOUT_SECONDS: '60',
      GOOGLE_CLIENT_IDS: ' ios.apps.googleusercontent.com , web.apps.googleusercontent.com,',
      GOOGLE_WEB_CLIENT_ID: 'web.apps.googleusercontent.com',
      GOOGLE_WEB_CLIENT_SECRET: 'web-secret',
      GOOGLE_TOKEN_URL: 'http://127.0.0.1:9/token',
    };
    await expect(injected(authConfig, env)).resolves.toEqual({
      jwtSecret: SECRET,
      accessTokenTtlSeconds: 60,
      refreshTokenTtlSeconds: 3600,
      refreshReuseGraceSeconds: 0,
      lockoutThreshold: 3,
      lockoutSeconds: 60,
      googleClientIds: ['ios.apps.googleusercontent.com', 'web.apps.googleusercontent.com'],
      googleWeb: { clientId: 'web.apps.googleusercontent.com', clientSecret: 'web-secret' },
      googleEndpoints: { ...GOOGLE_ENDPOINTS, tokenUrl: 'http://127.0.0.1:9/token' },
    });
  });

  it('has defaults, with the development secret kept in DATA_DIR', async () => {
    const auth = await injected(authConfig);
    expect(auth).toEqual({
      jwtSecret: readFileSync(join(dir, 'dev-jwt-secret'), 'utf8').trim(),
      accessTokenTtlSeconds: 900,
      refreshTokenTtlSeconds: 2_592_000,
      refreshReuseGraceSeconds: 30,
      lockoutThreshold: 5,
      lockoutSeconds: 900,
      googleClientIds: [],
      googleWeb: null,
      googleEndpoints: GOOGLE_ENDPOINTS,
    });
  });

  it('refuses bad values with their lines, never echoing the secret', () => {
    const secret = `k${'9'.repeat(4096)}`;
    expect(problemsOf({ JWT_ACCESS_TTL_SECONDS: '30', JWT_SECRET: secret })).toEqual([
      'JWT_SECRET: JWT_SECRET must be shorter than or equal to 4096 characters',
      'JWT_ACCESS_TTL_SECONDS: JWT_ACCESS_TTL_SECONDS must not be less than 60 (got "30")',
    ]);
  });

  it('wants the Google web client id and secret together, and URLs for the Google endpoints', () => {
    const pair = "GOOGLE_WEB_CLIENT_ID, GOOGLE_WEB_CLIENT_SECRET: set both (the console's Google sign-in) or neither";
    expect(problemsOf({ GOOGLE_WEB_CLIENT_ID: 'web.apps.googleusercontent.com' })).toEqual([pair]);
    expect(problemsOf({ GOOGLE_WEB_CLIENT_SECRET: 'secret-value' })).toEqual([pair]);
    expect(problemsOf({ GOOGLE_TOKEN_URL: 'oauth2.googleapis.com/token' })).toEqual([
      'GOOGLE_TOKEN_URL: must be an http:// or https:// URL',
    ]);
  });
});

describe('mail namespace', () => {
  it('reads its variables', async () => {
    const env = {
      MAIL_URL: 'smtps://u:p@smtp.example.com:465',
      MAIL_FROM: 'Ops <ops@example.com>',
      PUBLIC_URL: 'https://dev.example.com//',
    };
    await expect(injected(mailConfig, env)).resolves.toEqual({
      url: 'smtps://u:p@smtp.example.com:465',
      from: 'Ops <ops@example.com>',
      outboxDir: join(dir, 'outbox'),
      publicUrl: 'https://dev.example.com',
    });
  });

  it('has defaults: the outbox, and the public URL on PORT', async () => {
    await expect(injected(mailConfig, { PORT: '9000' })).resolves.toEqual({
      url: null,
      from: 'DevPocket <no-reply@devpocket.local>',
      outboxDir: join(dir, 'outbox'),
      publicUrl: 'http://localhost:9000',
    });
  });

  it('refuses bad values with their lines, never echoing the URLs', () => {
    expect(problemsOf({ MAIL_URL: 'http://u:hunter2@smtp', MAIL_FROM: 'x', PUBLIC_URL: 'ftp://dev' })).toEqual([
      'MAIL_URL: must be an smtp:// or smtps:// URL',
      'MAIL_FROM: MAIL_FROM must be longer than or equal to 3 characters (got "x")',
      'PUBLIC_URL: must be an http:// or https:// URL',
    ]);
  });
});

describe('http namespace', () => {
  it('reads its variables', async () => {
    const env = { CORS_ORIGINS: '*', TRUSTED_PROXIES: 'loopback, 10.0.0.0/8', RATE_LIMIT_TTL_SECONDS: '1', RATE_LIMIT_MAX: '5' };
    await expect(injected(httpConfig, env)).resolves.toEqual({
      corsOrigins: ['*'],
      trustedProxies: ['loopback', '10.0.0.0/8'],
      rateLimitTtlMs: 1000,
      rateLimitMax: 5,
    });
  });

  it('has defaults', async () => {
    await expect(injected(httpConfig, { CORS_ORIGINS: '' })).resolves.toEqual({
      corsOrigins: [],
      trustedProxies: [],
      rateLimitTtlMs: 60_000,
      rateLimitMax: 600,
    });
  });

  it('refuses a bad value with its line', () => {
    expect(problemsOf({ RATE_LIMIT_MAX: '0' })).toEqual(['RATE_LIMIT_MAX: RATE_LIMIT_MAX must not be less than 1 (got "0")']);
  });
});

describe('observability namespace', () => {
  it('reads its variables', async () => {
    const env = { LOG_LEVEL: ' debug ', METRICS_TOKEN: 'metrics-token-0123456789' };
    await expect(injected(observabilityConfig, env)).resolves.toEqual({ logLevel: 'debug', metricsToken: 'metrics-token-0123456789' });
  });

  it('has defaults: info, warn under NODE_ENV=test, /metrics open', async () => {
    await expect(injected(observabilityConfig)).resolves.toEqual({ logLevel: 'info', metricsToken: null });
    await expect(injected(observabilityConfig, { NODE_ENV: 'test' })).resolves.toEqual({ logLevel: 'warn', metricsToken: null });
  });

  it('refuses bad values with their lines, never echoing the token', () => {
    expect(problemsOf({ LOG_LEVEL: 'chatty', METRICS_TOKEN: 'short-token' })).toEqual([
      'LOG_LEVEL: LOG_LEVEL must be one of the following values: fatal, error, warn, info, debug, trace, silent (got "chatty")',
      'METRICS_TOKEN: METRICS_TOKEN must be longer than or equal to 16 characters',
    ]);
  });
});

describe('runtime namespace', () => {
  it('reads its variables, the Kubernetes ones included', async () => {
    const env = {
      RUNTIME: 'kubernetes',
      KUBERNETES_SERVICE_HOST: '10.96.0.1',
      LOCAL_SANDBOX: 'bwrap',
      TEMPLATES_DIR: 'my-templates',
      ENVIRONMENT_RETENTION_DAYS: '0',
      KUBERNETES_NAMESPACE: 'dp',
      KUBERNETES_NAMESPACE_MODE: 'per-user',
      KUBERNETES_STORAGE_CLASS: 'fast.ssd',
      KUBERNETES_IMAGE_PULL_POLICY: 'Always',
      KUBERNETES_IMAGE_REGISTRY: 'registry.example.com:5000/devpocket',
      KUBERNETES_POD_SECURITY_LEVEL: 'baseline',
      KUBERNETES_REQUEST_TIMEOUT_MS: '1000',
      KUBERNETES_API_RETRIES: '0',
    };
    await expect(injected(runtimeConfig, env)).resolves.toEqual({
      kind: 'kubernetes',
      localSandbox: 'bwrap',
      localRoot: join(dir, 'environments'),
      templatesDir: join(dir, 'my-templates'),
      retentionDays: 0,
      kubernetes: {
        kubeconfig: null,
        namespace: 'dp',
        namespaceMode: 'per-user',
        storageClass: 'fast.ssd',
        imagePullPolicy: 'Always',
        imageRegistry: 'registry.example.com:5000/devpocket',
        podSecurityLevel: 'baseline',
        requestTimeoutMs: 1000,
        apiRetries: 0,
      },
    });
  });

  it('has defaults', async () => {
    await expect(injected(runtimeConfig)).resolves.toEqual({
      kind: 'local',
      localSandbox: 'none',
      localRoot: join(dir, 'environments'),
      templatesDir: join(dir, 'templates'),
      retentionDays: 30,
      kubernetes: {
        kubeconfig: null,
        namespace: 'devpocket-environments',
        namespaceMode: 'shared',
        storageClass: null,
        imagePullPolicy: 'IfNotPresent',
        imageRegistry: null,
        podSecurityLevel: 'restricted',
        requestTimeoutMs: 15_000,
        apiRetries: 5,
      },
    });
  });

  it('refuses bad values with their lines', () => {
    expect(problemsOf({ LOCAL_SANDBOX: 'docker', KUBERNETES_API_RETRIES: '21' })).toEqual([
      'LOCAL_SANDBOX: LOCAL_SANDBOX must be one of the following values: none, bwrap (got "docker")',
      'KUBERNETES_API_RETRIES: KUBERNETES_API_RETRIES must not be greater than 20 (got "21")',
    ]);
    expect(problemsOf({ KUBERNETES_IMAGE_REGISTRY: 'registry.example.com/devpocket/', KUBERNETES_POD_SECURITY_LEVEL: 'strict' })).toEqual([
      'KUBERNETES_IMAGE_REGISTRY: must be an image name prefix like registry.example.com/devpocket (a registry host, optional port and path; no tag) (got "registry.example.com/devpocket/")',
      'KUBERNETES_POD_SECURITY_LEVEL: KUBERNETES_POD_SECURITY_LEVEL must be one of the following values: restricted, baseline (got "strict")',
    ]);
    expect(problemsOf({ KUBERNETES_IMAGE_REGISTRY: 'ghcr.io/example/devpocket', KUBERNETES_POD_SECURITY_LEVEL: 'baseline' })).toEqual([]);
    expect(problemsOf({ KUBERNETES_POD_SECURITY_LEVEL: 'privileged' })).toHaveLength(1);
  });

  it('reads INSTALLATION_ID (a label value), absent by default (the database then holds it)', async () => {
    expect((await injected(runtimeConfig, { INSTALLATION_ID: ' blue-cluster.1 ' })).installationId).toBe('blue-cluster.1');
    expect(await injected(runtimeConfig)).not.toHaveProperty('installationId');
    expect(problemsOf({ INSTALLATION_ID: 'blue cluster' })).toEqual([
      'INSTALLATION_ID: must be 1-63 characters of A-Z a-z 0-9 - _ ., starting and ending with a letter or digit (got "blue cluster")',
    ]);
    expect(problemsOf({ INSTALLATION_ID: `a${'b'.repeat(63)}` })).toHaveLength(1);
  });
});

describe('terminal namespace', () => {
  it('reads its variables', async () => {
    const env = {
      TERMINAL_GRACE_SECONDS: '0',
      TERMINAL_REPLAY_BUFFER_BYTES: '65536',
      TERMINAL_REPLAY_MEMORY_BYTES: '8388608',
      TERMINAL_SEND_QUEUE_MEMORY_BYTES: '4194304',
      TERMINAL_CLIENT_WINDOW_BYTES: '16384',
      TERMINAL_MAX_CLIENTS_PER_ENVIRONMENT: '2',
      TERMINAL_MAX_CONNECTIONS_PER_USER: '3',
    };
    await expect(injected(terminalConfig, env)).resolves.toEqual({
      graceMs: 0,
      replayBufferBytes: 65_536,
      replayMemoryBytes: 8_388_608,
      sendQueueMemoryBytes: 4_194_304,
      clientWindowBytes: 16_384,
      maxClientsPerEnvironment: 2,
      maxConnectionsPerUser: 3,
    });
  });

  it('has defaults', async () => {
    await expect(injected(terminalConfig)).resolves.toEqual({
      graceMs: 60_000,
      replayBufferBytes: 1_048_576,
      replayMemoryBytes: 67_108_864,
      sendQueueMemoryBytes: 33_554_432,
      clientWindowBytes: 32_768,
      maxClientsPerEnvironment: 10,
      maxConnectionsPerUser: 20,
    });
  });

  it('refuses a bad value with its line', () => {
    expect(problemsOf({ TERMINAL_REPLAY_BUFFER_BYTES: '1024' })).toEqual([
      'TERMINAL_REPLAY_BUFFER_BYTES: TERMINAL_REPLAY_BUFFER_BYTES must not be less than 65536 (got "1024")',
    ]);
    expect(problemsOf({ TERMINAL_SEND_QUEUE_MEMORY_BYTES: '1000' })).toEqual([
      'TERMINAL_SEND_QUEUE_MEMORY_BYTES: TERMINAL_SEND_QUEUE_MEMORY_BYTES must not be less than 1048576 (got "1000")',
    ]);
    expect(problemsOf({ TERMINAL_CLIENT_WINDOW_BYTES: '1024' })).toEqual([
      'TERMINAL_CLIENT_WINDOW_BYTES: TERMINAL_CLIENT_WINDOW_BYTES must not be less than 4096 (got "1024")',
    ]);
  });
});

describe('logging namespace', () => {
  it('reads LOG_FORMAT, json by default whatever NODE_ENV says', async () => {
    await expect(injected(loggingConfig, { LOG_FORMAT: ' pretty ' })).resolves.toEqual({ format: 'pretty' });
    await expect(injected(loggingConfig)).resolves.toEqual({ format: 'json' });
    await expect(injected(loggingConfig, { NODE_ENV: 'development' })).resolves.toEqual({ format: 'json' });
  });

  it('refuses an unknown format, and pretty in production (pino-pretty is a development dependency)', () => {
    expect(problemsOf({ LOG_FORMAT: 'colorful' })).toEqual([
      'LOG_FORMAT: LOG_FORMAT must be one of the following values: json, pretty (got "colorful")',
    ]);
    const production = { NODE_ENV: 'production', MONGODB_URI: 'mongodb://db', ALLOW_UNSANDBOXED_LOCAL_RUNTIME: 'true' };
    expect(problemsOf({ ...production, LOG_FORMAT: 'pretty' })).toEqual([
      'LOG_FORMAT: pretty is for development (pino-pretty is a development dependency); production logs are JSON',
    ]);
    expect(problemsOf({ ...production, LOG_FORMAT: 'json' })).toEqual([]);
  });
});
