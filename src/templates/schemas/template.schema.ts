import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { HydratedDocument, Types } from 'mongoose';
import { TEMPLATE_CATEGORIES, TEMPLATE_STATUSES, type TemplateCategory, type TemplateStatus } from '../template.js';

/** Where the stored definition came from: a YAML file (the loader manages it, `--prune` may remove it) or the admin API. */
export const TEMPLATE_SOURCES = ['file', 'api'] as const;
export type TemplateSource = (typeof TEMPLATE_SOURCES)[number];

/** Who soft-deleted a template: an admin (stays deleted until a newer file version or a POST brings it back) or the loader's prune. */
export const TEMPLATE_DELETERS = ['admin', 'prune'] as const;
export type TemplateDeleter = (typeof TEMPLATE_DELETERS)[number];

@Schema({ _id: false, versionKey: false })
export class TemplateUserRecord {
  @Prop({ type: String, required: true }) name!: string;
  @Prop({ type: Number, required: true }) uid!: number;
  @Prop({ type: Number, required: true }) gid!: number;
  @Prop({ type: String, required: true }) home!: string;
}

@Schema({ _id: false, versionKey: false })
export class TemplatePortRecord {
  @Prop({ type: String, required: true }) name!: string;
  @Prop({ type: Number, required: true }) port!: number;
  @Prop({ type: String, required: true, enum: ['TCP', 'UDP'] }) protocol!: 'TCP' | 'UDP';
}

@Schema({ _id: false, versionKey: false })
export class TemplateStartupRecord {
  @Prop({ type: [String], default: [] }) system!: string[];
  @Prop({ type: [String], default: [] }) user!: string[];
}

@Schema({ _id: false, versionKey: false })
export class TemplateResourcesRecord {
  @Prop({ type: String, required: true }) cpu!: string;
  @Prop({ type: String, required: true }) memory!: string;
  @Prop({ type: String, required: true }) storage!: string;
}

/**
 * The `templates` collection: one document per template name (unique index on `name`, which every
 * document has). Soft-deleted templates stay (with `deleted_at`) so that environments created from
 * them keep working and the name stays taken. `revision` grows with every replacement of the
 * definition; the loader's and the admin API's writes are conditional on it, so concurrent
 * writers (several replicas booting at once) never lose or duplicate an update.
 */
@Schema({
  collection: 'templates',
  timestamps: { createdAt: 'created_at', updatedAt: 'updated_at' },
  versionKey: false,
  minimize: false,
})
export class TemplateRecord {
  _id!: Types.ObjectId;

  @Prop({ type: String, required: true, unique: true })
  name!: string;

  @Prop({ type: String, required: true })
  display_name!: string;

  @Prop({ type: String, required: true })
  description!: string;

  @Prop({ type: String, required: true, enum: TEMPLATE_CATEGORIES })
  category!: TemplateCategory;

  @Prop({ type: [String], default: [] })
  tags!: string[];

  @Prop({ type: String, required: true, enum: TEMPLATE_STATUSES })
  status!: TemplateStatus;

  @Prop({ type: String, required: true })
  version!: string;

  @Prop({ type: Number, default: null })
  default_port!: number | null;

  @Prop({ type: String, default: null })
  documentation_url!: string | null;

  @Prop({ type: String, default: null })
  icon_url!: string | null;

  @Prop({ type: String, required: true })
  image!: string;

  @Prop({ type: SchemaFactory.createForClass(TemplateUserRecord), required: true })
  user!: TemplateUserRecord;

  @Prop({ type: String, required: true })
  shell!: string;

  @Prop({ type: String, default: '' })
  working_directory!: string;

  @Prop({ type: [SchemaFactory.createForClass(TemplatePortRecord)], default: [] })
  ports!: TemplatePortRecord[];

  @Prop({ type: Object, default: {} })
  environment_variables!: Record<string, string>;

  @Prop({ type: SchemaFactory.createForClass(TemplateStartupRecord), required: true })
  startup!: TemplateStartupRecord;

  @Prop({ type: [String], default: [] })
  required_commands!: string[];

  @Prop({ type: SchemaFactory.createForClass(TemplateResourcesRecord), required: true })
  default_resources!: TemplateResourcesRecord;

  @Prop({ type: Boolean, default: false })
  run_as_non_root!: boolean;

  @Prop({ type: Number, default: 0 })
  usage_count!: number;

  /** SHA-256 of the canonical definition (see templateContentHash). */
  @Prop({ type: String, required: true })
  content_hash!: string;

  @Prop({ type: String, enum: TEMPLATE_SOURCES, required: true })
  source!: TemplateSource;

  @Prop({ type: Number, default: 0 })
  revision!: number;

  @Prop({ type: Date, default: null })
  deleted_at!: Date | null;

  @Prop({ type: String, enum: [...TEMPLATE_DELETERS, null], default: null })
  deleted_by!: TemplateDeleter | null;

  created_at!: Date;
  updated_at!: Date;
}

export type TemplateDocument = HydratedDocument<TemplateRecord>;
export const TemplateSchema = SchemaFactory.createForClass(TemplateRecord);
