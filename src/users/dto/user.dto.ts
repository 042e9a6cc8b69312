import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Flag, HTTP_URL_PATTERN, Integer, OneOf, Text } from '../../common/dto/fields.js';
import { PLAN_NAMES, type PlanName } from '../plans.js';
import { ROLES, type Role, type User } from '../user.js';

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
  @Text({ presence: 'nullable', example: 'Ada Lovelace', description: 'Trimmed; 1-100 characters, not blank', trim: true, maxLength: 100 })
  full_name?: string | null;

  @Text({
    presence: 'nullable',
    example: 'eu-west',
    description: '1-32 characters of a-z 0-9 - (trimmed)',
    trim: true,
    pattern: '[a-z0-9-]{1,32}',
    must: 'must be 1-32 characters of a-z, 0-9 and -',
  })
  preferred_region?: string | null;

  @Text({
    presence: 'nullable',
    example: 'https://example.com/ada.png',
    description: 'An http(s) URL on a host name (trimmed); at most 2048 characters',
    trim: true,
    maxLength: 2048,
    pattern: HTTP_URL_PATTERN,
    must: 'must be an http(s) URL',
  })
  avatar_url?: string | null;
}

export class PaginationQueryDto {
  @Integer({ presence: 'optional', query: true, minimum: 1, maximum: 100_000, default: 1 })
  page?: number;

  @Integer({ presence: 'optional', query: true, minimum: 1, maximum: 100, default: 20 })
  page_size?: number;
}

export class UserSearchQueryDto extends PaginationQueryDto {
  @Text({ presence: 'optional', description: 'Part of a username or email address (trimmed)', trim: true, maxLength: 100 })
  query?: string;
}

export class AdminUpdateUserDto {
  @OneOf({ presence: 'optional', values: PLAN_NAMES })
  subscription_plan?: PlanName;

  @OneOf({ presence: 'optional', values: ROLES })
  role?: Role;

  @Flag({ presence: 'optional' })
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
