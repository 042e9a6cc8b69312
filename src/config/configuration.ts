import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { plainToInstance } from 'class-transformer';
import { validateSync, ValidationError } from 'class-validator';
import { EnvironmentSchema, LogLevel, NodeEnvironment } from './environment.schema.js';

/** Raised when the environment cannot produce a valid configuration; one line per bad variable. */
export class ConfigurationError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigurationError';
  }
}

export class AppConfig {
  readonly nodeEnv!: NodeEnvironment;
  readonly isProduction!: boolean;
  readonly host!: string;
  readonly port!: number;
  /** Absolute path of the directory holding local state (embedded database, outbox, environments). */
  readonly dataDir!: string;
  readonly swaggerEnabled!: boolean;
  readonly shutdownTimeoutMs!: number;
}

export class DatabaseConfig {
  /** Connection string without database name; null means "start the embedded database" (never in production). */
  readonly uri!: string | null;
  readonly dbName!: string;
  /** Server selection, connect and buffering timeout: how long a request waits for a missing database before 503. */
  readonly timeoutMs!: number;
  readonly connectRetries!: number;
}

export class AuthConfig {
  readonly jwtSecret!: string;
  readonly accessTokenTtlSeconds!: number;
  readonly refreshTokenTtlSeconds!: number;
  /** A refresh token presented again within this window after its rotation gets a fresh pair instead of revoking its family. */
  readonly refreshReuseGraceSeconds!: number;
  /** Consecutive failed sign-ins that lock an account. */
  readonly lockoutThreshold!: number;
  readonly lockoutSeconds!: number;
  /** OAuth client ids (iOS, Android, web) accepted as the audience of Google ID tokens; empty disables Google sign-in. */
  readonly googleClientIds!: string[];
}

export class MailConfig {
  /** SMTP server (smtp:// or smtps://, credentials in the URL); null writes mail to the log and DATA_DIR/outbox instead. */
  readonly url!: string | null;
  readonly from!: string;
  readonly outboxDir!: string;
  /** Public base URL of this server, used in links inside mails. */
  readonly publicUrl!: string;
}

export class HttpConfig {
  /** Exact origins allowed by CORS; empty disables CORS headers entirely; ['*'] allows any origin. */
  readonly corsOrigins!: string[];
  /** Express `trust proxy` values: addresses/CIDRs/keywords whose X-Forwarded-For is honoured. */
  readonly trustedProxies!: string[];
  readonly rateLimitTtlMs!: number;
  readonly rateLimitMax!: number;
}

export class ObservabilityConfig {
  readonly logLevel!: LogLevel;
  /** When set, GET /metrics requires `Authorization: Bearer <token>`. */
  readonly metricsToken!: string | null;
}

export class RuntimeConfig {
  readonly kind!: 'local' | 'kubernetes';
  /** Local runtime: confine each environment's processes with bubblewrap. */
  readonly localSandbox!: 'none' | 'bwrap';
  /** Where local environments live: DATA_DIR/environments. */
  readonly localRoot!: string;
  /** Directory of the template YAML files. */
  readonly templatesDir!: string;
  /** Terminated environments stay in their owner's list this many days, then are purged. */
  readonly retentionDays!: number;
  readonly kubernetes!: KubernetesConfig;
}

export class KubernetesConfig {
  /** A kubeconfig file, or null for the in-cluster service account. */
  readonly kubeconfig!: string | null;
  /** `shared`: the namespace every environment's objects live in; `per-user`: the prefix of each user's namespace. */
  readonly namespace!: string;
  /** `shared` (one namespace) or `per-user` (`<namespace>-<user id>`, created on first use; needs cluster-wide rights). */
  readonly namespaceMode!: 'shared' | 'per-user';
  /** StorageClass of the home volumes; null takes the cluster's default. */
  readonly storageClass!: string | null;
  readonly imagePullPolicy!: 'Always' | 'IfNotPresent' | 'Never';
  /** Each API request gives up after this long (then it is retried). */
  readonly requestTimeoutMs!: number;
  /** Retries of a failed API request (5xx, 429, timeouts, connection errors), with exponential backoff. */
  readonly apiRetries!: number;
}

export class TerminalConfig {
  /** How long a session's upstream stays open after its last client left (quick reconnects are instant). */
  readonly graceMs!: number;
  /** Output kept per session for resuming clients. */
  readonly replayBufferBytes!: number;
  readonly maxClientsPerEnvironment!: number;
  readonly maxConnectionsPerUser!: number;
}

