import { Transform } from 'class-transformer';
import { IsBoolean, IsIn, IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min, MinLength } from 'class-validator';

export const NODE_ENVIRONMENTS = ['development', 'production', 'test'] as const;
export type NodeEnvironment = (typeof NODE_ENVIRONMENTS)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `json`: one JSON object per line (production, tests, log collectors); `pretty`: pino-pretty's readable lines (development). */
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

const toInt = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value.trim()) : value;

const toBool = ({ value }: { value: unknown }): unknown => {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  return value;
};

const trimmed = ({ value }: { value: unknown }): unknown => (typeof value === 'string' ? value.trim() : value);

/**
 * The Pod Security Standards levels (pod-security.kubernetes.io/enforce) an environments namespace
 * may enforce: never `privileged` (root templates need `baseline`; per-user namespaces of any other
 * level are refused by deploy/kubernetes/per-user-namespaces/).
 */
export const POD_SECURITY_LEVELS = ['restricted', 'baseline'] as const;
export type PodSecurityLevel = (typeof POD_SECURITY_LEVELS)[number];

/** An image name prefix, as images/build.sh --registry takes it: a registry host (optional port) or Docker Hub account, then optional path segments; no tag, digest or trailing slash. */
export const IMAGE_REGISTRY_PATTERN =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?)(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

/**
 * Every environment variable the server reads, with its validation rule.
 * Defaults live in `configuration.ts`; `.env.example` documents each of them.
 */
export class EnvironmentSchema {
  @IsOptional()
  @Transform(trimmed)
  @IsIn(NODE_ENVIRONMENTS)
  NODE_ENV?: NodeEnvironment;

  @IsOptional()
  @Transform(trimmed)
  @IsString()
  @MinLength(1)
  HOST?: string;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(65535)
  PORT?: number;

  @IsOptional()
  @Transform(trimmed)
  @IsString()
  @MinLength(1)
  DATA_DIR?: string;

  @IsOptional()
  @Transform(trimmed)
  @Matches(/^mongodb(\+srv)?:\/\/\S+$/, { message: 'must be a mongodb:// or mongodb+srv:// URI' })
  MONGODB_URI?: string;

  @IsOptional()
  @Transform(trimmed)
  @Matches(/^[A-Za-z0-9_-]{1,63}$/, { message: 'must be 1-63 characters of A-Z a-z 0-9 _ -' })
  MONGODB_DB_NAME?: string;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(100)
  @Max(120_000)
  MONGODB_TIMEOUT_MS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(1000)
  MONGODB_CONNECT_RETRIES?: number;

  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(4096)
  JWT_SECRET?: string;

  @IsOptional()
  @Transform(trimmed)
  @IsString()
  CORS_ORIGINS?: string;

  @IsOptional()
  @Transform(trimmed)
  @IsString()
  TRUSTED_PROXIES?: string;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(86_400)
  RATE_LIMIT_TTL_SECONDS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  RATE_LIMIT_MAX?: number;

  /** Redis shared by the replicas (rate limits, domain events); unset: one process keeps everything in memory. */
  @IsOptional()
  @Transform(trimmed)
  @Matches(/^rediss?:\/\/\S+$/, { message: 'must be a redis:// or rediss:// URL' })
  REDIS_URL?: string;

  /** Prepended to every Redis key and channel of this installation (several installations, or test files, on one Redis). */
  @IsOptional()
  @Transform(trimmed)
  @Matches(/^[A-Za-z0-9:_.-]{1,64}$/, { message: 'must be 1-64 characters of A-Z a-z 0-9 : _ . -' })
  REDIS_KEY_PREFIX?: string;

  /** How long an authenticated request may reuse a session or user read by an earlier one; 0: read both every time. */
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(3600)
  AUTH_CACHE_TTL_SECONDS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(10_000_000)
  AUTH_CACHE_MAX_ENTRIES?: number;

  @IsOptional()
  @Transform(trimmed)
  @IsIn(LOG_LEVELS)
  LOG_LEVEL?: LogLevel;

  @IsOptional()
  @Transform(trimmed)
  @IsIn(LOG_FORMATS)
  LOG_FORMAT?: LogFormat;

  @IsOptional()
  @IsString()
  @MinLength(16)
  @MaxLength(4096)
  METRICS_TOKEN?: string;

  @IsOptional()
  @Transform(toBool)
  @IsBoolean()
  SWAGGER_ENABLED?: boolean;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(600_000)
  SHUTDOWN_TIMEOUT_MS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(60)
  @Max(86_400)
  JWT_ACCESS_TTL_SECONDS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(300)
  @Max(31_536_000)
  JWT_REFRESH_TTL_SECONDS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(600)
  REFRESH_REUSE_GRACE_SECONDS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(100)
  LOGIN_LOCKOUT_THRESHOLD?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(86_400)
  LOGIN_LOCKOUT_SECONDS?: number;

  @IsOptional()
  @Transform(trimmed)
  @IsString()
  GOOGLE_CLIENT_IDS?: string;

  /** The OAuth client of the console's "Sign in with Google" (a Google "Web application" client). */
  @IsOptional()
  @Transform(trimmed)
  @IsString()
  @MaxLength(256)
  GOOGLE_WEB_CLIENT_ID?: string;

  @IsOptional()
  @Transform(trimmed)
  @IsString()
  @MaxLength(256)
  GOOGLE_WEB_CLIENT_SECRET?: string;

  /** Google's endpoints, replaceable (a local OAuth server in the tests, or a proxy). */
  @IsOptional()
  @Transform(trimmed)
  @Matches(/^https?:\/\/\S+$/, { message: 'must be an http:// or https:// URL' })
  GOOGLE_AUTHORIZATION_URL?: string;

  @IsOptional()
  @Transform(trimmed)
  @Matches(/^https?:\/\/\S+$/, { message: 'must be an http:// or https:// URL' })
  GOOGLE_TOKEN_URL?: string;

  @IsOptional()
  @Transform(trimmed)
  @Matches(/^https?:\/\/\S+$/, { message: 'must be an http:// or https:// URL' })
  GOOGLE_USERINFO_URL?: string;

  @IsOptional()
  @Transform(trimmed)
  @Matches(/^https?:\/\/\S+$/, { message: 'must be an http:// or https:// URL' })
  GOOGLE_CERTIFICATES_URL?: string;

  @IsOptional()
  @Transform(trimmed)
  @Matches(/^smtps?:\/\/\S+$/, { message: 'must be an smtp:// or smtps:// URL' })
  MAIL_URL?: string;

  @IsOptional()
  @Transform(trimmed)
  @IsString()
  @MinLength(3)
  MAIL_FROM?: string;

  @IsOptional()
  @Transform(trimmed)
  @Matches(/^https?:\/\/\S+$/, { message: 'must be an http:// or https:// URL' })
  PUBLIC_URL?: string;

  /** The wildcard domain of web previews (`<port>-<id>.<domain>`), docs/previews.md. */
  @IsOptional()
  @Transform(trimmed)
  @Matches(/^(?=.{1,200}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$/, {
    message: 'must be a domain name such as preview.example.com (its wildcard *.preview.example.com points at this server)',
  })
  PREVIEW_DOMAIN?: string;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(30)
  @Max(3600)
  PREVIEW_GRANT_SECONDS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(60)
  @Max(7 * 86_400)
  PREVIEW_COOKIE_SECONDS?: number;

  @IsOptional()
  @Transform(trimmed)
  @IsIn(['local', 'kubernetes'])
  RUNTIME?: 'local' | 'kubernetes';

  @IsOptional()
  @Transform(trimmed)
  @IsIn(['none', 'bwrap'])
  LOCAL_SANDBOX?: 'none' | 'bwrap';

  @IsOptional()
  @Transform(toBool)
  @IsBoolean()
  ALLOW_UNSANDBOXED_LOCAL_RUNTIME?: boolean;

  @IsOptional()
  @Transform(trimmed)
  @IsString()
  @MinLength(1)
  TEMPLATES_DIR?: string;

  /** Kubernetes runtime: a kubeconfig file; without it, the in-cluster service account. */
  @IsOptional()
  @Transform(trimmed)
  @IsString()
  @MinLength(1)
  KUBECONFIG?: string;

  @IsOptional()
  @Transform(trimmed)
  @Matches(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, { message: 'must be a Kubernetes namespace name (DNS-1123 label)' })
  KUBERNETES_NAMESPACE?: string;

  @IsOptional()
  @Transform(trimmed)
  @IsIn(['shared', 'per-user'])
  KUBERNETES_NAMESPACE_MODE?: 'shared' | 'per-user';

  @IsOptional()
  @Transform(trimmed)
  @Matches(/^[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?$/, { message: 'must be a StorageClass name' })
  KUBERNETES_STORAGE_CLASS?: string;

  @IsOptional()
  @Transform(trimmed)
  @IsIn(['Always', 'IfNotPresent', 'Never'])
  KUBERNETES_IMAGE_PULL_POLICY?: 'Always' | 'IfNotPresent' | 'Never';

  /** Replaces the `devpocket` of DevPocket's own images (`devpocket/env-python:1` → `<this>/env-python:1`), as images/build.sh --registry. */
  @IsOptional()
  @Transform(trimmed)
  @Matches(IMAGE_REGISTRY_PATTERN, {
    message: 'must be an image name prefix like registry.example.com/devpocket (a registry host, optional port and path; no tag)',
  })
  KUBERNETES_IMAGE_REGISTRY?: string;

  /** The Pod Security level the environments' namespaces enforce (per-user namespaces get it as their label). */
  @IsOptional()
  @Transform(trimmed)
  @IsIn(POD_SECURITY_LEVELS)
  KUBERNETES_POD_SECURITY_LEVEL?: PodSecurityLevel;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1000)
  @Max(600_000)
  KUBERNETES_REQUEST_TIMEOUT_MS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(20)
  KUBERNETES_API_RETRIES?: number;

  /** Which installation this server belongs to (a label value); unset: the id stored in the database. */
  @IsOptional()
  @Transform(trimmed)
  @Matches(/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/, {
    message: 'must be 1-63 characters of A-Z a-z 0-9 - _ ., starting and ending with a letter or digit',
  })
  INSTALLATION_ID?: string;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(3650)
  ENVIRONMENT_RETENTION_DAYS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(86_400)
  TERMINAL_GRACE_SECONDS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(65_536)
  @Max(268_435_456)
  TERMINAL_REPLAY_BUFFER_BYTES?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1_048_576)
  @Max(17_179_869_184)
  TERMINAL_REPLAY_MEMORY_BYTES?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1_048_576)
  @Max(17_179_869_184)
  TERMINAL_SEND_QUEUE_MEMORY_BYTES?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(4_096)
  @Max(67_108_864)
  TERMINAL_CLIENT_WINDOW_BYTES?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(10_000)
  TERMINAL_MAX_CLIENTS_PER_ENVIRONMENT?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(100_000)
  TERMINAL_MAX_CONNECTIONS_PER_USER?: number;
}
