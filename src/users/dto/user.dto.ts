import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, IsUrl, Length, Matches, Max, MaxLength, Min, IsBoolean } from 'class-validator';
import { PLAN_NAMES, type PlanName } from '../plans.js';
import { ROLES, type Role, type User } from '../user.js';

const trim = ({ value }: { value: unknown }): unknown => (typeof value === 'string' ? value.trim() : value);
const toInt = ({ value }: { value: unknown }): unknown => (typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value);

/** The User of the mobile client contract (plus `role`). */
export class UserResponseDto {
  @ApiProperty({ example: '6651f0c2a4b1c2d3e4f5a6b7' })
  id!: string;

  @ApiProperty({ example: 'ada_lovelace' })
  username!: string;

  @ApiProperty({ example: 'ada@example.com' })
  email!: string;

  @ApiProperty()
  is_active!: boolean;

  @ApiProperty({ description: 'True once the email address is confirmed' })
  is_verified!: boolean;

  @ApiProperty({ enum: PLAN_NAMES })
  subscription_plan!: PlanName;

  @ApiProperty({ enum: ROLES })
  role!: Role;

  @ApiProperty({ example: '2026-11-27T10:00:00.000Z' })
  created_at!: string;

  @ApiPropertyOptional({ nullable: true, type: String })
  full_name!: string | null;

  @ApiPropertyOptional({ nullable: true, type: String, example: '2026-11-27T10:00:00.000Z' })
  last_login!: string | null;

  @ApiPropertyOptional({ nullable: true, type: String, example: 'eu-west' })
  preferred_region!: string | null;

  @ApiPropertyOptional({ nullable: true, type: String })
  avatar_url!: string | null;
}

export function toUserResponse(user: User): UserResponseDto {
  return {
    id: user.id,
    username: user.username,
    email: user.email,
    is_active: user.isActive,
    is_verified: user.isVerified,
    subscription_plan: user.plan,
    role: user.role,
    created_at: user.createdAt.toISOString(),
    full_name: user.fullName,
    last_login: user.lastLogin ? user.lastLogin.toISOString() : null,
    preferred_region: user.preferredRegion,
    avatar_url: user.avatarUrl,
  };
}

export class UpdateProfileDto {
  @ApiPropertyOptional({ nullable: true, example: 'Ada Lovelace' })
  @IsOptional()
  @Transform(trim)
  @IsString()
  @Length(1, 100)
  full_name?: string | null;

  @ApiPropertyOptional({ nullable: true, example: 'eu-west', description: '1-32 characters of a-z 0-9 -' })
  @IsOptional()
  @Transform(trim)
  @IsString()
  @Matches(/^[a-z0-9-]{1,32}$/, { message: 'preferred_region must be 1-32 characters of a-z, 0-9 and -' })
  preferred_region?: string | null;

  @ApiPropertyOptional({ nullable: true, example: 'https://example.com/ada.png' })
  @IsOptional()
  @Transform(trim)
  @IsString()
  @MaxLength(2048)
  @IsUrl({ protocols: ['https', 'http'], require_protocol: true }, { message: 'avatar_url must be an http(s) URL' })
  avatar_url?: string | null;
}

export class PaginationQueryDto {
  @ApiPropertyOptional({ default: 1, minimum: 1 })
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(100_000)
  page?: number;

  @ApiPropertyOptional({ default: 20, minimum: 1, maximum: 100 })
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(100)
  page_size?: number;
}

export class UserSearchQueryDto extends PaginationQueryDto {
  @ApiPropertyOptional({ description: 'Part of a username or email address' })
  @IsOptional()
  @Transform(trim)
  @IsString()
  @Length(1, 100)
  query?: string;
}

export class AdminUpdateUserDto {
  @ApiPropertyOptional({ enum: PLAN_NAMES })
  @IsOptional()
  @IsIn(PLAN_NAMES)
  subscription_plan?: PlanName;

  @ApiPropertyOptional({ enum: ROLES })
  @IsOptional()
  @IsIn(ROLES)
  role?: Role;

  @ApiPropertyOptional()
  @IsOptional()
  @IsBoolean()
  is_active?: boolean;
}

export class UserPageDto {
  @ApiProperty({ type: [UserResponseDto] })
  items!: UserResponseDto[];

  @ApiProperty()
  total!: number;

  @ApiProperty()
  page!: number;

  @ApiProperty()
  page_size!: number;
}
