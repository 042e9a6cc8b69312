import { createParamDecorator, ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { PreviewLinks, type Viewer } from '../previews/preview-links.js';
import { TemplateCache } from '../templates/template-cache.js';
import type { EnvironmentResponseDto } from './dto/environment.dto.js';
import type { ListedEnvironment } from './environment-list-cache.js';
import { toEnvironmentResponse } from './environment.mapper.js';

export type { Viewer };

/** The authenticated caller as a Viewer, on an authenticated route: `@CurrentViewer() viewer: Viewer`. */
export const CurrentViewer = createParamDecorator((_data: unknown, context: ExecutionContext): Viewer => {
  const request = context.switchToHttp().getRequest<Request>();
  const principal = request.principal;
  if (!principal) throw new Error('CurrentViewer used on a route without authentication');
  const host = request.get('host');
  return { userId: principal.user.id, sessionId: principal.sessionId, origin: host ? `${request.protocol}://${host}` : null };
});

/** A port a browser may preview: the template's TCP ports (by name), then those its owner added. */
export interface DeclaredPort {
  port: number;
  name: string | null;
}

/**
 * The Environment on the wire (`toEnvironmentResponse`) with its preview addresses: `external_url`
 * (the first declared port's, with a short-lived grant), `web_port`, and `previews` (every one).
 */
@Injectable()
export class EnvironmentResponses {
  constructor(
    private readonly templates: TemplateCache,
    private readonly links: PreviewLinks,
  ) {}

  async one(viewer: Viewer, environment: ListedEnvironment): Promise<EnvironmentResponseDto> {
    return (await this.many(viewer, [environment]))[0];
  }

  async many(viewer: Viewer, environments: readonly ListedEnvironment[]): Promise<EnvironmentResponseDto[]> {
    const portsOf = this.portsLookup();
    return Promise.all(
      environments.map(async (environment) => {
        if (environment.phase === 'terminated') return toEnvironmentResponse(environment);
        const ports = await portsOf(environment);
        return toEnvironmentResponse(environment, this.links.forEnvironment(environment.id, ports, viewer));
      }),
    );
  }

  /** The environment's declared ports (its template's, from the template cache, and its owner's). */
  declaredPorts(environment: ListedEnvironment): Promise<DeclaredPort[]> {
    return this.portsLookup()(environment);
  }

  private portsLookup(): (environment: ListedEnvironment) => Promise<DeclaredPort[]> {
    const templates = new Map<string, Promise<DeclaredPort[]>>();
    return async (environment) => {
      let fromTemplate = templates.get(environment.templateId);
      if (!fromTemplate) {
        fromTemplate = this.templates
          .findById(environment.templateId)
          .then((template) =>
            (template?.ports ?? []).filter((port) => port.protocol === 'TCP').map((port) => ({ port: port.port, name: port.name })),
          );
        templates.set(environment.templateId, fromTemplate);
      }
      const declared = [...(await fromTemplate)];
      for (const port of environment.ports) if (!declared.some((known) => known.port === port)) declared.push({ port, name: null });
      return declared;
    };
  }
}
