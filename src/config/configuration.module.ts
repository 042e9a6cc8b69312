import { DynamicModule, Global, Module } from '@nestjs/common';
import {
  AppConfig,
  AuthConfig,
  Configuration,
  DatabaseConfig,
  HttpConfig,
  MailConfig,
  ObservabilityConfig,
  RuntimeConfig,
  TerminalConfig,
} from './configuration.js';

/**
 * Provides each concern of the validated configuration as its own injectable class token,
 * e.g. `constructor(private readonly http: HttpConfig)`.
 */
@Global()
@Module({})
export class ConfigurationModule {
  static forRoot(configuration: Configuration): DynamicModule {
    const providers = [
      { provide: AppConfig, useValue: configuration.app },
      { provide: DatabaseConfig, useValue: configuration.database },
      { provide: AuthConfig, useValue: configuration.auth },
      { provide: MailConfig, useValue: configuration.mail },
      { provide: RuntimeConfig, useValue: configuration.runtime },
      { provide: TerminalConfig, useValue: configuration.terminal },
      { provide: HttpConfig, useValue: configuration.http },
      { provide: ObservabilityConfig, useValue: configuration.observability },
    ];
    return { module: ConfigurationModule, providers, exports: providers.map((p) => p.provide) };
  }
}
