import { Module } from '@nestjs/common';
import { MongooseModule } from '@nestjs/mongoose';
import { TemplateCache } from './template-cache.js';
import { TemplateRecord, TemplateSchema } from './schemas/template.schema.js';
import { TemplatesController } from './templates.controller.js';
import { TemplatesLoader } from './templates.loader.js';
import { TemplatesRepository } from './templates.repository.js';
import { TemplatesService } from './templates.service.js';

/** Environment templates: YAML files loaded at boot (and by `templates:load`), the read API and the admin API. */
@Module({
  imports: [MongooseModule.forFeature([{ name: TemplateRecord.name, schema: TemplateSchema }])],
  controllers: [TemplatesController],
  providers: [TemplatesRepository, TemplatesService, TemplatesLoader, TemplateCache],
  exports: [TemplatesService, TemplatesLoader, TemplateCache],
})
export class TemplatesModule {}