export interface Configuration {
  app: AppConfig;
  database: DatabaseConfig;
  auth: AuthConfig;
  mail: MailConfig;
  runtime: RuntimeConfig;
  terminal: TerminalConfig;
  http: HttpConfig;
  observability: ObservabilityConfig;
}

const PLACEHOLDER_SECRET =
  /change[-_ ]?(me|this|it)|placeholder|example|your[-_ ]?(jwt[-_ ]?)?secret|^(jwt[-_ ]?)?secret$|^password$|insecure|dummy|^default|^x+$|todo|replace[-_ ]?me|^dev(elopment)?[-_ ]?secret/i;

export const MIN_SECRET_BYTES = 32;

/** Why a production secret is unacceptable, or null when it is fine. */
export function secretProblem(secret: string | undefined): string | null {
  if (secret === undefined || secret.trim() === '') return 'is required in production';
  if (Buffer.byteLength(secret, 'utf8') < MIN_SECRET_BYTES) return `must be at least ${MIN_SECRET_BYTES} bytes in production`;
  if (PLACEHOLDER_SECRET.test(secret) || new Set(secret).size < 8) {
    return 'looks like a placeholder; generate one with `openssl rand -base64 48`';
  }
  return null;
}

function describe(errors: ValidationError[], raw: Record<string, unknown>): string[] {
  return errors.map((error) => {
    const messages = Object.values(error.constraints ?? {}).join('; ');
    const value = raw[error.property];
    const shown = /SECRET|TOKEN|PASSWORD|_URL$|_URI$/.test(error.property) ? '' : ` (got ${JSON.stringify(value)})`;
    return `${error.property}: ${messages}${shown}`;
  });
}

const list = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);

