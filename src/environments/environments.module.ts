import { Module } from '@nestjs/common';
import { MongooseModule } from '@nestjs/mongoose';
import { AuthModule } from '../auth/auth.module.js';
import { PreviewLinksModule } from '../previews/preview-links.module.js';
import { TemplatesModule } from '../templates/templates.module.js';
import { UsersModule } from '../users/users.module.js';
import { EnvironmentListCache } from './environment-list-cache.js';
import { EnvironmentMetrics } from './environment-metrics.js';
import { EnvironmentOperations } from './environment-operations.js';
import { EnvironmentQuota } from './environment-quota.js';
import { EnvironmentSpecs } from './environment-specs.js';
import { EnvironmentsController } from './environments.controller.js';
import { EnvironmentsReconciler } from './environments.reconciler.js';
import { EnvironmentsRepository } from './environments.repository.js';
import { EnvironmentsService } from './environments.service.js';
import { LogsGateway } from './logs.gateway.js';
import { EnvironmentStatusHub } from './environment-status-hub.js';
import { EnvironmentResponses } from './environment-responses.js';
import { StatusGateway } from './status.gateway.js';
import { EnvironmentSocketAccess } from './environment-socket-access.js';
import { EnvironmentQuotaRecord, EnvironmentQuotaSchema, EnvironmentRecord, EnvironmentSchema } from './schemas/environment.schema.js';

@Module({
  imports: [
    AuthModule,
    UsersModule,
    TemplatesModule,
    PreviewLinksModule,
    MongooseModule.forFeature([
      { name: EnvironmentRecord.name, schema: EnvironmentSchema },
      { name: EnvironmentQuotaRecord.name, schema: EnvironmentQuotaSchema },
    ]),
  ],
  controllers: [EnvironmentsController],
  providers: [
    EnvironmentsRepository,
    EnvironmentListCache,
    EnvironmentSpecs,
    EnvironmentQuota,
    EnvironmentOperations,
    EnvironmentsService,
    EnvironmentsReconciler,
    EnvironmentSocketAccess,
    LogsGateway,
    EnvironmentStatusHub,
    EnvironmentResponses,
    StatusGateway,
    EnvironmentMetrics,
  ],
  exports: [EnvironmentsService, EnvironmentSocketAccess, EnvironmentResponses],
})
export class EnvironmentsModule {}
