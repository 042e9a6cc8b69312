import type { DynamicModule } from '@nestjs/common';
import { ConfigModule, registerAs } from '@nestjs/config';
import { type AppConfig, appConfig } from './namespaces/app.config.js';
import { type AuthConfig, authConfig } from './namespaces/auth.config.js';
import { type DatabaseConfig, databaseConfig } from './namespaces/database.config.js';
import { type HttpConfig, httpConfig } from './namespaces/http.config.js';
import { type LoggingConfig, loggingConfig } from './namespaces/logging.config.js';
import { type MailConfig, mailConfig } from './namespaces/mail.config.js';
import { type ObservabilityConfig, observabilityConfig } from './namespaces/observability.config.js';
import { type RuntimeConfig, runtimeConfig } from './namespaces/runtime.config.js';
import { type TerminalConfig, terminalConfig } from './namespaces/terminal.config.js';
import { type SharedStateConfig, sharedStateConfig } from './namespaces/shared-state.config.js';
import { type AuthCacheConfig, authCacheConfig } from './namespaces/auth-cache.config.js';
import { type PreviewsConfig, previewsConfig } from './namespaces/previews.config.js';
import { validateEnvironment } from './validate-environment.js';

/** The whole configuration of one application: each namespace's values under its name. */
export interface Configuration {
  app: AppConfig;
  database: DatabaseConfig;
  auth: AuthConfig;
  mail: MailConfig;
  runtime: RuntimeConfig;
  terminal: TerminalConfig;
  http: HttpConfig;
  observability: ObservabilityConfig;
  logging: LoggingConfig;
  sharedState: SharedStateConfig;
  authCache: AuthCacheConfig;
  previews: PreviewsConfig;
}

/** Every namespace, each loaded into the application by `configModule()`. */
export const CONFIG_NAMESPACES = [
  appConfig,
  databaseConfig,
  authConfig,
  mailConfig,
  runtimeConfig,
  terminalConfig,
  httpConfig,
  observabilityConfig,
  loggingConfig,
  sharedStateConfig,
  authCacheConfig,
  previewsConfig,
] as const;

/**
 * Validates the environment (`validateEnvironment`, the class-validator schema and the
 * cross-variable rules) and builds every namespace from it. Throws ConfigurationError listing
 * every problem at once. Entry points call it once at boot (`loadOrExit`), tests with their own
 * environment map; nothing reads `process.env` after that.
 */
export function loadConfiguration(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Configuration {
  const validated = validateEnvironment(env, cwd);
  return {
    app: appConfig.build(validated, cwd),
    database: databaseConfig.build(validated, cwd),
    auth: authConfig.build(validated, cwd),
    mail: mailConfig.build(validated, cwd),
    runtime: runtimeConfig.build(validated, cwd),
    terminal: terminalConfig.build(validated, cwd),
    http: httpConfig.build(validated, cwd),
    observability: observabilityConfig.build(validated, cwd),
    logging: loggingConfig.build(validated, cwd),
    sharedState: sharedStateConfig.build(validated, cwd),
    authCache: authCacheConfig.build(validated, cwd),
    previews: previewsConfig.build(validated, cwd),
  };
}

/**
 * The application's ConfigModule (global): each namespace's values of this configuration under
 * the namespace's key, so `@Inject(httpConfig.KEY)` gets them. Every application gets its own, so
 * several applications with different configurations can live in one process (tests do). Nothing
 * comes from the process environment: no `.env` file, `process.env` neither copied, validated nor
 * written (ConfigModule.forRoot writes validated variables back into it), and ConfigService never
 * falls back to it. See docs/architecture.md.
 */
export function configModule(configuration: Configuration): Promise<DynamicModule> {
  return ConfigModule.forRoot({
    isGlobal: true,
    ignoreEnvFile: true,
    validatePredefined: false,
    skipProcessEnv: true,
    load: CONFIG_NAMESPACES.map((namespace) => registerAs(namespace.NAMESPACE, () => configuration[namespace.NAMESPACE])),
  });
}
