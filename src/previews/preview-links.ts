import { Inject, Injectable } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { previewsConfig } from '../config/namespaces/previews.config.js';
import { GRANT_PARAM, previewAddress } from './preview-address.js';
import { PreviewTokens } from './preview-tokens.js';

/** Who the addresses are for: their grants are theirs, and end with their sign-in session. */
export interface Viewer {
  userId: string;
  sessionId: string;
  /**
   * The server's address as this client reached it (`https://host:port`), for the addresses when
   * PUBLIC_URL is not set; null when unknown.
   */
  origin: string | null;
}

export interface PreviewLink {
  port: number;
  /** The port's name in the template (`http`), or null for a port its owner added. */
  name: string | null;
  /** The preview's clean address: opening it needs the preview cookie (or `?devpocket_token=`). */
  url: string;
  /** `url` with a short-lived grant of the viewer's: opens the preview in a browser that has no cookie for it yet. */
  openUrl: string;
}

export interface EnvironmentPreviewLinks {
  /** The first declared port's address with a short-lived grant (the mobile app's web-preview tab), or null. */
  externalUrl: string | null;
  webPort: number | null;
  previews: PreviewLink[];
}

/** The preview addresses of an environment, as its owner's session sees them (docs/previews.md). */
@Injectable()
export class PreviewLinks {
  constructor(
    @Inject(previewsConfig.KEY) private readonly config: ConfigType<typeof previewsConfig>,
    private readonly tokens: PreviewTokens,
  ) {}

  forEnvironment(environmentId: string, ports: { port: number; name: string | null }[], viewer: Viewer): EnvironmentPreviewLinks {
    const base = this.config.publicUrl ?? new URL(viewer.origin ?? 'http://localhost:8000');
    const previews = ports.map(({ port, name }) => {
      const url = previewAddress(base, this.config.domain, environmentId, port);
      return { port, name, url, openUrl: this.withGrant(url, environmentId, port, viewer) };
    });
    const first = previews[0];
    return first ? { externalUrl: first.openUrl, webPort: first.port, previews } : { externalUrl: null, webPort: null, previews };
  }

  private withGrant(url: string, environmentId: string, port: number, viewer: Viewer): string {
    const grant = this.tokens.sign(
      { kind: 'grant', sub: viewer.userId, sid: viewer.sessionId, env: environmentId, port },
      this.config.grantTtlMs,
    );
    const address = new URL(url);
    address.searchParams.set(GRANT_PARAM, grant);
    return address.href;
  }
}
