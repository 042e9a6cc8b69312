import type { IncomingMessage } from 'node:http';
import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { AuthService } from '../auth/auth.service.js';
import { DomainEvents } from '../common/events/domain-events.js';
import type { Principal } from '../common/http/principal.js';
import { previewsConfig } from '../config/namespaces/previews.config.js';
import { EnvironmentResponses } from '../environments/environment-responses.js';
import { EnvironmentsService } from '../environments/environments.service.js';
import { PreviewTarget, RuntimeProvider } from '../runtime/runtime.provider.js';
import { GRANT_PARAM, PREVIEW_COOKIE, PreviewRequest, previewCookie, TOKEN_PARAM } from './preview-address.js';
import { PreviewTokens } from './preview-tokens.js';

interface RecentDecision {
  decision: PreviewDecision;
  until: number;
  environmentId: string;
  port: number;
  userId: string;
  sessionId: string;
}

/** What to do with a preview request. */
export type PreviewDecision =
  /** Forward it to the environment. */
  | { kind: 'proxy'; target: PreviewTarget }
  /** A first use (token or grant): set the preview's cookie and go to the clean address. */
  | { kind: 'admit'; key: string }
  /** Not the owner, no such environment, an undeclared port, no credentials: all the same 404. */
  | { kind: 'not_found' }
  /** The owner's preview, which cannot be reached now (the environment is not running). */
  | { kind: 'unavailable'; detail: string };

/**
 * How long a request's admission is reused for the next ones with the same credential (a page's
 * assets come in a burst): the owner, the environment's phase and ports, and the runtime's address
 * (a Kubernetes API read) are looked up once per burst, not once per asset. What would change the
 * answer drops it at once, on every replica: a sign-out or deactivation, a change of the
 * environment's phase or ports, a change of a template.
 */
export const DECISION_CACHE_MS = 3_000;
const DECISION_CACHE_SIZE = 1_000;

/**
 * Who may open a preview, and where it goes (docs/previews.md). The credentials, first found wins:
 * `?devpocket_token=<access token>`, `?devpocket_grant=<grant of external_url>`, the preview's
 * cookie. Each names a user and a sign-in session, which must still be live (a sign-out ends the
 * preview cookies it made); the environment must be that user's and the port one it declares.
 */
@Injectable()
export class PreviewAccess implements OnModuleInit {
  /** Recent 'proxy' decisions by credential, environment and port (insertion order: oldest first). */
  private readonly recent = new Map<string, RecentDecision>();

  constructor(
    @Inject(previewsConfig.KEY) private readonly config: ConfigType<typeof previewsConfig>,
    private readonly auth: AuthService,
    private readonly tokens: PreviewTokens,
    private readonly environments: EnvironmentsService,
    private readonly responses: EnvironmentResponses,
    private readonly runtime: RuntimeProvider,
    private readonly events: DomainEvents,
  ) {}

  onModuleInit(): void {
    const everyReplica = { everyReplica: true };
    const dropEnvironment = ({ environmentId }: { environmentId: string }) => this.drop((entry) => entry.environmentId === environmentId);
    this.events.on('environment.phase_changed', dropEnvironment, everyReplica);
    this.events.on('environment.changed', dropEnvironment, everyReplica);
    this.events.on('template.changed', () => this.recent.clear(), everyReplica);
    this.events.on(
      'auth.sessions_revoked',
      ({ userId, sessionId, exceptSessionId }) =>
        this.drop(
          (entry) =>
            entry.userId === userId &&
            (sessionId === undefined || entry.sessionId === sessionId) &&
            (exceptSessionId === undefined || entry.sessionId !== exceptSessionId),
        ),
      everyReplica,
    );
    const dropUser = ({ userId }: { userId: string }) => this.drop((entry) => entry.userId === userId);
    this.events.on('user.deactivated', dropUser, everyReplica);
    this.events.on('user.deleting', dropUser, everyReplica);
  }

