import { Module } from '@nestjs/common';
import { MongooseModule } from '@nestjs/mongoose';
import { type RuntimeConfig, runtimeConfig } from '../config/namespaces/runtime.config.js';
import { Installation, resolveInstallation } from './installation.js';
import { SettingsRecord, SettingsSchema } from './schemas/settings.schema.js';
import { SettingsRepository } from './settings.repository.js';

/**
 * The server's own settings (the `settings` collection) and what is derived from them: the
 * `Installation` (its id), resolved once at boot, before the runtime is built.
 */
@Module({
  imports: [MongooseModule.forFeature([{ name: SettingsRecord.name, schema: SettingsSchema }])],
  providers: [
    SettingsRepository,
    {
      provide: Installation,
      inject: [runtimeConfig.KEY, SettingsRepository],
      useFactory: (config: RuntimeConfig, settings: SettingsRepository) => resolveInstallation(config, settings),
    },
  ],
  exports: [Installation],
})
export class SettingsModule {}
