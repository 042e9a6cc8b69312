import { toTemplateDocument } from './template-file.js';
import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Model, Types } from 'mongoose';
import { isDuplicateKeyError } from '../common/errors/database-errors.js';
import { DomainEvents } from '../common/events/domain-events.js';
import { leanMapper } from '../database/lean-mapper.js';
import { parseObjectId } from '../database/object-id.js';
import type { TemplateDefinition } from './template-file.js';
import type { Template, TemplateCategory, TemplateStatus } from './template.js';
import { TemplateDeleter, TemplateRecord, TemplateSource } from './schemas/template.schema.js';

/** A stored template with the bookkeeping the loader and the admin API need for their decisions. */
export interface StoredTemplate {
  template: Template;
  contentHash: string;
  source: TemplateSource;
  /** Grows with every write of the definition or deletion state; conditional writes compare it. */
  revision: number;
  deletedBy: TemplateDeleter | null;
}

export interface TemplateQuery {
  category?: TemplateCategory;
  /** Only these statuses. */
  statuses: readonly TemplateStatus[];
  includeDeleted: boolean;
}

/** Another writer stored a template with this name first. */
export class DuplicateTemplateError extends Error {
  constructor(readonly templateName: string) {
    super(`a template named ${templateName} already exists`);
  }
}

type LeanTemplate = TemplateRecord & { _id: Types.ObjectId };

function toTemplate(record: LeanTemplate): Template {
  return {
    id: record._id.toHexString(),
    name: record.name,
    displayName: record.display_name,
    description: record.description,
    category: record.category,
    tags: [...(record.tags ?? [])],
    status: record.status,
    version: record.version,
    defaultPort: record.default_port ?? null,
    documentationUrl: record.documentation_url ?? null,
    iconUrl: record.icon_url ?? null,
    usageCount: record.usage_count ?? 0,
    createdAt: record.created_at,
    updatedAt: record.updated_at,
    deletedAt: record.deleted_at ?? null,
    image: record.image,
    user: { name: record.user.name, uid: record.user.uid, gid: record.user.gid, home: record.user.home },
    shell: record.shell,
    workingDirectory: record.working_directory ?? '',
    ports: (record.ports ?? []).map((p) => ({ name: p.name, port: p.port, protocol: p.protocol })),
    environmentVariables: { ...(record.environment_variables ?? {}) },
    startup: { system: [...(record.startup?.system ?? [])], user: [...(record.startup?.user ?? [])] },
    requiredCommands: [...(record.required_commands ?? [])],
    defaultResources: {
      cpu: record.default_resources.cpu,
      memory: record.default_resources.memory,
      storage: record.default_resources.storage,
    },
    runAsNonRoot: record.run_as_non_root ?? false,
  };
}

function toStored(record: LeanTemplate): StoredTemplate {
  return {
    template: toTemplate(record),
    contentHash: record.content_hash,
    source: record.source,
    revision: record.revision ?? 0,
    deletedBy: record.deleted_by ?? null,
  };
}

const asTemplate = leanMapper(toTemplate);
const asStored = leanMapper(toStored);
const asNameAndId = leanMapper((record: { _id: Types.ObjectId; name: string }) => ({ id: record._id.toHexString(), name: record.name }));

/** The stored form of a definition is its file form. */
function definitionFields(definition: TemplateDefinition): Partial<TemplateRecord> {
  return toTemplateDocument(definition);
}

/** Persistence of templates. Everything it returns is a plain `Template` (or `StoredTemplate`). */
@Injectable()
export class TemplatesRepository {
  constructor(
    @InjectModel(TemplateRecord.name) private readonly templates: Model<TemplateRecord>,
    private readonly events: DomainEvents,
  ) {}

  /**
   * Resolves once the collection and its unique index on `name` exist. The loader awaits it before
   * inserting, so replicas booting at once cannot insert the same name twice before the index is built.
   */
  async ensureIndexes(): Promise<void> {
    await this.templates.init();
    await this.templates.createIndexes();
  }

