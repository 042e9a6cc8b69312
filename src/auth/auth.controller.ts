import { Body, Controller, Get, HttpCode, HttpStatus, Post, Req, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { ErrorBodyDto } from '../common/errors/error-body.dto.js';
import { MessageResponseDto } from '../common/http/message-response.dto.js';
import { CurrentPrincipal, type Principal } from '../common/http/principal.js';
import { requestContext } from '../common/http/request-context.js';
import { Public } from '../common/http/route-access.js';
import { RateLimit } from '../common/rate-limit/rate-limit.decorator.js';
import { toUserResponse, UserResponseDto } from '../users/dto/user.dto.js';
import { AuthService, SignedIn } from './auth.service.js';
import {
  ChangePasswordDto,
  ForgotPasswordDto,
  GoogleSignInDto,
  LoginDto,
  RefreshDto,
  RegisterDto,
  ResetPasswordDto,
  SignInResponseDto,
  VerifyEmailDto,
} from './dto/auth.dto.js';
import { LoginLockoutGuard } from './lockout/login-lockout.guard.js';

/** The Token of the mobile client contract, plus the signed-in user (an earlier app build requires it). */
export const toSignInResponse = ({ tokens, user }: SignedIn): SignInResponseDto => ({
  access_token: tokens.accessToken,
  refresh_token: tokens.refreshToken,
  token_type: 'bearer',
  expires_in: tokens.expiresIn,
  user: toUserResponse(user),
});

const bodyField =
  (field: string) =>
  (req: Request): string | undefined => {
    const value = (req.body as Record<string, unknown> | undefined)?.[field];
    return typeof value === 'string' ? value.trim().toLowerCase() : undefined;
  };

const ERRORS = { type: ErrorBodyDto };

@ApiTags('auth')
@Controller('auth')
export class AuthController {
  constructor(private readonly auth: AuthService) {}

  @Public()
  @Post('register')
  @RateLimit({ name: 'register-ip', limit: 20, ttlSeconds: 3600, key: 'ip' })
  @ApiOperation({ summary: 'Create an account and sign in; a verification code is mailed' })
  @ApiResponse({ status: 201, type: SignInResponseDto })
  @ApiResponse({ status: 409, ...ERRORS, description: 'Username or email already taken (`detail` says which)' })
  @ApiResponse({ status: 422, ...ERRORS })
  async register(@Body() body: RegisterDto, @Req() req: Request): Promise<SignInResponseDto> {
    const signedIn = await this.auth.register(
      { username: body.username, email: body.email, password: body.password, fullName: body.full_name ?? null },
      requestContext(req),
    );
    return toSignInResponse(signedIn);
  }

  @Public()
  @Post('login')
  @UseGuards(LoginLockoutGuard)
  @HttpCode(HttpStatus.OK)
  @RateLimit(
    { name: 'login-ip', limit: 30, ttlSeconds: 60, key: 'ip' },
    { name: 'login-account', limit: 20, ttlSeconds: 900, key: bodyField('username_or_email') },
  )
  @ApiOperation({ summary: 'Sign in with username or email and password' })
  @ApiOkResponse({ type: SignInResponseDto })
  @ApiResponse({ status: 401, ...ERRORS, description: '"Incorrect username/email or password"' })
  @ApiResponse({ status: 423, ...ERRORS, description: 'Locked after repeated failures; see Retry-After' })
  async login(@Body() body: LoginDto, @Req() req: Request): Promise<SignInResponseDto> {
    return toSignInResponse(await this.auth.login(body.username_or_email, body.password, requestContext(req)));
  }

  @Public()
  @Post('google')
  @HttpCode(HttpStatus.OK)
  @RateLimit({ name: 'google-ip', limit: 30, ttlSeconds: 60, key: 'ip' })
  @ApiOperation({ summary: 'Sign in (or sign up) with a Google ID token' })
  @ApiOkResponse({ type: SignInResponseDto })
  @ApiResponse({ status: 401, ...ERRORS })
  @ApiResponse({ status: 503, ...ERRORS, description: 'Google sign-in not configured, or Google unreachable' })
  async google(@Body() body: GoogleSignInDto, @Req() req: Request): Promise<SignInResponseDto> {
    return toSignInResponse(await this.auth.signInWithGoogle(body.id_token, requestContext(req)));
  }

  @Public()
  @Post('refresh')
  @HttpCode(HttpStatus.OK)
  // Counted per replica while Redis is down, never refused: the mobile app signs out when a refresh
  // fails, and refresh tokens cannot be guessed (this limit only stops floods).
  @RateLimit({ name: 'refresh-ip', limit: 120, ttlSeconds: 60, key: 'ip', whenSharedStateDown: 'count-locally' })
  @ApiOperation({ summary: 'Exchange a refresh token for a new pair (the old refresh token stops working)' })
  @ApiOkResponse({ type: SignInResponseDto })
  @ApiResponse({ status: 401, ...ERRORS })
  async refresh(@Body() body: RefreshDto, @Req() req: Request): Promise<SignInResponseDto> {
    return toSignInResponse(await this.auth.refresh(body.refresh_token, requestContext(req)));
  }

  @Get('me')
  @ApiBearerAuth()
  @ApiOperation({ summary: 'The signed-in user (same as GET /users/me)' })
  @ApiOkResponse({ type: UserResponseDto })
  me(@CurrentPrincipal() principal: Principal): UserResponseDto {
    return toUserResponse(principal.user);
  }

  @Get('profile')
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'The signed-in user: the same as GET /auth/me',
    description: 'Kept for an earlier app build that loads the profile from this path; use GET /auth/me.',
    deprecated: true,
  })
  @ApiOkResponse({ type: UserResponseDto })
  profile(@CurrentPrincipal() principal: Principal): UserResponseDto {
    return this.me(principal);
  }

  @Post('logout')
  @HttpCode(HttpStatus.OK)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'End the current session (its refresh token stops working)' })
  @ApiOkResponse({ type: MessageResponseDto })
  async logout(@CurrentPrincipal() principal: Principal, @Req() req: Request): Promise<MessageResponseDto> {
    await this.auth.logout(principal, requestContext(req));
    return { message: 'Signed out' };
  }

  @Post('change-password')
  @HttpCode(HttpStatus.OK)
  @ApiBearerAuth()
  @RateLimit({ name: 'change-password-ip', limit: 10, ttlSeconds: 900, key: 'ip' })
  @ApiOperation({ summary: 'Change the password; every other session is signed out' })
  @ApiOkResponse({ type: MessageResponseDto })
  @ApiResponse({ status: 400, ...ERRORS, description: 'The current password is incorrect' })
  async changePassword(
    @CurrentPrincipal() principal: Principal,
    @Body() body: ChangePasswordDto,
    @Req() req: Request,
  ): Promise<MessageResponseDto> {
    await this.auth.changePassword(principal, body.current_password, body.new_password, requestContext(req));
    return { message: 'Password changed; other sessions were signed out' };
  }

  @Public()
  @Post('forgot-password')
  @HttpCode(HttpStatus.ACCEPTED)
  @RateLimit(
    { name: 'forgot-ip', limit: 10, ttlSeconds: 3600, key: 'ip' },
    { name: 'forgot-email', limit: 5, ttlSeconds: 3600, key: bodyField('email') },
  )
  @ApiOperation({ summary: 'Mail a password-reset link if an account has this address (the answer never says)' })
  @ApiResponse({ status: 202, type: MessageResponseDto })
  async forgotPassword(@Body() body: ForgotPasswordDto, @Req() req: Request): Promise<MessageResponseDto> {
    await this.auth.forgotPassword(body.email, requestContext(req));
    return { message: 'If an account exists for this address, a reset token is on its way' };
  }

  @Public()
  @Post('reset-password')
  @HttpCode(HttpStatus.OK)
  @RateLimit({ name: 'reset-ip', limit: 20, ttlSeconds: 3600, key: 'ip' })
  @ApiOperation({ summary: 'Set a new password with a reset token; every session is signed out' })
  @ApiOkResponse({ type: MessageResponseDto })
  @ApiResponse({ status: 400, ...ERRORS, description: 'Invalid, expired or used token' })
  async resetPassword(@Body() body: ResetPasswordDto, @Req() req: Request): Promise<MessageResponseDto> {
    await this.auth.resetPassword(body.token, body.new_password, requestContext(req));
    return { message: 'Password reset; sign in with the new password' };
  }

  @Post('verify-email')
  @HttpCode(HttpStatus.OK)
  @ApiBearerAuth()
  @RateLimit({ name: 'verify-ip', limit: 30, ttlSeconds: 600, key: 'ip' })
  @ApiOperation({ summary: 'Confirm the email address with the 6-digit code (5 wrong tries, then a new code is needed)' })
  @ApiOkResponse({ type: UserResponseDto })
  @ApiResponse({ status: 400, ...ERRORS })
  async verifyEmail(@CurrentPrincipal() principal: Principal, @Body() body: VerifyEmailDto, @Req() req: Request): Promise<UserResponseDto> {
    return toUserResponse(await this.auth.verifyEmail(principal, body.token, requestContext(req)));
  }

  @Post('resend-verification')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiBearerAuth()
  @RateLimit({ name: 'resend-ip', limit: 20, ttlSeconds: 3600, key: 'ip' })
  @ApiOperation({ summary: 'Mail a new verification code (at most one a minute, five an hour)' })
  @ApiResponse({ status: 202, type: MessageResponseDto })
  @ApiResponse({ status: 409, ...ERRORS, description: 'Already verified' })
  @ApiResponse({ status: 429, ...ERRORS })
  async resendVerification(@CurrentPrincipal() principal: Principal): Promise<MessageResponseDto> {
    await this.auth.sendVerificationCode(principal.user, true);
    return { message: 'A new verification code is on its way' };
  }
}
