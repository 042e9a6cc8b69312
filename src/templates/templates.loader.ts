import { readdir, readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { HttpAdapterHost } from '@nestjs/core';
import { Clock } from '../common/clock/clock.js';
import { runtimeConfig } from '../config/namespaces/runtime.config.js';
import { compareSemver } from './semver.js';
import {
  parseTemplateFile,
  TEMPLATE_FILE_EXTENSION,
  TemplateDefinition,
  templateContentHash,
  TemplateFileError,
  templateNameOfFile,
} from './template-file.js';
import { DuplicateTemplateError, StoredTemplate, TemplatesRepository } from './templates.repository.js';

/** A file the loader did not use, and why. */
export interface TemplateLoadError {
  file: string;
  message: string;
}

/** A valid file the loader left alone on purpose (the stored template wins). */
export interface TemplateLoadSkip {
  file: string;
  name: string;
  message: string;
}

/** What one load did, by template name. */
export interface TemplateLoadReport {
  directory: string;
  /** Stored for the first time, or restored after a prune (or, with a newer version, after an admin's delete). */
  loaded: string[];
  /** The file replaced the stored definition: a newer version, or the same version with other content. */
  updated: string[];
  unchanged: string[];
  /** The stored template was kept: it is newer than the file, or an admin deleted it. */
  skipped: TemplateLoadSkip[];
  /** Soft-deleted because their file is gone (`--prune` only). */
  pruned: string[];
  /** Files that could not be used: the message names the file and the field. */
  errors: TemplateLoadError[];
}

export interface TemplateLoadOptions {
  /** Soft-delete stored file templates whose file is gone. */
  prune?: boolean;
}

/** Largest template file read; anything bigger is refused. */
export const MAX_TEMPLATE_FILE_BYTES = 256 * 1024;

type Decision =
  | { action: 'keep'; outcome: 'unchanged' }
  | { action: 'keep'; outcome: 'skipped'; message: string }
  | { action: 'replace'; outcome: 'updated' | 'loaded' };

/**
 * What to do with a valid file when a template of that name is stored (pure; see docs/templates.md):
 * - deleted by an admin: a newer file version restores it, otherwise it stays deleted;
 * - pruned (its file was gone): the file restores it;
 * - live: a newer file version, or the same version with other content, replaces it; an older one
 *   never does (the stored one was changed through the API with a higher version).
 */
export function decideTemplateLoad(
  stored: Pick<StoredTemplate, 'contentHash' | 'deletedBy'> & { version: string; deleted: boolean },
  file: { version: string; contentHash: string },
): Decision {
  const order = compareSemver(file.version, stored.version);
  if (stored.deleted) {
    if (stored.deletedBy !== 'admin' || order > 0) return { action: 'replace', outcome: 'loaded' };
    return {
      action: 'keep',
      outcome: 'skipped',
      message: `deleted by an admin; kept deleted (a file version newer than ${stored.version} restores it)`,
    };
  }
  if (order > 0) return { action: 'replace', outcome: 'updated' };
  if (order === 0)
    return file.contentHash === stored.contentHash ? { action: 'keep', outcome: 'unchanged' } : { action: 'replace', outcome: 'updated' };
  return {
    action: 'keep',
    outcome: 'skipped',
    message: `the stored version ${stored.version} is newer than the file's ${file.version} (changed through the admin API?); the stored template was kept`,
  };
}

/** How often one file is re-read and re-decided when other writers keep changing the same template. */
const MAX_ATTEMPTS = 8;

/**
 * Loads `*.yaml` from RUNTIME's templatesDir into the `templates` collection: when the server
 * boots, and on demand (`templates:load` in the CLI). A bad file is reported (file and field) and
 * skipped; the others load. Safe when several replicas load at once: inserts rely on the unique
 * index on `name`, replacements are conditional on the stored revision.
 */
@Injectable()
export class TemplatesLoader implements OnApplicationBootstrap {
  private readonly logger = new Logger('Templates');

  constructor(
    private readonly repository: TemplatesRepository,
    @Inject(runtimeConfig.KEY) private readonly config: ConfigType<typeof runtimeConfig>,
    private readonly clock: Clock,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  /**
   * The server (an application with an HTTP adapter) loads the templates before it listens. Other
   * application contexts (the CLI) do not: `templates:load` loads them itself and reports what it
   * did. A failure is logged and never stops the server.
   */
  async onApplicationBootstrap(): Promise<void> {
    if (!this.adapterHost.httpAdapter) return;
    try {
      this.log(await this.load());
    } catch (error) {
      this.logger.error(
        `Templates were not loaded from ${this.config.templatesDir}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }

  async load(options: TemplateLoadOptions = {}): Promise<TemplateLoadReport> {
    const directory = this.config.templatesDir;
    const report: TemplateLoadReport = { directory, loaded: [], updated: [], unchanged: [], skipped: [], pruned: [], errors: [] };
    let files: string[];
    try {
      files = await templateFiles(directory);
    } catch (error) {
      report.errors.push({
        file: display(directory),
        message: `${display(directory)}: the templates directory cannot be read (${errorText(error)})`,
      });
      return report;
    }
    await this.repository.ensureIndexes();

    /** Every name that has a file, valid or not: a broken file never gets its template pruned. */
    const present = new Set<string>();
    for (const entry of files) {
      const path = join(directory, entry);
      const file = display(path);
      present.add(templateNameOfFile(entry));
      try {
        const definition = await readDefinition(path, file);
        const outcome = await this.apply(definition);
        if (outcome.outcome === 'skipped') report.skipped.push({ file, name: definition.name, message: outcome.message });
        else report[outcome.outcome].push(definition.name);
      } catch (error) {
        report.errors.push({ file, message: error instanceof TemplateFileError ? error.message : `${file}: ${errorText(error)}` });
      }
    }

    if (options.prune) {
      if (files.length === 0) {
        report.errors.push({
          file: display(directory),
          message: `${display(directory)}: no ${TEMPLATE_FILE_EXTENSION} files found; refusing to prune every template (check TEMPLATES_DIR)`,
        });
      } else {
        const now = this.clock.now();
        for (const stored of await this.repository.listFromFiles()) {
          if (present.has(stored.name)) continue;
          if (await this.repository.softDelete(stored.id, 'prune', now, 'file')) report.pruned.push(stored.name);
        }
      }
    }
    return report;
  }

  private async apply(
    definition: TemplateDefinition,
  ): Promise<{ outcome: 'loaded' | 'updated' | 'unchanged' } | { outcome: 'skipped'; message: string }> {
    const contentHash = templateContentHash(definition);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
      const stored = await this.repository.findStoredByName(definition.name);
      if (!stored) {
        try {
          await this.repository.insert(definition, contentHash, 'file');
          return { outcome: 'loaded' };
        } catch (error) {
          if (error instanceof DuplicateTemplateError) continue; // another replica inserted it: decide again
          throw error;
        }
      }
      const decision = decideTemplateLoad(
        {
          version: stored.template.version,
          contentHash: stored.contentHash,
          deleted: stored.template.deletedAt !== null,
          deletedBy: stored.deletedBy,
        },
        { version: definition.version, contentHash },
      );
      if (decision.action === 'keep')
        return decision.outcome === 'skipped' ? { outcome: 'skipped', message: decision.message } : { outcome: 'unchanged' };
      if (await this.repository.replace(stored.template.id, stored.revision, definition, contentHash, 'file'))
        return { outcome: decision.outcome };
      // Another writer changed it between our read and our write: read again.
    }
    throw new Error(`the stored template "${definition.name}" kept changing during the load; try again`);
  }

  private log(report: TemplateLoadReport): void {
    for (const error of report.errors) this.logger.error(`Refused: ${error.message}`);
    for (const skip of report.skipped) this.logger.warn(`Not applied: ${skip.file}: ${skip.message}`);
    this.logger.log(
      `Templates from ${report.directory}: ${report.loaded.length} new, ${report.updated.length} updated, ${report.unchanged.length} unchanged, ` +
        `${report.skipped.length} skipped, ${report.errors.length} refused`,
    );
  }
}

/**
 * The `*.yaml` regular files of the directory, by name. Symbolic links are followed: a Kubernetes
 * ConfigMap volume presents its files as links.
 */
async function templateFiles(directory: string): Promise<string[]> {
  const names = (await readdir(directory)).filter((name) => name.endsWith(TEMPLATE_FILE_EXTENSION) && !name.startsWith('.')).sort();
  const regular = await Promise.all(
    names.map((name) =>
      stat(join(directory, name)).then(
        (s) => s.isFile(),
        () => true,
      ),
    ),
  );
  return names.filter((_, index) => regular[index]);
}

async function readDefinition(path: string, file: string): Promise<TemplateDefinition> {
  const size = (await stat(path)).size;
  if (size > MAX_TEMPLATE_FILE_BYTES) {
    throw new TemplateFileError(file, [
      { field: '', message: `the file is larger than ${MAX_TEMPLATE_FILE_BYTES / 1024} KiB`, code: 'size' },
    ]);
  }
  return parseTemplateFile(await readFile(path, 'utf8'), file);
}

/** `templates/python.yaml` when under the working directory, the absolute path otherwise. */
function display(path: string): string {
  const shown = relative(process.cwd(), path);
  return shown && !shown.startsWith('..') && !isAbsolute(shown) ? shown : path;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The report as text, for the CLI. */
export function formatTemplateLoadReport(report: TemplateLoadReport): string {
  const names = (list: string[]): string => (list.length > 0 ? list.join(', ') : '-');
  const lines = [
    `Templates from ${report.directory}`,
    `  loaded (${report.loaded.length}): ${names(report.loaded)}`,
    `  updated (${report.updated.length}): ${names(report.updated)}`,
    `  unchanged (${report.unchanged.length}): ${names(report.unchanged)}`,
    `  skipped (${report.skipped.length})${report.skipped.length > 0 ? ':' : ': -'}`,
    ...report.skipped.map((s) => `    ${s.file}: ${s.message}`),
    `  pruned (${report.pruned.length}): ${names(report.pruned)}`,
    `  errors (${report.errors.length})${report.errors.length > 0 ? ':' : ': -'}`,
    ...report.errors.map((e) => `    ${e.message}`),
  ];
  return lines.join('\n');
}
