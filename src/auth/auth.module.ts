import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { MongooseModule } from '@nestjs/mongoose';
import { UsersModule } from '../users/users.module.js';
import { AccountsMaintenance } from './accounts-maintenance.js';
import { AuthController } from './auth.controller.js';
import { AuthGuard } from './auth.guard.js';
import { AuthService } from './auth.service.js';
import { GoogleModule } from './google/google.module.js';
import { IdentitiesRepository } from './identities.repository.js';
import { OneTimeCodesRepository } from './one-time-codes.repository.js';
import { Argon2PasswordHasher, PasswordHasher } from './passwords/password-hasher.js';
import { IdentityRecord, IdentitySchema } from './schemas/identity.schema.js';
import { OneTimeCodeRecord, OneTimeCodeSchema } from './schemas/one-time-code.schema.js';
import { SessionRecord, SessionSchema } from './schemas/session.schema.js';
import { SessionRevoker } from './session-revoker.js';
import { SessionsRepository } from './sessions.repository.js';
import { TokenService } from './tokens/token.service.js';

@Module({
  imports: [
    UsersModule,
    GoogleModule,
    MongooseModule.forFeature([
      { name: SessionRecord.name, schema: SessionSchema },
      { name: OneTimeCodeRecord.name, schema: OneTimeCodeSchema },
      { name: IdentityRecord.name, schema: IdentitySchema },
    ]),
  ],
  controllers: [AuthController],
  providers: [
    AuthService,
    TokenService,
    SessionsRepository,
    SessionRevoker,
    OneTimeCodesRepository,
    IdentitiesRepository,
    AccountsMaintenance,
    { provide: PasswordHasher, useClass: Argon2PasswordHasher },
    { provide: APP_GUARD, useClass: AuthGuard },
  ],
  exports: [AuthService, TokenService],
})
export class AuthModule {}
