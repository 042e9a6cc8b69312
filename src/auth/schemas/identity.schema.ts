import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';

/** An external identity (e.g. a Google account) linked to a user. Unique per provider + subject. */
@Schema({ collection: 'identities', versionKey: false, timestamps: { createdAt: 'created_at', updatedAt: false } })
export class IdentityRecord {
  /** `${provider}:${subject}`: one document per external identity, enforced by _id. */
  @Prop({ type: String, required: true })
  _id!: string;

  @Prop({ type: String, required: true })
  provider!: string;

  @Prop({ type: String, required: true })
  subject!: string;

  @Prop({ type: String, required: true, index: true })
  user_id!: string;

  @Prop({ type: String, default: null })
  email!: string | null;

  created_at!: Date;
}

export const IdentitySchema = SchemaFactory.createForClass(IdentityRecord);
IdentitySchema.index({ provider: 1, subject: 1 }, { unique: true });
