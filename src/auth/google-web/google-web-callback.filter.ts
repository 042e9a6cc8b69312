import { ArgumentsHost, Catch, ExceptionFilter, HttpStatus } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AppError } from '../../common/errors/app-error.js';
import { normaliseAppError, sendError } from '../../common/errors/http-exception.filter.js';
import { AccountsError } from '../auth.errors.js';

/** Where a refused callback sends a browser: the console's sign-in view, the reason in the fragment. */
export const REFUSAL_LOCATION = '/sign-in#google_error=';

/**
 * Google's redirect back lands in a browser tab: a refusal there (cancelled at Google, a state that
 * does not match, Google unreachable) goes back to the console's sign-in view with the reason in
 * the fragment, which the console shows, rather than a page of JSON. A client that asks for JSON
 * (no `text/html` in its Accept), and the route when it is not configured (404), get the usual
 * error body.
 */
@Catch(AppError)
export class GoogleWebCallbackFilter implements ExceptionFilter {
  catch(error: AppError, host: ArgumentsHost): void {
    const context = host.switchToHttp();
    const request = context.getRequest<Request>();
    const response = context.getResponse<Response>();
    const browser = request.accepts(['json', 'html']) === 'html';
    if (!browser || error.code === AccountsError.GoogleWebNotConfigured.code || response.headersSent) {
      sendError(request, response, normaliseAppError(error));
      return;
    }
    response.setHeader('Cache-Control', 'no-store');
    response.setHeader('Referrer-Policy', 'no-referrer');
    response.redirect(HttpStatus.SEE_OTHER, `${REFUSAL_LOCATION}${encodeURIComponent(error.detail)}`);
  }
}
