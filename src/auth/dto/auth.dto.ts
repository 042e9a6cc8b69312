import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsEmail, IsOptional, IsString, Length, Matches, MaxLength } from 'class-validator';

const trim = ({ value }: { value: unknown }): unknown => (typeof value === 'string' ? value.trim() : value);

export const PASSWORD_RULE = /^(?=.*[a-z])(?=.*[A-Z])(?=.*\d).{8,128}$/s;
export const PASSWORD_MESSAGE = '$property must be 8-128 characters and contain a lower-case letter, an upper-case letter and a digit';
/** A password being set: the strength rule and its Swagger description, in one decorator. */
function IsNewPassword(extra: { example?: string } = {}): PropertyDecorator {
  return applyDecorators(
    ApiProperty({ ...extra, description: '8-128 characters with a lower-case letter, an upper-case letter and a digit' }),
    IsString(),
    Matches(PASSWORD_RULE, { message: PASSWORD_MESSAGE }),
  );
}

/** An email address field: trimmed, at most 254 characters, with its Swagger description. */
function IsEmailAddress(): PropertyDecorator {
  return applyDecorators(
    ApiProperty({ example: 'ada@example.com' }),
    Transform(trim),
    IsString(),
    MaxLength(254),
    IsEmail({}, { message: 'email must be a valid email address' }),
  );
}

export const USERNAME_RULE = /^[A-Za-z0-9_-]{3,30}$/;

export class RegisterDto {
  @ApiProperty({ example: 'ada_lovelace', description: '3-30 characters of A-Z a-z 0-9 _ -; unique, case-insensitively' })
  @Transform(trim)
  @IsString()
  @Matches(USERNAME_RULE, { message: 'username must be 3-30 characters of letters, digits, _ and -' })
  username!: string;

  @IsEmailAddress()
  email!: string;

  @IsNewPassword({ example: 'Analytical1' })
  password!: string;

  @ApiPropertyOptional({ example: 'Ada Lovelace', nullable: true })
  @IsOptional()
  @Transform(trim)
  @IsString()
  @Length(1, 100)
  full_name?: string | null;
}

export class LoginDto {
  @ApiProperty({ example: 'ada_lovelace', description: 'The username or the email address' })
  @Transform(trim)
  @IsString()
  @Length(1, 254)
  username_or_email!: string;

  @ApiProperty({ example: 'Analytical1' })
  @IsString()
  @Length(1, 1024)
  password!: string;
}

export class GoogleSignInDto {
  @ApiProperty({ description: 'The Google ID token (JWT) from Google Sign-In on the device' })
  @IsString()
  @Length(1, 8192)
  id_token!: string;

  @ApiPropertyOptional({ nullable: true, description: 'Accepted for compatibility; not used' })
  @IsOptional()
  @IsString()
  @MaxLength(8192)
  access_token?: string | null;
}

export class RefreshDto {
  @ApiProperty()
  @IsString()
  @Length(1, 4096)
  refresh_token!: string;
}

export class ChangePasswordDto {
  @ApiProperty()
  @IsString()
  @Length(1, 1024)
  current_password!: string;

  @IsNewPassword()
  new_password!: string;
}

export class ForgotPasswordDto {
  @IsEmailAddress()
  email!: string;
}

export class ResetPasswordDto {
  @ApiProperty({ description: 'The token from the password-reset mail' })
  @Transform(trim)
  @IsString()
  @Length(1, 512)
  token!: string;

  @IsNewPassword()
  new_password!: string;
}

export class VerifyEmailDto {
  @ApiProperty({ example: '123456', description: 'The 6-digit code from the verification mail' })
  @Transform(trim)
  @IsString()
  @Matches(/^\d{6}$/, { message: 'token must be the 6-digit code from the verification mail' })
  token!: string;
}

export class TokenResponseDto {
  @ApiProperty({ description: 'JWT, typ "access"; send as `Authorization: Bearer`' })
  access_token!: string;

  @ApiProperty({ description: 'JWT, typ "refresh"; single use: every refresh returns a new one' })
  refresh_token!: string;

  @ApiProperty({ enum: ['bearer'] })
  token_type!: 'bearer';

  @ApiProperty({ example: 900, description: 'Seconds until the access token expires' })
  expires_in!: number;
}

export class MessageResponseDto {
  @ApiProperty({ example: 'Done' })
  message!: string;
}
