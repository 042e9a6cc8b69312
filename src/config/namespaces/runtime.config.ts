import { join, resolve } from 'node:path';
import type { PodSecurityLevel } from '../environment.schema.js';
import { dataDirOf } from './app.config.js';
import { defineNamespace } from './define-namespace.js';

/** The Kubernetes runtime: KUBECONFIG and KUBERNETES_*. */
export interface KubernetesConfig {
  /** A kubeconfig file, or null for the in-cluster service account. */
  readonly kubeconfig: string | null;
  /** `shared`: the namespace every environment's objects live in; `per-user`: the prefix of each user's namespace. */
  readonly namespace: string;
  /** `shared` (one namespace) or `per-user` (`<namespace>-<user id>`, created on first use; needs cluster-wide rights). */
  readonly namespaceMode: 'shared' | 'per-user';
  /** StorageClass of the home volumes; null takes the cluster's default. */
  readonly storageClass: string | null;
  readonly imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** Replaces the `devpocket` prefix of DevPocket's own images (`devpocket/env-python:1` → `<registry>/env-python:1`); null keeps them. */
  readonly imageRegistry: string | null;
  /** The Pod Security level of the environments' namespaces: per-user ones are labelled with it; `restricted` refuses root templates. */
  readonly podSecurityLevel: PodSecurityLevel;
  /** Each API request gives up after this long (then it is retried). */
  readonly requestTimeoutMs: number;
  /** Retries of a failed API request (5xx, 429, timeouts, connection errors), with exponential backoff. */
  readonly apiRetries: number;
}

/** Where environments run: RUNTIME, LOCAL_SANDBOX, TEMPLATES_DIR, ENVIRONMENT_RETENTION_DAYS, and the Kubernetes settings. */
export interface RuntimeConfig {
  readonly kind: 'local' | 'kubernetes';
  /** Local runtime: confine each environment's processes with bubblewrap. */
  readonly localSandbox: 'none' | 'bwrap';
  /** Where local environments live: DATA_DIR/environments. */
  readonly localRoot: string;
  /** Directory of the template YAML files. */
  readonly templatesDir: string;
  /** Terminated environments stay in their owner's list this many days, then are purged. */
  readonly retentionDays: number;
  /**
   * INSTALLATION_ID: which installation this server belongs to; absent: the id stored in the
   * database (src/settings/installation.ts). The Kubernetes runtime labels its objects with it.
   */
  readonly installationId?: string;
  readonly kubernetes: KubernetesConfig;
}

export const runtimeConfig = defineNamespace('runtime', (env, cwd): RuntimeConfig => ({
  kind: env.RUNTIME ?? 'local',
  localSandbox: env.LOCAL_SANDBOX ?? 'none',
  localRoot: join(dataDirOf(env, cwd), 'environments'),
  templatesDir: resolve(cwd, env.TEMPLATES_DIR ?? 'templates'),
  retentionDays: env.ENVIRONMENT_RETENTION_DAYS ?? 30,
  ...(env.INSTALLATION_ID ? { installationId: env.INSTALLATION_ID } : {}),
  kubernetes: {
    kubeconfig: env.KUBECONFIG ? resolve(cwd, env.KUBECONFIG) : null,
    namespace: env.KUBERNETES_NAMESPACE ?? 'devpocket-environments',
    namespaceMode: env.KUBERNETES_NAMESPACE_MODE ?? 'shared',
    storageClass: env.KUBERNETES_STORAGE_CLASS ?? null,
    imagePullPolicy: env.KUBERNETES_IMAGE_PULL_POLICY ?? 'IfNotPresent',
    imageRegistry: env.KUBERNETES_IMAGE_REGISTRY ?? null,
    podSecurityLevel: env.KUBERNETES_POD_SECURITY_LEVEL ?? 'restricted',
    requestTimeoutMs: env.KUBERNETES_REQUEST_TIMEOUT_MS ?? 15_000,
    apiRetries: env.KUBERNETES_API_RETRIES ?? 5,
  },
}));
