import { DynamicModule, Module, Type } from '@nestjs/common';
import { AuditModule } from '../audit/audit.module.js';
import { Argon2PasswordHasher, PasswordHasher } from '../auth/passwords/password-hasher.js';
import { ClockModule } from '../common/clock/clock.module.js';
import { DomainEventsModule } from '../common/events/domain-events.js';
import { LifecycleModule } from '../common/lifecycle/process-lifecycle.js';
import { SharedStateModule } from '../common/shared-state/shared-state.module.js';
import { type Configuration, configModule } from '../config/configuration.js';
import { DatabaseModule } from '../database/database.module.js';

/**
 * The password hasher alone, for `create-admin`: the CLI needs it, not the rest of AuthModule
 * (its guard, tokens, Google sign-in, scheduled clean-up).
 */
@Module({
  providers: [{ provide: PasswordHasher, useClass: Argon2PasswordHasher }],
  exports: [PasswordHasher],
})
export class PasswordHashingModule {}

/**
 * The application context of the admin command line (`src/cli.ts`): the configuration, the database
 * connection, the clock, domain events (published to the running servers through Redis when
 * REDIS_URL is set, so a plan or role changed here reaches their caches) and the audit log, plus the
 * feature modules the command needs (`UsersModule` for the account commands, `TemplatesModule` for
 * `templates:load`). Nothing else: no HTTP server, no WebSocket gateways, no runtime (so no tmux on
 * the host), no environments, reconciler or scheduler, no mail. A command therefore never touches
 * an environment.
 */
@Module({})
export class CliModule {
  static forCommand(configuration: Configuration, needs: readonly Type[]): DynamicModule {
    return {
      module: CliModule,
      imports: [
        configModule(configuration),
        LifecycleModule,
        ClockModule,
        DatabaseModule,
        SharedStateModule,
        DomainEventsModule,
        AuditModule,
        ...needs,
      ],
    };
  }
}
