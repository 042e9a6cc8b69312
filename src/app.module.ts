import { DynamicModule, Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { AuditModule } from './audit/audit.module.js';
import { AuthModule } from './auth/auth.module.js';
import { ClockModule } from './common/clock/clock.module.js';
import { DomainEventsModule } from './common/events/domain-events.js';
import { HealthModule } from './common/health/health.module.js';
import { LifecycleModule } from './common/lifecycle/process-lifecycle.js';
import { LoggingModule } from './common/logging/logging.module.js';
import { MetricsModule } from './common/metrics/metrics.module.js';
import { RateLimitModule } from './common/rate-limit/rate-limit.module.js';
import { SharedStateModule } from './common/shared-state/shared-state.module.js';
import { type Configuration, configModule } from './config/configuration.js';
import { DatabaseModule } from './database/database.module.js';
import { MailModule } from './mail/mail.module.js';
import { UsersModule } from './users/users.module.js';
import { EnvironmentsModule } from './environments/environments.module.js';
import { RuntimeModule } from './runtime/runtime.module.js';
import { TemplatesModule } from './templates/templates.module.js';
import { TerminalModule } from './terminal/terminal.module.js';
import { PreviewsModule } from './previews/previews.module.js';

/** The application root: cross-cutting modules first, then one module per capability. */
@Module({})
export class AppModule {
  static forRoot(configuration: Configuration): DynamicModule {
    return {
      module: AppModule,
      imports: [
        configModule(configuration),
        LoggingModule,
        LifecycleModule,
        ClockModule,
        MetricsModule,
        SharedStateModule,
        RateLimitModule,
        DatabaseModule,
        ScheduleModule.forRoot(),
        DomainEventsModule,
        HealthModule,
        MailModule,
        AuditModule,
        AuthModule,
        UsersModule,
        TemplatesModule,
        RuntimeModule,
        EnvironmentsModule,
        TerminalModule,
        PreviewsModule,
      ],
    };
  }
}