  async findById(id: string): Promise<Template | null> {
    const stored = await this.findStoredById(id);
    return stored ? stored.template : null;
  }

  async findByName(name: string): Promise<Template | null> {
    const stored = await this.findStoredByName(name);
    return stored ? stored.template : null;
  }

  async findStoredById(id: string): Promise<StoredTemplate | null> {
    return asStored.byId(id, (_id) => this.templates.findById(_id));
  }

  async findStoredByName(name: string): Promise<StoredTemplate | null> {
    return asStored.one(this.templates.findOne({ name }));
  }

  /** Templates matching the query, by name. */
  async list(query: TemplateQuery): Promise<Template[]> {
    const filter: Record<string, unknown> = { status: { $in: [...query.statuses] } };
    if (query.category) filter.category = query.category;
    if (!query.includeDeleted) filter.deleted_at = null;
    return asTemplate.many(this.templates.find(filter).sort({ name: 1 }));
  }

  /** Names (and ids) of the live templates the loader manages. */
  async listFromFiles(): Promise<{ id: string; name: string }[]> {
    return asNameAndId.many(this.templates.find({ source: 'file', deleted_at: null }, { name: 1 }));
  }

  /** Stores a new template. Throws DuplicateTemplateError when the name is taken (even by a deleted one). */
  async insert(definition: TemplateDefinition, contentHash: string, source: TemplateSource): Promise<StoredTemplate> {
    try {
      const created = await this.templates.create({
        ...definitionFields(definition),
        usage_count: 0,
        content_hash: contentHash,
        source,
        revision: 0,
        deleted_at: null,
        deleted_by: null,
      });
      return toStored(created.toObject<LeanTemplate>());
    } catch (error) {
      if (isDuplicateKeyError(error)) throw new DuplicateTemplateError(definition.name);
      throw error;
    }
  }

  /**
   * Replaces the definition (and restores a soft-deleted template) if the stored revision is still
   * `expectedRevision`; null when another writer got there first (re-read and decide again).
   * `usage_count`, `created_at` and the id are kept.
   */
  async replace(
    id: string,
    expectedRevision: number,
    definition: TemplateDefinition,
    contentHash: string,
    source: TemplateSource,
  ): Promise<StoredTemplate | null> {
    const replaced = await asStored.byId(id, (_id) =>
      this.templates.findOneAndUpdate(
        { _id, revision: expectedRevision },
        {
          $set: { ...definitionFields(definition), content_hash: contentHash, source, deleted_at: null, deleted_by: null },
          $inc: { revision: 1 },
        },
        { returnDocument: 'after' },
      ),
    );
    if (replaced) await this.changed(replaced.template.id);
    return replaced;
  }

  /** Soft-deletes a live template; null when it is unknown or already deleted. */
  async softDelete(id: string, by: TemplateDeleter, now: Date, onlySource?: TemplateSource): Promise<Template | null> {
    const deleted = await asTemplate.byId(id, (_id) => {
      const filter: Record<string, unknown> = { _id, deleted_at: null };
      if (onlySource) filter.source = onlySource;
      return this.templates.findOneAndUpdate(
        filter,
        { $set: { deleted_at: now, deleted_by: by }, $inc: { revision: 1 } },
        { returnDocument: 'after' },
      );
    });
    if (deleted) await this.changed(deleted.id);
    return deleted;
  }

  /** Copies held by any replica are stale (a new template needs no event: nobody holds a copy of what did not exist). */
  private changed(templateId: string): Promise<void> {
    return this.events.emit('template.changed', { templateId });
  }

  /** One more environment created from it: a single atomic $inc, not a change of the template (updated_at stays). */
  async incrementUsage(id: string): Promise<boolean> {
    const _id = parseObjectId(id);
    if (!_id) return false;
    const result = await this.templates.updateOne({ _id }, { $inc: { usage_count: 1 } }, { timestamps: false }).exec();
    return result.matchedCount > 0;
  }
}
