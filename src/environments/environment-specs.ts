import { Injectable } from '@nestjs/common';
import { AppError } from '../common/errors/app-error.js';
import type { EnvironmentSpec } from '../runtime/runtime.provider.js';
import { TemplatesService } from '../templates/templates.service.js';
import type { Environment } from './environment.js';
import { EnvironmentError } from './environments.errors.js';

/**
 * What the runtime is given for an environment: its record joined with its template
 * (`EnvironmentSpec`). The template is read at every call, so a template changed by an admin or by
 * the loader applies at the environment's next operation.
 */
@Injectable()
export class EnvironmentSpecs {
  constructor(private readonly templates: TemplatesService) {}

  /** The spec of an environment; 409 `template_gone` when its template no longer exists at all. */
  async specFor(environment: Environment): Promise<EnvironmentSpec> {
    const spec = await this.teardownSpecFor(environment);
    if (!spec) {
      throw new AppError(EnvironmentError.TemplateGone, `The template of this environment (${environment.templateName}) no longer exists`);
    }
    return { ...spec, environmentVariables: { ...spec.template.environmentVariables, ...environment.environmentVariables } };
  }

  /**
   * Enough of a spec to remove what the runtime holds of the environment (its variables do not
   * matter there); null when its template no longer exists.
   */
  async teardownSpecFor(environment: Environment): Promise<EnvironmentSpec | null> {
    const template = await this.templates.findById(environment.templateId);
    if (!template) return null;
    return {
      id: environment.id,
      slug: environment.slug,
      userId: environment.userId,
      template,
      resources: environment.resources,
      environmentVariables: {},
    };
  }
}
