import { Global, Module } from '@nestjs/common';
import { MongooseModule } from '@nestjs/mongoose';
import { AuditService } from './audit.service.js';
import { AuditEventRecord, AuditEventSchema } from './schemas.js';

@Global()
@Module({
  imports: [MongooseModule.forFeature([{ name: AuditEventRecord.name, schema: AuditEventSchema }])],
  providers: [AuditService],
  exports: [AuditService],
})
export class AuditModule {}
