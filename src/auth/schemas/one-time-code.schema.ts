import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';

export const CODE_PURPOSES = ['email_verification', 'password_reset'] as const;
export type CodePurpose = (typeof CODE_PURPOSES)[number];

/**
 * Single-use codes mailed to people: 6-digit email-verification codes and password-reset tokens.
 * Only keyed digests are stored. One live code per user and purpose (a new one replaces the old).
 */
@Schema({ collection: 'one_time_codes', versionKey: false })
export class OneTimeCodeRecord {
  @Prop({ type: String, required: true })
  _id!: string; // `${purpose}:${user_id}`

  @Prop({ type: String, required: true, index: true })
  user_id!: string;

  @Prop({ type: String, enum: CODE_PURPOSES, required: true })
  purpose!: CodePurpose;

  @Prop({ type: String, required: true, index: true })
  digest!: string;

  @Prop({ type: Date, required: true, index: true })
  expires_at!: Date;

  @Prop({ type: Number, default: 0 })
  failed_attempts!: number;

  @Prop({ type: Date, default: null })
  consumed_at!: Date | null;

  @Prop({ type: Date, required: true })
  sent_at!: Date;

  /** Sends within the current throttle window (see resend rules in AuthService). */
  @Prop({ type: Number, default: 1 })
  sends_in_window!: number;

  @Prop({ type: Date, required: true })
  window_started_at!: Date;
}

export const OneTimeCodeSchema = SchemaFactory.createForClass(OneTimeCodeRecord);
