import { ApiProperty } from '@nestjs/swagger';
import { DOMAIN_PATTERN, Text, type FieldDocs } from '../../common/dto/fields.js';
import { UserResponseDto } from '../../users/dto/user.dto.js';

/** Every order of "a lower-case letter, an upper-case letter and a digit" somewhere in the value. */
const PASSWORD_CLASSES = ['[a-z]', '[A-Z]', '[0-9]'] as const;
const PASSWORD_PATTERN = [
  [0, 1, 2],
  [0, 2, 1],
  [1, 0, 2],
  [1, 2, 0],
  [2, 0, 1],
  [2, 1, 0],
]
  .map((order) => order.map((i) => PASSWORD_CLASSES[i]).join(String.raw`[\s\S]*`))
  .join('|');

/** The password rule as one expression (the command line's `create-admin` uses it): 8-128 characters, a-z, A-Z and 0-9. */
export const PASSWORD_RULE = /^(?=[\s\S]*[a-z])(?=[\s\S]*[A-Z])(?=[\s\S]*[0-9])[\s\S]{8,128}$/u;
export const PASSWORD_MESSAGE = 'must be 8-128 characters and contain a lower-case letter, an upper-case letter and a digit';

/** A password being set: the strength rule and its Swagger description, in one decorator. */
function IsNewPassword(extra: { example?: string } = {}): PropertyDecorator {
  return Text({
    ...extra,
    description: '8-128 characters with a lower-case letter, an upper-case letter and a digit; not trimmed',
    minLength: 8,
    maxLength: 128,
    pattern: PASSWORD_PATTERN,
    must: PASSWORD_MESSAGE,
  });
}

/** A password being checked: anything of 1-1024 characters, as typed. */
function IsPassword(docs: FieldDocs = {}): PropertyDecorator {
  return Text({ ...docs, maxLength: 1024 });
}

const ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+";
/** A plain address: a dot-atom local part (RFC 5322, ASCII) `@` a domain name. */
export const EMAIL_PATTERN = `${ATOM}(?:\\.${ATOM})*@${DOMAIN_PATTERN}`;

/** An email address field: trimmed, at most 254 characters, with its Swagger description. */
function IsEmailAddress(): PropertyDecorator {
  return Text({
    example: 'ada@example.com',
    description: 'An email address (ASCII, with a domain name); trimmed; at most 254 characters',
    trim: true,
    maxLength: 254,
    pattern: EMAIL_PATTERN,
    must: 'must be a valid email address',
  });
}

export const USERNAME_RULE = /^[A-Za-z0-9_-]{3,30}$/;

export class RegisterDto {
  @Text({
    example: 'ada_lovelace',
    description: '3-30 characters of A-Z a-z 0-9 _ - (trimmed); unique, case-insensitively',
    trim: true,
    pattern: '[A-Za-z0-9_-]{3,30}',
    must: 'must be 3-30 characters of letters, digits, _ and -',
  })
  username!: string;

  @IsEmailAddress()
  email!: string;

  @IsNewPassword({ example: 'Analytical1' })
  password!: string;

  @Text({ presence: 'nullable', example: 'Ada Lovelace', description: 'Trimmed; 1-100 characters, not blank', trim: true, maxLength: 100 })
  full_name?: string | null;
}

export class LoginDto {
  @Text({ example: 'ada_lovelace', description: 'The username or the email address (trimmed)', trim: true, maxLength: 254 })
  username_or_email!: string;

  @IsPassword({ example: 'Analytical1' })
  password!: string;
}

export class GoogleSignInDto {
  @Text({ description: 'The Google ID token (JWT) from Google Sign-In on the device', maxLength: 8192 })
  id_token!: string;

  @Text({ presence: 'nullable', description: 'Accepted for compatibility; not used', minLength: 0, maxLength: 8192 })
  access_token?: string | null;
}

export class RefreshDto {
  @Text({ maxLength: 4096 })
  refresh_token!: string;
}

export class ChangePasswordDto {
  @IsPassword()
  current_password!: string;

  @IsNewPassword()
  new_password!: string;
}

export class ForgotPasswordDto {
  @IsEmailAddress()
  email!: string;
}

export class ResetPasswordDto {
  @Text({ description: 'The token from the password-reset mail (trimmed)', trim: true, maxLength: 512 })
  token!: string;

  @IsNewPassword()
  new_password!: string;
}

export class VerifyEmailDto {
  @Text({
    example: '123456',
    description: 'The 6-digit code from the verification mail (trimmed)',
    trim: true,
    pattern: '[0-9]{6}',
    must: 'must be the 6-digit code from the verification mail',
  })
  token!: string;
}

export class TokenResponseDto {
  @ApiProperty({ description: 'JWT, typ "access"; send as `Authorization: Bearer`' })
  access_token!: string;

  @ApiProperty({ description: 'JWT, typ "refresh"; single use: every refresh returns a new one' })
  refresh_token!: string;

  @ApiProperty({ enum: ['bearer'] })
  token_type!: 'bearer';

  @ApiProperty({ type: 'integer', example: 900, description: 'Seconds until the access token expires' })
  expires_in!: number;
}

/** The answer of every sign-in (register, login, google, refresh): the Token and the signed-in User. */
export class SignInResponseDto extends TokenResponseDto {
  @ApiProperty({ type: UserResponseDto, description: 'The signed-in user, as GET /auth/me answers it' })
  user!: UserResponseDto;
}
