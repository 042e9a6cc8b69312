import { Injectable } from '@nestjs/common';
import { Clock } from '../common/clock/clock.js';
import { AppError, FieldError } from '../common/errors/app-error.js';
import { CommonError } from '../common/errors/error-code.js';
import { TemplateError } from './templates.errors.js';
import { validationError } from '../common/errors/validation.js';
import {
  applyTemplateChanges,
  checkTemplateDefinition,
  definitionOf,
  TemplateChanges,
  TemplateDefinition,
  templateContentHash,
  toTemplateDocument,
} from './template-file.js';
import { TEMPLATE_STATUSES, type Template, type TemplateCategory, type TemplateStatus } from './template.js';
import { DuplicateTemplateError, StoredTemplate, TemplatesRepository } from './templates.repository.js';

export interface TemplateFilter {
  category?: TemplateCategory;
  status?: TemplateStatus;
  /** Admins only: soft-deleted templates too. */
  includeDeleted?: boolean;
}

/** What people may use: deprecated and deleted templates are hidden from everyone but admins. */
const USABLE_STATUSES: readonly TemplateStatus[] = ['active', 'beta'];

/**
 * Templates for the API and for the Environments module. Users see active and beta templates;
 * admins also see deprecated ones, and deleted ones when they ask. The definitions themselves come
 * from the YAML files (TemplatesLoader) or from admins (create / update).
 */
@Injectable()
export class TemplatesService {
  constructor(
    private readonly repository: TemplatesRepository,
    private readonly clock: Clock,
  ) {}

  list(filter: TemplateFilter, isAdmin: boolean): Promise<Template[]> {
    const visible = isAdmin ? TEMPLATE_STATUSES : USABLE_STATUSES;
    const statuses = filter.status ? visible.filter((s) => s === filter.status) : visible;
    if (statuses.length === 0) return Promise.resolve([]);
    return this.repository.list({ category: filter.category, statuses, includeDeleted: isAdmin && filter.includeDeleted === true });
  }

  /** By id or name; 404 when it does not exist or the caller may not see it. */
  async get(idOrName: string, isAdmin: boolean, options: { includeDeleted?: boolean } = {}): Promise<Template> {
    const stored = await this.resolve(idOrName);
    const template = stored?.template;
    const visible =
      template !== undefined &&
      (isAdmin
        ? template.deletedAt === null || options.includeDeleted === true
        : template.deletedAt === null && USABLE_STATUSES.includes(template.status));
    if (!visible) throw notFound(idOrName);
    return template;
  }

  /**
   * The template to create an environment from: active or beta, not deleted. Otherwise
   * AppError(ValidationFailed, …) with errors [{field: 'template', …}] naming the template.
   */
  async findForNewEnvironment(nameOrId: string): Promise<Template> {
    const shown = typeof nameOrId === 'string' ? nameOrId.slice(0, 100) : String(nameOrId);
    const stored = typeof nameOrId === 'string' && nameOrId.length <= 100 ? await this.resolve(nameOrId) : null;
    const refuse = (message: string, code: string): never => {
      throw new AppError(CommonError.ValidationFailed, message, { errors: [{ field: 'template', message, code }] });
    };
    if (!stored) return refuse(`template "${shown}" does not exist`, 'unknown_template');
    const template = stored.template;
    if (template.deletedAt !== null) return refuse(`template "${template.name}" has been removed`, 'deleted_template');
    if (!USABLE_STATUSES.includes(template.status)) {
      return refuse(`template "${template.name}" is ${template.status} and cannot be used for new environments`, 'deprecated_template');
    }
    return template;
  }

  /** Any template by id, deleted ones included (existing environments keep working). */
  findById(id: string): Promise<Template | null> {
    return this.repository.findById(id);
  }

  /** Counts one more environment created from it (atomic $inc). */
  async incrementUsage(id: string): Promise<void> {
    await this.repository.incrementUsage(id);
  }

  /**
   * Admin: a new template, validated like a file. A soft-deleted template of the same name is
   * brought back with this definition (same id, usage count kept); a live one is a 409.
   */
  async create(definition: TemplateDefinition): Promise<Template> {
    const checked = validated(checkTemplateDefinition(toTemplateDocument(definition)));
    const contentHash = templateContentHash(checked);
    try {
      return (await this.repository.insert(checked, contentHash, 'api')).template;
    } catch (error) {
      if (!(error instanceof DuplicateTemplateError)) throw error;
    }
    const existing = await this.repository.findStoredByName(checked.name);
    if (existing && existing.template.deletedAt !== null) {
      const revived = await this.repository.replace(existing.template.id, existing.revision, checked, contentHash, 'api');
      if (revived) return revived.template;
    }
    throw new AppError(TemplateError.AlreadyExists, `A template named "${checked.name}" already exists`);
  }

  /**
   * Admin: changes some fields of a live template; the result is validated like a file. Nothing is
   * bumped automatically: raise `version` above the file's, or the next load from a file of the
   * same version puts the file's content back.
   */
  async update(idOrName: string, changes: TemplateChanges): Promise<Template> {
    const stored = await this.resolve(idOrName);
    if (!stored || stored.template.deletedAt !== null) throw notFound(idOrName);
    if (changes.name !== undefined && changes.name !== stored.template.name) {
      throw validationError([{ field: 'name', message: 'name cannot be changed (create a new template instead)', code: 'immutable' }]);
    }
    const definition = validated(applyTemplateChanges(definitionOf(stored.template), changes));
    const contentHash = templateContentHash(definition);
    if (contentHash === stored.contentHash) return stored.template;
    const replaced = await this.repository.replace(stored.template.id, stored.revision, definition, contentHash, stored.source);
    if (!replaced)
      throw new AppError(
        TemplateError.ChangedConcurrently,
        `Template "${stored.template.name}" was changed at the same time; read it again and retry`,
      );
    return replaced.template;
  }

  /** Admin: soft delete. Hidden everywhere; environments created from it keep working (findById). */
  async remove(idOrName: string): Promise<Template> {
    const stored = await this.resolve(idOrName);
    if (!stored || stored.template.deletedAt !== null) throw notFound(idOrName);
    const deleted = await this.repository.softDelete(stored.template.id, 'admin', this.clock.now());
    if (!deleted) throw notFound(idOrName);
    return deleted;
  }

  /** An id (24 hex characters) first, then a name. */
  private async resolve(idOrName: string): Promise<StoredTemplate | null> {
    return (await this.repository.findStoredById(idOrName)) ?? (await this.repository.findStoredByName(idOrName));
  }
}

function validated(check: ReturnType<typeof checkTemplateDefinition>): TemplateDefinition {
  if (!check.ok) throw validationError(check.errors satisfies FieldError[]);
  return check.definition;
}

function notFound(idOrName: string): AppError {
  return new AppError(TemplateError.NotFound, `No template with id or name "${idOrName.slice(0, 100)}"`);
}
