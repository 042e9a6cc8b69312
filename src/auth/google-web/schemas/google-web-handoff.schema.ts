import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';

/**
 * A finished Google sign-in waiting for the console to collect it (GoogleWebHandoffs): the sign-in
 * answer encrypted with a key derived from the one-time code, stored under a digest of the code.
 * The code itself is never stored, so the database alone cannot yield the tokens.
 */
@Schema({ collection: 'google_web_handoffs', versionKey: false })
export class GoogleWebHandoffRecord {
  /** base64url SHA-256 of `id:` + the code. */
  @Prop({ type: String, required: true })
  _id!: string;

  /** AES-256-GCM: iv, tag and ciphertext, base64url, dot-separated. */
  @Prop({ type: String, required: true })
  sealed!: string;

  @Prop({ type: Date, required: true, index: true })
  expires_at!: Date;
}

export const GoogleWebHandoffSchema = SchemaFactory.createForClass(GoogleWebHandoffRecord);
