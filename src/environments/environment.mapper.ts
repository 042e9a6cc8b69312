import type { EnvironmentPreviewLinks } from '../previews/preview-links.js';
import { EnvironmentResponseDto } from './dto/environment.dto.js';
import type { ListedEnvironment } from './environment-list-cache.js';
import { statusOf } from './environment.js';

/**
 * The Environment of the mobile client contract, both generations of field names included, with
 * its preview addresses when given (EnvironmentResponses computes them for the caller).
 */
export function toEnvironmentResponse(environment: ListedEnvironment, links?: EnvironmentPreviewLinks): EnvironmentResponseDto {
  const installation = environment.installation;
  const progress =
    installation && installation.stepsTotal > 0
      ? Math.round((installation.stepsDone / installation.stepsTotal) * 100)
      : installation?.completed
        ? 100
        : null;
  return {
    id: environment.id,
    name: environment.name,
    slug: environment.slug,
    template_id: environment.templateId,
    template: environment.templateName,
    status: statusOf(environment.phase),
    phase: environment.phase,
    status_message: environment.statusMessage,
    queued_action: environment.queuedAction,
    installation_completed: installation?.completed ?? false,
    installation_progress: progress,
    resource_limits: { ...environment.resources },
    resources: { ...environment.resources },
    environment_variables: { ...environment.environmentVariables },
    created_at: environment.createdAt.toISOString(),
    updated_at: environment.updatedAt.toISOString(),
    last_accessed: environment.lastAccessed ? environment.lastAccessed.toISOString() : null,
    external_url: links?.externalUrl ?? null,
    web_port: links?.webPort ?? null,
    ssh_port: null,
    previews: (links?.previews ?? []).map(({ port, name, url, openUrl }) => ({ port, name, url, open_url: openUrl })),
  };
}
