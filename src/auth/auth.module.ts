import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { JwtModule } from '@nestjs/jwt';
import { MongooseModule } from '@nestjs/mongoose';
import { type AuthConfig, authConfig } from '../config/namespaces/auth.config.js';
import { UsersModule } from '../users/users.module.js';
import { AccountsMaintenance } from './accounts-maintenance.js';
import { AuthController } from './auth.controller.js';
import { AuthService } from './auth.service.js';
import { GoogleModule } from './google/google.module.js';
import { GoogleWebHandoffs } from './google-web/google-web-handoffs.js';
import { GoogleWebController } from './google-web/google-web.controller.js';
import { GoogleWebGuard } from './google-web/google-web.guard.js';
import { GoogleWebStrategy } from './google-web/google-web.strategy.js';
import { GoogleWebHandoffRecord, GoogleWebHandoffSchema } from './google-web/schemas/google-web-handoff.schema.js';
import { IdentitiesRepository } from './identities.repository.js';
import { JwtAuthGuard } from './jwt/jwt-auth.guard.js';
import { JwtStrategy } from './jwt/jwt.strategy.js';
import { LoginLockout } from './lockout/login-lockout.js';
import { LoginLockoutGuard } from './lockout/login-lockout.guard.js';
import { OneTimeCodesRepository } from './one-time-codes.repository.js';
import { Argon2PasswordHasher, PasswordHasher } from './passwords/password-hasher.js';
import { PrincipalCache } from './principal-cache.js';
import { IdentityRecord, IdentitySchema } from './schemas/identity.schema.js';
import { OneTimeCodeRecord, OneTimeCodeSchema } from './schemas/one-time-code.schema.js';
import { SessionRecord, SessionSchema } from './schemas/session.schema.js';
import { SessionRevoker } from './session-revoker.js';
import { SessionSockets } from './session-sockets.js';
import { SessionsRepository } from './sessions.repository.js';
import { jwtModuleOptions, TokenService } from './tokens/token.service.js';

@Module({
  imports: [
    UsersModule,
    GoogleModule,
    JwtModule.registerAsync({ inject: [authConfig.KEY], useFactory: (config: AuthConfig) => jwtModuleOptions(config) }),
    MongooseModule.forFeature([
      { name: SessionRecord.name, schema: SessionSchema },
      { name: OneTimeCodeRecord.name, schema: OneTimeCodeSchema },
      { name: IdentityRecord.name, schema: IdentitySchema },
      { name: GoogleWebHandoffRecord.name, schema: GoogleWebHandoffSchema },
    ]),
  ],
  controllers: [AuthController, GoogleWebController],
  providers: [
    AuthService,
    TokenService,
    SessionsRepository,
    SessionRevoker,
    PrincipalCache,
    SessionSockets,
    OneTimeCodesRepository,
    IdentitiesRepository,
    AccountsMaintenance,
    LoginLockout,
    LoginLockoutGuard,
    JwtStrategy,
    GoogleWebStrategy,
    GoogleWebGuard,
    GoogleWebHandoffs,
    { provide: PasswordHasher, useClass: Argon2PasswordHasher },
    // The second global guard, after RateLimitModule's: access token unless @Public(), @AdminOnly().
    { provide: APP_GUARD, useClass: JwtAuthGuard },
  ],
  exports: [AuthService, TokenService, SessionSockets],
})
export class AuthModule {}
