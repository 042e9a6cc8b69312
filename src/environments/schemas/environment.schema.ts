import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { Types } from 'mongoose';
import { PHASES, QUEUED_ACTIONS, type Phase, type QueuedAction } from '../environment.js';

/** The `environments` collection: one document per environment, its lifecycle state included. */
@Schema({
  collection: 'environments',
  versionKey: false,
  timestamps: { createdAt: 'created_at', updatedAt: 'updated_at' },
  minimize: false,
})
export class EnvironmentRecord {
  _id!: Types.ObjectId;

  @Prop({ type: String, required: true, index: true })
  user_id!: string;

  @Prop({ type: String, required: true })
  name!: string;

  @Prop({ type: String, required: true })
  slug!: string;

  @Prop({ type: String, required: true })
  template_id!: string;

  @Prop({ type: String, required: true })
  template_name!: string;

  @Prop({ type: Object, required: true })
  resources!: { cpu: string; memory: string; storage: string };

  /**
   * Stored as name/value pairs, not as an object: FerretDB v1 treats two objects with equal values
   * under different keys as equal and skips such a $set.
   */
  @Prop({ type: [{ _id: false, name: { type: String, required: true }, value: { type: String, required: true } }], default: [] })
  environment_variables!: { name: string; value: string }[];

  /** Ports its owner added for web previews (besides the template's), in the order given. */
  @Prop({ type: [Number], default: [] })
  preview_ports!: number[];

  @Prop({ type: String, enum: PHASES, required: true, index: true })
  phase!: Phase;

  @Prop({ type: String, default: null })
  status_message!: string | null;

  @Prop({ type: Object, default: null })
  installation!: { completed: boolean; failed: boolean; steps_done: number; steps_total: number } | null;

  @Prop({ type: Object, default: null })
  operation!: { id: string; kind: string; started_at: Date; heartbeat_at: Date } | null;

  @Prop({ type: String, enum: [...QUEUED_ACTIONS, null], default: null })
  queued_action!: QueuedAction | null;

  @Prop({ type: Date, default: null })
  last_accessed!: Date | null;

  @Prop({ type: Date, default: null })
  started_at!: Date | null;

  @Prop({ type: Date, default: null })
  terminated_at!: Date | null;

  created_at!: Date;
  updated_at!: Date;
}

export const EnvironmentSchema = SchemaFactory.createForClass(EnvironmentRecord);
EnvironmentSchema.index({ user_id: 1, created_at: -1 });

/**
 * Live environments per user, for the plan quota: reserved with one conditional `$inc`, so two
 * parallel creations can never both take the last slot.
 */
@Schema({ collection: 'environment_quotas', versionKey: false })
export class EnvironmentQuotaRecord {
  @Prop({ type: String, required: true })
  _id!: string; // the user id

  @Prop({ type: Number, required: true, default: 0 })
  live!: number;
}

export const EnvironmentQuotaSchema = SchemaFactory.createForClass(EnvironmentQuotaRecord);
