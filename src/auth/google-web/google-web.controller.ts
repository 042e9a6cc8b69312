import { Body, Controller, Get, HttpCode, HttpStatus, Inject, Post, Req, Res, UseFilters, UseGuards } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { ApiFoundResponse, ApiOkResponse, ApiOperation, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { AppError } from '../../common/errors/app-error.js';
import { ErrorBodyDto } from '../../common/errors/error-body.dto.js';
import { Public } from '../../common/http/route-access.js';
import { RateLimit } from '../../common/rate-limit/rate-limit.decorator.js';
import { authConfig } from '../../config/namespaces/auth.config.js';
import { toSignInResponse } from '../auth.controller.js';
import { AccountsError } from '../auth.errors.js';
import type { SignedIn } from '../auth.service.js';
import { SignInResponseDto } from '../dto/auth.dto.js';
import { GoogleWebCallbackFilter } from './google-web-callback.filter.js';
import { GoogleWebHandoffs } from './google-web-handoffs.js';
import { GoogleWebExchangeDto, GoogleWebStatusDto } from './google-web.dto.js';
import { assertGoogleWebConfigured, GoogleWebGuard } from './google-web.guard.js';

const ERRORS = { type: ErrorBodyDto };

/** Where the callback sends the browser: the console's sign-in view, the one-time code in the fragment. */
export const HANDOFF_LOCATION = '/sign-in#google_code=';

/**
 * The console's "Sign in with Google" (docs/auth.md#google-sign-in-in-the-browser): the browser is
 * sent to Google and back (authorization code, state, PKCE), signed in like the mobile app's
 * Google sign-in, and handed its tokens through a one-time code in a URL fragment, which no server
 * receives, collected with a POST. Every route answers 404 when GOOGLE_WEB_CLIENT_ID is unset.
 */
@ApiTags('auth')
@Controller('auth/google/web')
export class GoogleWebController {
  constructor(
    @Inject(authConfig.KEY) private readonly config: ConfigType<typeof authConfig>,
    private readonly handoffs: GoogleWebHandoffs,
  ) {}

  @Public()
  @Get('status')
  @ApiOperation({ summary: 'Whether the console offers "Sign in with Google"' })
  @ApiOkResponse({ type: GoogleWebStatusDto })
  status(): GoogleWebStatusDto {
    return { enabled: this.config.googleWeb !== null };
  }

  @Public()
  @Get()
  @UseGuards(GoogleWebGuard)
  @RateLimit({ name: 'google-web-ip', limit: 30, ttlSeconds: 60, key: 'ip' })
  @ApiOperation({
    summary: 'Start the browser sign-in with Google',
    description: 'Redirects (302) to Google with an authorization-code request (state and PKCE S256); sets a short-lived state cookie.',
  })
  @ApiFoundResponse({ description: "Redirect to Google's authorization endpoint" })
  @ApiResponse({ status: 404, ...ERRORS, description: 'GOOGLE_WEB_CLIENT_ID is not configured' })
  start(): void {
    // GoogleWebGuard (Passport) has already answered with the redirect to Google.
  }

  @Public()
  @Get('callback')
  @UseGuards(GoogleWebGuard)
  @UseFilters(GoogleWebCallbackFilter)
  @RateLimit({ name: 'google-web-ip', limit: 30, ttlSeconds: 60, key: 'ip' })
  @ApiOperation({
    summary: "Google's redirect back after the browser sign-in",
    description:
      'Checks the state against the cookie, exchanges the code (with the PKCE verifier) for an ID token, signs in as POST /auth/google does, ' +
      'and redirects (303) to `/sign-in#google_code=<one-time code>`; the console collects the tokens with POST /auth/google/web/exchange.',
  })
  @ApiQuery({ name: 'code', required: false, description: "Google's authorization code" })
  @ApiQuery({ name: 'state', required: false, description: 'The state sent to Google' })
  @ApiResponse({
    status: 303,
    description:
      'Redirect to the console with the one-time code in the fragment; a browser (Accept: text/html) whose sign-in was refused is sent to `/sign-in#google_error=<reason>` instead of the 401, 403 or 503 below',
  })
  @ApiFoundResponse({ description: 'Without a `code`: a new start, as GET /auth/google/web (redirect to Google)' })
  @ApiResponse({ status: 401, ...ERRORS, description: 'Google refused, or the ID token or its email is not acceptable' })
  @ApiResponse({ status: 403, ...ERRORS, description: 'The state does not match this browser (or no sign-in was started)' })
  @ApiResponse({ status: 404, ...ERRORS, description: 'GOOGLE_WEB_CLIENT_ID is not configured' })
  @ApiResponse({ status: 503, ...ERRORS, description: 'Google could not be reached' })
  async callback(@Req() req: Request, @Res() res: Response): Promise<void> {
    const code = await this.handoffs.put(toSignInResponse(req.user as SignedIn));
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.redirect(HttpStatus.SEE_OTHER, `${HANDOFF_LOCATION}${code}`);
  }

  @Public()
  @Post('exchange')
  @HttpCode(HttpStatus.OK)
  @RateLimit({ name: 'google-web-exchange-ip', limit: 30, ttlSeconds: 60, key: 'ip' })
  @ApiOperation({ summary: 'Collect the tokens of a finished browser sign-in with its one-time code (once, within a minute)' })
  @ApiOkResponse({ type: SignInResponseDto })
  @ApiResponse({ status: 400, ...ERRORS, description: 'Unknown, used or expired code' })
  @ApiResponse({ status: 404, ...ERRORS, description: 'GOOGLE_WEB_CLIENT_ID is not configured' })
  async exchange(@Body() body: GoogleWebExchangeDto): Promise<SignInResponseDto> {
    assertGoogleWebConfigured(this.config);
    const answer = await this.handoffs.take(body.code);
    if (answer === null)
      throw new AppError(AccountsError.GoogleWebCodeInvalid, 'This Google sign-in code is unknown, used or expired; sign in again');
    return answer as SignInResponseDto;
  }
}