/** In development a missing JWT_SECRET is generated once and kept in DATA_DIR, so sign-ins survive restarts. */
function developmentSecret(dataDir: string): string {
  const file = join(dataDir, 'dev-jwt-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(48).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return secret;
}

/**
 * Validates the environment and builds the typed configuration. Throws ConfigurationError listing
 * every problem at once, so an operator fixes them in one go.
 */
export function loadConfiguration(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Configuration {
  const raw: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined && value !== '') raw[key] = value;
  const parsed = plainToInstance(EnvironmentSchema, raw);
  const problems = describe(validateSync(parsed, { forbidUnknownValues: false }), raw);

  const nodeEnv = parsed.NODE_ENV ?? 'development';
  const isProduction = nodeEnv === 'production';
  if (isProduction && !parsed.MONGODB_URI) {
    problems.push('MONGODB_URI: is required in production (the embedded database is for development and tests only)');
  }
  if (isProduction) {
    const problem = secretProblem(parsed.JWT_SECRET);
    if (problem) problems.push(`JWT_SECRET: ${problem}`);
  }
  const runtimeKind = parsed.RUNTIME ?? 'local';
  const localSandbox = parsed.LOCAL_SANDBOX ?? 'none';
  if (isProduction && runtimeKind === 'local' && localSandbox === 'none' && parsed.ALLOW_UNSANDBOXED_LOCAL_RUNTIME !== true) {
    problems.push(
      'RUNTIME: the local runtime without a sandbox is for a single trusted user; in production set LOCAL_SANDBOX=bwrap, RUNTIME=kubernetes, or ALLOW_UNSANDBOXED_LOCAL_RUNTIME=true',
    );
  }
  if (runtimeKind === 'kubernetes') {
    if (parsed.KUBECONFIG && !existsSync(resolve(cwd, parsed.KUBECONFIG))) {
      problems.push('KUBECONFIG: no such file (RUNTIME=kubernetes reads the cluster and credentials from it)');
    }
    if (!parsed.KUBECONFIG && !env.KUBERNETES_SERVICE_HOST) {
      problems.push("KUBECONFIG: is required with RUNTIME=kubernetes outside a cluster (inside one, the pod's ServiceAccount is used)");
    }
  }
  if (parsed.KUBERNETES_NAMESPACE_MODE === 'per-user' && (parsed.KUBERNETES_NAMESPACE ?? 'devpocket-environments').length > 38) {
    problems.push(
      'KUBERNETES_NAMESPACE: with KUBERNETES_NAMESPACE_MODE=per-user it is a prefix of at most 38 characters (the user id follows it)',
    );
  }
  if (problems.length > 0) throw new ConfigurationError(problems);

  const dataDirSetting = parsed.DATA_DIR ?? './.data';
  const dataDir = isAbsolute(dataDirSetting) ? dataDirSetting : resolve(cwd, dataDirSetting);

  return {
    app: {
      nodeEnv,
      isProduction,
      host: parsed.HOST ?? '0.0.0.0',
      port: parsed.PORT ?? 8000,
      dataDir,
      swaggerEnabled: parsed.SWAGGER_ENABLED ?? true,
      shutdownTimeoutMs: parsed.SHUTDOWN_TIMEOUT_MS ?? 10_000,
    },
    database: {
      uri: parsed.MONGODB_URI ?? null,
      dbName: parsed.MONGODB_DB_NAME ?? 'devpocket',
      timeoutMs: parsed.MONGODB_TIMEOUT_MS ?? 5_000,
      connectRetries: parsed.MONGODB_CONNECT_RETRIES ?? 5,
    },
    auth: {
      jwtSecret: parsed.JWT_SECRET ?? developmentSecret(dataDir),
      accessTokenTtlSeconds: parsed.JWT_ACCESS_TTL_SECONDS ?? 900,
      refreshTokenTtlSeconds: parsed.JWT_REFRESH_TTL_SECONDS ?? 30 * 86_400,
      refreshReuseGraceSeconds: parsed.REFRESH_REUSE_GRACE_SECONDS ?? 30,
      lockoutThreshold: parsed.LOGIN_LOCKOUT_THRESHOLD ?? 5,
      lockoutSeconds: parsed.LOGIN_LOCKOUT_SECONDS ?? 900,
      googleClientIds: list(parsed.GOOGLE_CLIENT_IDS),
    },
    mail: {
      url: parsed.MAIL_URL ?? null,
      from: parsed.MAIL_FROM ?? 'DevPocket <no-reply@devpocket.local>',
      outboxDir: join(dataDir, 'outbox'),
      publicUrl: (parsed.PUBLIC_URL ?? `http://localhost:${parsed.PORT ?? 8000}`).replace(/\/+$/, ''),
    },
    runtime: {
      kind: runtimeKind,
      localSandbox,
      localRoot: join(dataDir, 'environments'),
      templatesDir: parsed.TEMPLATES_DIR ? resolve(cwd, parsed.TEMPLATES_DIR) : resolve(cwd, 'templates'),
      retentionDays: parsed.ENVIRONMENT_RETENTION_DAYS ?? 30,
      kubernetes: {
        kubeconfig: parsed.KUBECONFIG ? resolve(cwd, parsed.KUBECONFIG) : null,
        namespace: parsed.KUBERNETES_NAMESPACE ?? 'devpocket-environments',
        namespaceMode: parsed.KUBERNETES_NAMESPACE_MODE ?? 'shared',
        storageClass: parsed.KUBERNETES_STORAGE_CLASS ?? null,
        imagePullPolicy: parsed.KUBERNETES_IMAGE_PULL_POLICY ?? 'IfNotPresent',
        requestTimeoutMs: parsed.KUBERNETES_REQUEST_TIMEOUT_MS ?? 15_000,
        apiRetries: parsed.KUBERNETES_API_RETRIES ?? 5,
      },
    },
    terminal: {
      graceMs: (parsed.TERMINAL_GRACE_SECONDS ?? 60) * 1000,
      replayBufferBytes: parsed.TERMINAL_REPLAY_BUFFER_BYTES ?? 1024 * 1024,
      maxClientsPerEnvironment: parsed.TERMINAL_MAX_CLIENTS_PER_ENVIRONMENT ?? 10,
      maxConnectionsPerUser: parsed.TERMINAL_MAX_CONNECTIONS_PER_USER ?? 20,
    },
    http: {
      corsOrigins: list(parsed.CORS_ORIGINS),
      trustedProxies: list(parsed.TRUSTED_PROXIES),
      rateLimitTtlMs: (parsed.RATE_LIMIT_TTL_SECONDS ?? 60) * 1000,
      rateLimitMax: parsed.RATE_LIMIT_MAX ?? 600,
    },
    observability: {
      logLevel: parsed.LOG_LEVEL ?? (nodeEnv === 'test' ? 'warn' : 'info'),
      metricsToken: parsed.METRICS_TOKEN ?? null,
    },
  };
}
