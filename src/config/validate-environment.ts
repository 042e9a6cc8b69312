import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { plainToInstance } from 'class-transformer';
import { validateSync, ValidationError } from 'class-validator';
import { EnvironmentSchema } from './environment.schema.js';

/** Raised when the environment cannot produce a valid configuration; one line per bad variable. */
export class ConfigurationError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigurationError';
  }
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

/** One line per variable; the value is shown unless the name says it is a secret or carries credentials. */
function describe(errors: ValidationError[], raw: Record<string, unknown>): string[] {
  return errors.map((error) => {
    const messages = Object.values(error.constraints ?? {}).join('; ');
    const value = raw[error.property];
    const shown = /SECRET|TOKEN|PASSWORD|_URL$|_URI$/.test(error.property) ? '' : ` (got ${JSON.stringify(value)})`;
    return `${error.property}: ${messages}${shown}`;
  });
}

/**
 * The `validate` function of the configuration (the shape of @nestjs/config's `validate` option):
 * checks the environment against `EnvironmentSchema` (class-validator) and the rules that span
 * several variables (production, Kubernetes), and returns the parsed variables: trimmed, integers
 * and booleans converted, empty values dropped. Defaults are applied by the namespaces
 * (`namespaces/*.config.ts`). Throws ConfigurationError listing every problem at once, so an
 * operator fixes them in one go. Relative paths (KUBECONFIG) are checked from `cwd`.
 */
export function validateEnvironment(env: Record<string, unknown>, cwd = process.cwd()): EnvironmentSchema {
  const raw: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined && value !== '') raw[key] = value;
  const parsed = plainToInstance(EnvironmentSchema, raw);
  const problems = describe(validateSync(parsed, { forbidUnknownValues: false }), raw);

  const isProduction = (parsed.NODE_ENV ?? 'development') === 'production';
  if (isProduction && !parsed.MONGODB_URI) {
    problems.push('MONGODB_URI: is required in production (the embedded database is for development and tests only)');
  }
  if (isProduction) {
    const problem = secretProblem(parsed.JWT_SECRET);
    if (problem) problems.push(`JWT_SECRET: ${problem}`);
  }
  if (isProduction && parsed.LOG_FORMAT === 'pretty') {
    problems.push('LOG_FORMAT: pretty is for development (pino-pretty is a development dependency); production logs are JSON');
  }
  if (Boolean(parsed.GOOGLE_WEB_CLIENT_ID) !== Boolean(parsed.GOOGLE_WEB_CLIENT_SECRET)) {
    problems.push("GOOGLE_WEB_CLIENT_ID, GOOGLE_WEB_CLIENT_SECRET: set both (the console's Google sign-in) or neither");
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
    if (!parsed.KUBECONFIG && !raw.KUBERNETES_SERVICE_HOST) {
      problems.push("KUBECONFIG: is required with RUNTIME=kubernetes outside a cluster (inside one, the pod's ServiceAccount is used)");
    }
  }
  if (parsed.KUBERNETES_NAMESPACE_MODE === 'per-user' && (parsed.KUBERNETES_NAMESPACE ?? 'devpocket-environments').length > 38) {
    problems.push(
      'KUBERNETES_NAMESPACE: with KUBERNETES_NAMESPACE_MODE=per-user it is a prefix of at most 38 characters (the user id follows it)',
    );
  }
  if (problems.length > 0) throw new ConfigurationError(problems);
  return parsed;
}