  /** For an HTTP request: a first use is admitted (cookie and redirect); later ones are proxied. */
  async decide(preview: PreviewRequest, request: IncomingMessage, upgrade = false): Promise<PreviewDecision> {
    const params = preview.url.searchParams;
    const token = params.get(TOKEN_PARAM);
    const grant = params.get(GRANT_PARAM);
    const firstUse = token !== null || grant !== null;
    let principal: Principal | null;
    if (token !== null) principal = await this.auth.authenticate(token).catch(() => null);
    else if (grant !== null) principal = await this.fromClaims(this.tokens.verify(grant, 'grant'), preview);
    else {
      // The path form's key is in its path; the host form's in its cookie.
      const key = preview.form === 'path' ? preview.key : previewCookie(request.headers.cookie);
      if (!key) return { kind: 'not_found' };
      const cacheKey = `${key}:${preview.environmentId}:${preview.port}`;
      const cached = this.recent.get(cacheKey);
      if (cached && cached.until > performance.now()) return cached.decision;
      principal = await this.fromClaims(this.tokens.verify(key, 'cookie'), preview);
      const decision = principal ? await this.admit(preview, principal, false, upgrade) : ({ kind: 'not_found' } as const);
      if (principal && decision.kind === 'proxy') this.remember(cacheKey, decision, preview, principal);
      return decision;
    }
    return principal ? this.admit(preview, principal, firstUse, upgrade) : { kind: 'not_found' };
  }

  private async admit(preview: PreviewRequest, principal: Principal, firstUse: boolean, upgrade: boolean): Promise<PreviewDecision> {
    const environment = await this.environments.getOwned(principal, preview.environmentId).catch(() => null);
    if (!environment) return { kind: 'not_found' };
    const declared = await this.responses.declaredPorts(environment);
    if (!declared.some(({ port }) => port === preview.port)) return { kind: 'not_found' };
    // A WebSocket cannot follow a redirect: one opened with a token goes straight through.
    if (firstUse && !upgrade) {
      const claims = { kind: 'cookie' as const, sub: principal.user.id, sid: principal.sessionId, env: environment.id, port: preview.port };
      return { kind: 'admit', key: this.tokens.sign(claims, this.config.cookieTtlMs) };
    }
    if (environment.phase !== 'running') return { kind: 'unavailable', detail: `The environment is ${environment.phase}; start it first` };
    const target = await this.runtime.previewTarget(await this.environments.specFor(environment), preview.port);
    if (!target) return { kind: 'unavailable', detail: 'The environment has no network address yet; try again shortly' };
    return { kind: 'proxy', target };
  }

  /** Drops the reused decisions for this environment's port (its upstream just failed). */
  forget(environmentId: string, port: number): void {
    this.drop((entry) => entry.environmentId === environmentId && entry.port === port);
  }

  private drop(matches: (entry: RecentDecision) => boolean): void {
    for (const [key, entry] of this.recent) if (matches(entry)) this.recent.delete(key);
  }

  private remember(key: string, decision: PreviewDecision, preview: PreviewRequest, principal: Principal): void {
    this.recent.delete(key);
    this.recent.set(key, {
      decision,
      until: performance.now() + DECISION_CACHE_MS,
      environmentId: preview.environmentId,
      port: preview.port,
      userId: principal.user.id,
      sessionId: principal.sessionId,
    });
    if (this.recent.size > DECISION_CACHE_SIZE) this.recent.delete(this.recent.keys().next().value!);
  }

  /** The host form's Set-Cookie of an admitted preview: host-only (its own host), HTTP-only. */
  setCookie(value: string, secure: boolean): string {
    const maxAge = Math.floor(this.config.cookieTtlMs / 1000);
    return [`${PREVIEW_COOKIE}=${value}`, 'Path=/', `Max-Age=${maxAge}`, 'HttpOnly', 'SameSite=Lax', ...(secure ? ['Secure'] : [])].join(
      '; ',
    );
  }

  private async fromClaims(
    claims: { sub: string; sid: string; env: string; port: number } | null,
    preview: PreviewRequest,
  ): Promise<Principal | null> {
    if (!claims || claims.env !== preview.environmentId || claims.port !== preview.port) return null;
    return this.auth.principalFor({ typ: 'access', sub: claims.sub, sid: claims.sid, jti: '' }).catch(() => null);
  }
}
