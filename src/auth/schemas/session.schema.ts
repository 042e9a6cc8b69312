import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';

/**
 * One signed-in device: a refresh-token family. Only digests of refresh token ids are stored.
 * `previous_jti_digest` + `rotated_at` let a client that lost a refresh response retry within the
 * grace window; any other reuse revokes the family.
 */
@Schema({ collection: 'sessions', versionKey: false })
export class SessionRecord {
  @Prop({ type: String, required: true })
  _id!: string;

  @Prop({ type: String, required: true, index: true })
  user_id!: string;

  @Prop({ type: String, required: true })
  current_jti_digest!: string;

  @Prop({ type: String, default: null })
  previous_jti_digest!: string | null;

  @Prop({ type: Date, default: null })
  rotated_at!: Date | null;

  @Prop({ type: Date, required: true })
  created_at!: Date;

  @Prop({ type: Date, required: true })
  last_used_at!: Date;

  @Prop({ type: Date, required: true, index: true })
  expires_at!: Date;

  @Prop({ type: Date, default: null })
  revoked_at!: Date | null;

  @Prop({ type: String, default: null })
  revoke_reason!: string | null;

  @Prop({ type: String, default: null })
  user_agent!: string | null;

  @Prop({ type: String, default: null })
  ip!: string | null;
}

export const SessionSchema = SchemaFactory.createForClass(SessionRecord);
