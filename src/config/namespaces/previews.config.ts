import { defineNamespace } from './define-namespace.js';

/** Web previews of environments' ports (docs/previews.md): PREVIEW_DOMAIN, PREVIEW_GRANT_SECONDS, PREVIEW_COOKIE_SECONDS. */
export interface PreviewsConfig {
  /**
   * The wildcard domain of the subdomain form, `<port>-<environment id>.<domain>` (lower case, no
   * trailing dot), or null: only the path form `/preview/<id>/<port>/` then.
   */
  readonly domain: string | null;
  /**
   * The server's address as browsers reach it (PUBLIC_URL): scheme, host and port of preview
   * addresses; null when not set (each client's own address for the server is used then).
   */
  readonly publicUrl: URL | null;
  /** How long the signed grant in `external_url` may be used (minutes, not hours). */
  readonly grantTtlMs: number;
  /** How long a preview cookie lasts (it ends with the sign-in session that made it, too). */
  readonly cookieTtlMs: number;
}

export const previewsConfig = defineNamespace('previews', (env): PreviewsConfig => ({
  domain: env.PREVIEW_DOMAIN ? env.PREVIEW_DOMAIN.toLowerCase().replace(/\.$/, '') : null,
  publicUrl: env.PUBLIC_URL ? new URL(env.PUBLIC_URL) : null,
  grantTtlMs: (env.PREVIEW_GRANT_SECONDS ?? 300) * 1000,
  cookieTtlMs: (env.PREVIEW_COOKIE_SECONDS ?? 12 * 3600) * 1000,
}));
