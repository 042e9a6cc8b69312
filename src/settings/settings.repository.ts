import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Model } from 'mongoose';
import { isDuplicateKeyError } from '../common/errors/database-errors.js';
import { SETTINGS_ID, SettingsRecord } from './schemas/settings.schema.js';

/** The server's settings document (`settings`, `_id: "server"`). */
@Injectable()
export class SettingsRepository {
  constructor(@InjectModel(SettingsRecord.name) private readonly settings: Model<SettingsRecord>) {}

  /**
   * The stored installation id; the first caller ever stores `candidate`. Atomic across replicas:
   * the document is created by one upsert with `$setOnInsert`, so servers booting together all
   * read back the one id that won (a concurrent upsert that loses with a duplicate key reads it).
   */
  async installationId(candidate: string): Promise<string> {
    for (let attempt = 0; attempt < 3; attempt += 1) {
      try {
        const stored = await this.settings
          .findOneAndUpdate(
            { _id: SETTINGS_ID },
            { $setOnInsert: { installation_id: candidate } },
            { upsert: true, returnDocument: 'after' },
          )
          .lean<SettingsRecord>()
          .exec();
        if (stored?.installation_id) return stored.installation_id;
        // A document without an id (written by something else first): give it one, once.
        await this.settings
          .updateOne({ _id: SETTINGS_ID, installation_id: { $exists: false } }, { $set: { installation_id: candidate } })
          .exec();
      } catch (error) {
        if (!isDuplicateKeyError(error)) throw error;
        // Another replica created the document between our look and our insert: read its id.
      }
    }
    const stored = await this.settings.findById(SETTINGS_ID).lean<SettingsRecord>().exec();
    if (!stored?.installation_id) throw new Error('The settings document has no installation id');
    return stored.installation_id;
  }
}
