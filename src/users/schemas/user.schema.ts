import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { HydratedDocument, Types } from 'mongoose';
import { PLAN_NAMES, type PlanName } from '../plans.js';
import { ROLES, type Role } from '../user.js';

/**
 * The `users` collection. `username_normalized` and `email` (stored lower-case) carry the unique
 * indexes, so uniqueness is case-insensitive without collation indexes (FerretDB has none).
 */
@Schema({ collection: 'users', timestamps: { createdAt: 'created_at', updatedAt: 'updated_at' }, versionKey: false })
export class UserRecord {
  _id!: Types.ObjectId;

  @Prop({ type: String, required: true })
  username!: string;

  @Prop({ type: String, required: true, unique: true })
  username_normalized!: string;

  @Prop({ type: String, required: true, unique: true })
  email!: string;

  @Prop({ type: String, default: null })
  password_hash!: string | null;

  @Prop({ type: String, default: null })
  full_name!: string | null;

  @Prop({ type: String, default: null })
  avatar_url!: string | null;

  @Prop({ type: String, default: null })
  preferred_region!: string | null;

  @Prop({ type: Boolean, default: true })
  is_active!: boolean;

  @Prop({ type: Boolean, default: false })
  is_verified!: boolean;

  @Prop({ type: String, enum: ROLES, default: 'user', index: true })
  role!: Role;

  @Prop({ type: String, enum: PLAN_NAMES, default: 'free' })
  subscription_plan!: PlanName;

  @Prop({ type: Number, default: 0 })
  failed_login_count!: number;

  @Prop({ type: Date, default: null })
  locked_until!: Date | null;

  @Prop({ type: Date, default: null })
  last_login!: Date | null;

  @Prop({ type: Date, default: null })
  deletion_requested_at!: Date | null;

  created_at!: Date;
  updated_at!: Date;
}

export type UserDocument = HydratedDocument<UserRecord>;
export const UserSchema = SchemaFactory.createForClass(UserRecord);
