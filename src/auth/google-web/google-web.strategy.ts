import { Inject, Injectable } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { PassportStrategy } from '@nestjs/passport';
import type { Request } from 'express';
import { Strategy } from 'passport-google-oauth20';
import type { StateStore } from 'passport-oauth2';
import { AppError } from '../../common/errors/app-error.js';
import { requestContext } from '../../common/http/request-context.js';
import { authConfig } from '../../config/namespaces/auth.config.js';
import { previewsConfig } from '../../config/namespaces/previews.config.js';
import { AccountsError } from '../auth.errors.js';
import { AuthService, SignedIn } from '../auth.service.js';
import { CALLBACK_PATH, CookieStateStore } from './cookie-state-store.js';

/** The name under which the strategy is registered with Passport, and which GoogleWebGuard asks for. */
export const GOOGLE_WEB_STRATEGY = 'google-web';

/** Stands in for the client id when GOOGLE_WEB_* are unset: GoogleWebGuard answers 404 before Passport runs. */
const UNCONFIGURED = 'google-web-sign-in-not-configured';

/**
 * The console's "Sign in with Google": passport-google-oauth20's authorization-code flow with
 * `state` and PKCE (S256), both kept in a signed cookie (CookieStateStore) rather than a server
 * session. On the callback the strategy exchanges the code (with the client secret and the PKCE
 * verifier) at the token endpoint, fetches the userinfo profile, and `validate` signs the person in
 * with the ID token Google returned, through the same AuthService.signInWithGoogle as the mobile
 * app (same verification of the token, same account matching, linking and creation), with the web
 * client id as the only accepted audience. Its result (the SignedIn) becomes `req.user`.
 */
@Injectable()
export class GoogleWebStrategy extends PassportStrategy(Strategy, GOOGLE_WEB_STRATEGY, 6) {
  constructor(
    @Inject(authConfig.KEY) private readonly config: ConfigType<typeof authConfig>,
    @Inject(previewsConfig.KEY) previews: ConfigType<typeof previewsConfig>,
    private readonly auth: AuthService,
  ) {
    const publicUrl = previews.publicUrl;
    const store = new CookieStateStore(config.jwtSecret, (req) => req.secure || publicUrl?.protocol === 'https:');
    super({
      clientID: config.googleWeb?.clientId ?? UNCONFIGURED,
      clientSecret: config.googleWeb?.clientSecret ?? UNCONFIGURED,
      // Absolute on PUBLIC_URL (what is registered at Google); otherwise resolved from the request's Host.
      callbackURL: publicUrl ? new URL(CALLBACK_PATH, publicUrl).href : CALLBACK_PATH,
      authorizationURL: config.googleEndpoints.authorizationUrl,
      tokenURL: config.googleEndpoints.tokenUrl,
      userProfileURL: config.googleEndpoints.userinfoUrl,
      scope: ['openid', 'email', 'profile'],
      state: true,
      pkce: true,
      store: store as unknown as StateStore,
      passReqToCallback: true,
    });
    // The userinfo request carries the access token in its Authorization header, not in its URL.
    (this as unknown as { _oauth2: { useAuthorizationHeaderforGET(use: boolean): void } })._oauth2.useAuthorizationHeaderforGET(true);
  }

  async validate(req: Request, _accessToken: string, _refreshToken: string | undefined, params: unknown): Promise<SignedIn> {
    const idToken = (params as { id_token?: unknown } | null)?.id_token;
    if (typeof idToken !== 'string') {
      throw new AppError(AccountsError.GoogleWebDenied, 'Google answered without an ID token (the openid scope was not granted)');
    }
    return this.auth.signInWithGoogle(idToken, requestContext(req), [this.config.googleWeb?.clientId ?? UNCONFIGURED]);
  }
}
