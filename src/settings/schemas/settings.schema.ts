import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';

/** The `_id` of the one document of the `settings` collection. */
export const SETTINGS_ID = 'server';

/**
 * The `settings` collection: one document (`_id: "server"`) holding what the server decides once and
 * keeps for good, shared by every replica: today the installation id (see installation.ts).
 */
@Schema({ collection: 'settings', versionKey: false, timestamps: { createdAt: 'created_at', updatedAt: 'updated_at' } })
export class SettingsRecord {
  @Prop({ type: String, required: true })
  _id!: string;

  /** Set once, when the document is created (or by the first server that finds it without one). */
  @Prop({ type: String })
  installation_id?: string;

  created_at!: Date;
  updated_at!: Date;
}

export const SettingsSchema = SchemaFactory.createForClass(SettingsRecord);
