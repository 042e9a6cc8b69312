import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { ProxyServer } from 'http-proxy-3';
import { UpgradeRateLimit } from '../common/rate-limit/upgrade-rate-limit.js';
import { previewsConfig } from '../config/namespaces/previews.config.js';
import { PreviewAccess, PreviewDecision } from './preview-access.js';
import { cleanLocation, parsePreviewRequest, PreviewRequest, withoutPreviewCookie } from './preview-address.js';

/**
 * The path form's pages run sandboxed, in an opaque origin of their own: scripts, forms, pop-ups and
 * downloads work, but nothing of the console's origin (its storage, its cookies, its pages) is theirs.
 */
export const PATH_FORM_CSP = 'sandbox allow-scripts allow-forms allow-popups allow-popups-to-escape-sandbox allow-modals allow-downloads';

const NOT_FOUND = { detail: 'No such preview', code: 'not_found' };

/**
 * The web previews' proxy (docs/previews.md): every request on a preview's address, HTTP or a
 * WebSocket upgrade, is decided by PreviewAccess and, for the owner of a running environment,
 * streamed both ways to the environment's port by http-proxy-3, without the DevPocket credentials:
 * no `Authorization`, no preview cookie, no token or grant in the URL. Mounted in front of every
 * other middleware (`handle`), and given the upgrades the WebSocket adapter diverts (`upgrade`).
 */
@Injectable()
export class PreviewProxy implements OnApplicationShutdown {
  private readonly logger = new Logger('Previews');
  private readonly proxy = new ProxyServer({ xfwd: true, changeOrigin: true, ws: true });

  constructor(
    @Inject(previewsConfig.KEY) private readonly config: ConfigType<typeof previewsConfig>,
    private readonly access: PreviewAccess,
    private readonly limits: UpgradeRateLimit,
  ) {
    this.proxy.on('proxyRes', (upstream, request) => {
      // The path form's pages get their sandbox whatever the environment's server says (a second
      // policy only narrows), and never send their address (with its key) as a Referer.
      if (!isPathForm(request)) return;
      const existing = upstream.headers['content-security-policy'];
      upstream.headers['content-security-policy'] = [...(existing ? [existing].flat() : []), PATH_FORM_CSP];
      upstream.headers['referrer-policy'] = 'no-referrer';
    });
    this.proxy.on('error', (error, request, response) => {
      this.logger.debug(`A preview's upstream failed: ${error.message}`);
      // The environment may have stopped or moved (a new pod IP): its next request is decided afresh.
      const preview = forwarded.get(request);
      if (preview) this.access.forget(preview.environmentId, preview.port);
      if ('writeHead' in response) {
        const res = response;
        if (!res.headersSent) sendJson(res, 502, { detail: 'Nothing answers on this port in the environment', code: 'bad_gateway' });
        else res.destroy();
      } else {
        response.destroy();
      }
    });
  }

  onApplicationShutdown(): void {
    this.proxy.close();
  }

  /** Express middleware: a preview request is answered here; any other goes on (`next`). */
  readonly handle = (request: IncomingMessage, response: ServerResponse, next: (error?: unknown) => void): void => {
    const preview = parsePreviewRequest(request, this.config.domain);
    if (preview === null) return next();
    // Every preview request counts against the client's global budget, like the API's requests
    // (RateLimitGuard) and WebSocket upgrades, which never reach the guards from here.
    this.limits
      .admit(request)
      .then((refusal) => {
        if (refusal !== null) return sendJson(response, refusal.status, refusal.body, refusal.headers);
        if (preview === 'invalid') return sendJson(response, 404, NOT_FOUND);
        if (preview.form === 'path' && preview.url.pathname === preview.prefix) {
          // `…/<port>` → `…/<port>/` (and `…/~<key>` → `…/~<key>/`), so that the page's relative addresses stay under it.
          response.writeHead(308, { location: `${preview.prefix}/${preview.url.search}` }).end();
          return;
        }
        return this.access.decide(preview, request).then((decision) => this.answer(preview, decision, request, response));
      })
      .catch((error: unknown) => next(error));
  };

