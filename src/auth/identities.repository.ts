import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Model } from 'mongoose';
import { isDuplicateKeyError } from '../common/errors/database-errors.js';
import { leanMapper } from '../database/lean-mapper.js';
import { IdentityRecord } from './schemas/identity.schema.js';

export type IdentityProvider = 'google';

const asUserId = leanMapper((record: IdentityRecord) => record.user_id);

@Injectable()
export class IdentitiesRepository {
  constructor(@InjectModel(IdentityRecord.name) private readonly identities: Model<IdentityRecord>) {}

  async findUserId(provider: IdentityProvider, subject: string): Promise<string | null> {
    return asUserId.one(this.identities.findOne({ provider, subject }));
  }

  /** Links the identity to the user; returns the user it is linked to (another one if a parallel request won). */
  async link(provider: IdentityProvider, subject: string, userId: string, email: string | null): Promise<string> {
    try {
      await this.identities.create({ _id: `${provider}:${subject}`, provider, subject, user_id: userId, email });
      return userId;
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
      return (await this.findUserId(provider, subject)) ?? userId;
    }
  }

  async deleteAllForUser(userId: string): Promise<void> {
    await this.identities.deleteMany({ user_id: userId }).exec();
  }
}
