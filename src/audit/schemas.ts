import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { Types } from 'mongoose';

/** Who did what to whom, from where. Written for security-relevant actions; read by admins. */
@Schema({ collection: 'audit_events', versionKey: false })
export class AuditEventRecord {
  _id!: Types.ObjectId;

  @Prop({ type: String, required: true, index: true })
  action!: string;

  @Prop({ type: String, default: null, index: true })
  actor_id!: string | null;

  @Prop({ type: String, default: null })
  actor_username!: string | null;

  @Prop({ type: String, default: null, index: true })
  target_id!: string | null;

  @Prop({ type: String, default: null })
  target!: string | null;

  @Prop({ type: String, default: null })
  ip!: string | null;

  @Prop({ type: Object, default: {} })
  details!: Record<string, unknown>;

  @Prop({ type: Date, required: true, index: true })
  at!: Date;
}

export const AuditEventSchema = SchemaFactory.createForClass(AuditEventRecord);