  /** Whether the WebSocket adapter should hand this upgrade to `upgrade` (a preview's address). */
  claims(request: IncomingMessage): boolean {
    return parsePreviewRequest(request, this.config.domain) !== null;
  }

  /** A WebSocket upgrade on a preview's address, admitted by the adapter's rate limit. */
  upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const preview = parsePreviewRequest(request, this.config.domain);
    if (preview === null || preview === 'invalid') return refuse(socket, 404, NOT_FOUND);
    this.access.decide(preview, request, true).then(
      (decision) => {
        if (decision.kind !== 'proxy') {
          return refuse(
            socket,
            decision.kind === 'unavailable' ? 503 : 404,
            decision.kind === 'unavailable' ? unavailable(decision) : NOT_FOUND,
          );
        }
        this.forward(preview, request);
        this.proxy.ws(request, socket, head, { target: targetUrl(decision) });
      },
      (error: unknown) => {
        this.logger.warn(`Could not decide on a preview upgrade: ${error instanceof Error ? error.message : String(error)}`);
        refuse(socket, 500, { detail: 'Internal error', code: 'internal_error' });
      },
    );
  }

  private answer(preview: PreviewRequest, decision: PreviewDecision, request: IncomingMessage, response: ServerResponse): void {
    switch (decision.kind) {
      case 'not_found':
        return sendJson(response, 404, NOT_FOUND);
      case 'unavailable':
        return sendJson(response, 503, unavailable(decision));
      case 'admit':
        // The token or grant leaves the address at once: not in history, not in a Referer. The host
        // form keeps the preview's key in a cookie of its host; the path form in its path, since a
        // sandboxed page's own requests carry no cookies (docs/previews.md).
        response.writeHead(303, {
          location: cleanLocation(preview, decision.key),
          ...(preview.form === 'host'
            ? { 'set-cookie': this.access.setCookie(decision.key, isSecure(request, this.config.publicUrl)) }
            : {}),
          'cache-control': 'no-store',
          'referrer-policy': 'no-referrer',
        });
        response.end();
        return;
      case 'proxy':
        this.forward(preview, request);
        this.proxy.web(request, response, {
          target: targetUrl(decision),
          // Cookies the environment sets stay with the preview: its path (path form), its host (both).
          cookieDomainRewrite: { '*': '' },
          ...(preview.form === 'path' ? { cookiePathRewrite: { '*': `${preview.prefix}/` } } : {}),
        });
        return;
    }
  }

  /** What the environment's server sees: its own path, and none of DevPocket's credentials. */
  private forward(preview: PreviewRequest, request: IncomingMessage): void {
    forwarded.set(request, preview);
    const url = new URL(preview.upstreamPath, 'http://upstream.invalid');
    url.searchParams.delete('devpocket_token');
    url.searchParams.delete('devpocket_grant');
    request.url = `${url.pathname}${url.search}`;
    delete request.headers.authorization;
    const cookie = withoutPreviewCookie(request.headers.cookie);
    if (cookie === null) delete request.headers.cookie;
    else request.headers.cookie = cookie;
  }
}

/** The preview each forwarded request is for. */
const forwarded = new WeakMap<IncomingMessage, PreviewRequest>();
function isPathForm(request: IncomingMessage): boolean {
  return forwarded.get(request)?.form === 'path';
}

function targetUrl(decision: { target: { host: string; port: number } }): string {
  const { host, port } = decision.target;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function unavailable(decision: { detail: string }): { detail: string; code: string } {
  return { detail: decision.detail, code: 'preview_unavailable' };
}

/** Whether the browser reached us over HTTPS (directly, or through a proxy that says so). */
function isSecure(request: IncomingMessage, publicUrl: URL | null): boolean {
  if (publicUrl) return publicUrl.protocol === 'https:';
  return request.headers['x-forwarded-proto'] === 'https' || ('encrypted' in request.socket && request.socket.encrypted === true);
}

function sendJson(
  response: ServerResponse,
  status: number,
  body: { detail: string; code: string },
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  response.end(text);
}

function refuse(socket: Duplex, status: number, body: { detail: string; code: string }): void {
  const text = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : status === 503 ? 'Service Unavailable' : 'Error'}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
  );
}
