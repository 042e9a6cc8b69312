import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NestExpressApplication } from '@nestjs/platform-express';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { CommonError } from '../common/errors/error-code.js';
import { sendError } from '../common/errors/http-exception.filter.js';
import { requestPath } from '../common/errors/route-table.js';

/**
 * The browser console (docs/console.md), served at `/` from the files `npm run build` writes to
 * `dist/console/` (sources in `console/`): content-hashed assets under `/assets/` with long cache
 * headers, and `index.html` for the console's own pages, never cached, with a Content-Security-
 * Policy of its own that allows nothing but this origin.
 */

/** The console's client-side routes (console/src/router.ts): each answers index.html. */
export const CONSOLE_PAGES = [
  '/',
  '/sign-in',
  '/register',
  '/environments',
  '/environments/:id/terminal',
  '/environments/:id/logs',
] as const;

/** First path segments that belong to the API, Swagger UI, health, metrics or the assets: never the console's page. */
const RESERVED_SEGMENTS = new Set(['api', 'docs', 'docs-json', 'health', 'metrics', 'assets']);

/** In index.html, replaced by each response's nonce (a `<meta property="csp-nonce">` carries it to the script). */
export const NONCE_PLACEHOLDER = '__CSP_NONCE__';

/** Host header values that may appear in the policy (anything else is left out of it). */
const SAFE_HOST = /^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$/;

/**
 * The policy of the console's pages. Scripts and stylesheets only from this origin, no inline
 * script, no eval. `<style>` elements need the response's nonce (xterm.js's DOM renderer creates
 * them; the console stamps the nonce on each). Style attributes are allowed because that renderer
 * colours true-colour cells with them; they run no script, and every directive that loads
 * something (images, fonts, connections) allows this origin only. `connect-src` names the
 * WebSocket origins explicitly as well, for browsers whose `'self'` does not cover ws:/wss:.
 */
export function consoleContentSecurityPolicy(nonce: string, host: string | undefined): string {
  const sockets = host && SAFE_HOST.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'none'",
    "script-src 'self'",
    `style-src 'self' 'nonce-${nonce}'`,
    "style-src-attr 'unsafe-inline'",
    "img-src 'self'",
    "font-src 'self'",
    `connect-src 'self'${sockets}`,
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "object-src 'none'",
  ].join('; ');
}

/** The repository (or image) root: the folder above this module that holds package.json. */
function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}

/** `dist/console` of the project, whether the server runs from `dist/` or from the sources (tests). */
export function defaultConsoleDir(): string {
  return resolve(projectRoot(), 'dist', 'console');
}

/** index.html as built, re-read when the file changes (the development loop rebuilds it). */
class IndexTemplate {
  private cached: { mtimeMs: number; text: string } | null = null;

  constructor(private readonly path: string) {}

  /** The template, or null when the console is not built. */
  read(): string | null {
    let mtimeMs: number;
    try {
      mtimeMs = statSync(this.path).mtimeMs;
    } catch {
      this.cached = null;
      return null;
    }
    if (this.cached?.mtimeMs !== mtimeMs) this.cached = { mtimeMs, text: readFileSync(this.path, 'utf8') };
    return this.cached.text;
  }
}

export interface WebConsole {
  /**
   * For requests no route handled: a browser navigating to an unknown page (GET or HEAD,
   * preferring HTML to JSON, outside the reserved prefixes) gets the console's page with status
   * 404, which shows "page not found" with a way back. Everything else goes on to the JSON 404.
   */
  pageNotFound: RequestHandler;
}

/**
 * Mounts the console on the Express application: `/assets/*` (immutable, hashed names) and a GET
 * route per console page. Call it after `app.init()` and before the route table is read, so that
 * the pages count as routes (`POST /` is a 405 with `Allow: GET, HEAD`).
 */
export function mountWebConsole(nestApp: NestExpressApplication, consoleDir: string = defaultConsoleDir()): WebConsole {
  const app = nestApp.getHttpAdapter().getInstance();
  const template = new IndexTemplate(join(consoleDir, 'index.html'));

  const sendPage = (request: Request, response: Response, status: number): void => {
    const html = template.read();
    if (html === null) {
      sendError(request, response, {
        status: CommonError.ServiceUnavailable.status,
        code: CommonError.ServiceUnavailable.code,
        detail: 'The web console is not built: run `npm run build` (or `npm run start:dev`)',
      });
      return;
    }
    const nonce = randomBytes(16).toString('base64');
    response.status(status);
    response.setHeader('Content-Type', 'text/html; charset=utf-8');
    // Each response has its own nonce, so a stored copy must never be reused: no validators either.
    response.setHeader('Cache-Control', 'no-cache');
    response.setHeader('Content-Security-Policy', consoleContentSecurityPolicy(nonce, request.headers.host));
    response.send(html.replaceAll(NONCE_PLACEHOLDER, nonce));
  };

  app.use(
    '/assets',
    express.static(join(consoleDir, 'assets'), {
      index: false,
      redirect: false,
      fallthrough: true,
      immutable: true,
      maxAge: '365d',
    }),
  );
  // One route per page (not an array), so the metrics' route label is the page's pattern.
  for (const page of CONSOLE_PAGES) app.get(page, (request: Request, response: Response) => sendPage(request, response, 200));

  const pageNotFound: RequestHandler = (request: Request, response: Response, next: NextFunction) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return next();
    const firstSegment = requestPath(request).split('/')[1] ?? '';
    if (RESERVED_SEGMENTS.has(firstSegment)) return next();
    if (request.accepts(['application/json', 'text/html']) !== 'text/html') return next();
    sendPage(request, response, 404);
  };
  return { pageNotFound };
}
