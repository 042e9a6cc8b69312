import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { parseDocument } from 'yaml';
import type { FieldError } from '../common/errors/app-error.js';
import { flattenValidationErrors } from '../common/errors/validation.js';
import { TemplateDefinitionDto, UpdateTemplateDto } from './dto/template-definition.dto.js';
import { isOwnEnvironmentImage } from './template-rules.js';
import type { Template } from './template.js';

/**
 * One template definition: what a YAML file (or an admin's POST body) holds, before it is stored.
 * Reading a file: `parseTemplateFile(text, 'templates/python.yaml')`. Any other source of a
 * definition goes through `checkTemplateDefinition`, so every rule holds wherever it comes from.
 */
export type TemplateDefinition = Omit<Template, 'id' | 'usageCount' | 'createdAt' | 'updatedAt' | 'deletedAt'>;

export type DefinitionCheck = { ok: true; definition: TemplateDefinition } | { ok: false; errors: FieldError[] };

export const TEMPLATE_FILE_EXTENSION = '.yaml';

/** A template file that cannot be used; the message names the file and each failing field. */
export class TemplateFileError extends Error {
  constructor(
    readonly file: string,
    readonly errors: FieldError[],
  ) {
    super(`${file}: ${errors.map((e) => e.message).join('; ')}`);
    this.name = 'TemplateFileError';
  }
}

/** `templates/python.yaml` → `python`. */
export function templateNameOfFile(file: string): string {
  return basename(file, TEMPLATE_FILE_EXTENSION);
}

/** Validates a definition in the file/wire format (snake_case) and converts it. */
export function checkTemplateDefinition(raw: unknown): DefinitionCheck {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return {
      ok: false,
      errors: [
        { field: '', message: 'the template must be a mapping of its fields (name, display_name, description, …)', code: 'isObject' },
      ],
    };
  }
  const dto = plainToInstance(TemplateDefinitionDto, raw);
  const errors = flattenValidationErrors(
    validateSync(dto, {
      whitelist: true,
      forbidNonWhitelisted: true,
      stopAtFirstError: true,
      validationError: { target: false, value: false },
    }),
  );
  if (errors.length > 0) return { ok: false, errors };
  const definition = definitionFromDto(dto);
  const crossField = consistencyErrors(definition);
  return crossField.length > 0 ? { ok: false, errors: crossField } : { ok: true, definition };
}

/** Rules that involve more than one field (each field on its own is already valid). */
function consistencyErrors(definition: TemplateDefinition): FieldError[] {
  const errors: FieldError[] = [];
  definition.ports.forEach((port, index) => {
    const earlier = definition.ports.slice(0, index);
    if (earlier.some((p) => p.name === port.name)) {
      errors.push({ field: `ports.${index}.name`, message: `ports.${index}.name repeats "${port.name}"`, code: 'unique' });
    }
    if (earlier.some((p) => p.port === port.port && p.protocol === port.protocol)) {
      errors.push({ field: `ports.${index}.port`, message: `ports.${index}.port repeats ${port.port}/${port.protocol}`, code: 'unique' });
    }
  });
  if (definition.defaultPort !== null && !definition.ports.some((p) => p.port === definition.defaultPort)) {
    errors.push({
      field: 'default_port',
      message: `default_port must be one of the ports listed in ports (${definition.defaultPort} is not)`,
      code: 'defaultPort',
    });
  }
  if (definition.runAsNonRoot && definition.user.uid === 0) {
    errors.push({ field: 'run_as_non_root', message: 'run_as_non_root cannot be true when user.uid is 0 (root)', code: 'nonRoot' });
  } else {
    errors.push(...rootErrors(definition));
  }
  return errors;
}

/**
 * Root in the container is an opt-in of templates with an image of their own (docs/templates.md,
 * "Root in the container"): `startup.system` steps run as root at every start, so they need
 * `run_as_non_root: false`; and DevPocket's own images (`devpocket/env-*`), which have their tools
 * installed and run as their user, never run as root.
 */
function rootErrors(definition: TemplateDefinition): FieldError[] {
  const ownImage = isOwnEnvironmentImage(definition.image);
  if (definition.startup.system.length > 0 && definition.runAsNonRoot) {
    return [
      {
        field: 'startup.system',
        message: ownImage
          ? `startup.system must be empty with DevPocket's own image ${definition.image}, which has its tools installed and runs as its user: move the steps to startup.user, or into an image of your own`
          : 'startup.system runs as root in the container at every start: it needs run_as_non_root: false (root opt-in, only for an image of your own), or move the steps into the image',
        code: 'systemStepsNeedRoot',
      },
    ];
  }
  if (!definition.runAsNonRoot && ownImage) {
    return [
      {
        field: 'run_as_non_root',
        message: `run_as_non_root must be true with DevPocket's own image ${definition.image}, which runs as its user without root (root is only for an image of your own)`,
        code: 'ownImageRunsAsUser',
      },
    ];
  }
  return [];
}

/**
 * Parses and validates one template file. `file` is the path shown in messages (e.g.
 * `templates/python.yaml`); the template's name must be the file's name without `.yaml`.
 */
export function parseTemplateFile(text: string, file: string): TemplateDefinition {
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const yamlError = document.errors[0];
  if (yamlError) {
    throw new TemplateFileError(file, [
      { field: '', message: `not valid YAML: ${(yamlError.message.split('\n')[0] ?? '').replace(/:$/, '')}`, code: 'yaml' },
    ]);
  }
  let raw: unknown;
  try {
    raw = document.toJS({ maxAliasCount: 50 });
  } catch (error) {
    throw new TemplateFileError(file, [
      { field: '', message: `not valid YAML: ${error instanceof Error ? error.message : String(error)}`, code: 'yaml' },
    ]);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new TemplateFileError(file, [
      { field: '', message: 'the file must hold one YAML mapping of template fields (name, display_name, …)', code: 'isObject' },
    ]);
  }
  const checked = checkTemplateDefinition(raw);
  const expected = templateNameOfFile(file);
  const nameErrors: FieldError[] =
    typeof (raw as { name?: unknown }).name === 'string' && (raw as { name: string }).name !== expected
      ? [
          {
            field: 'name',
            message: `name must be "${expected}", the file name without ${TEMPLATE_FILE_EXTENSION} (got "${(raw as { name: string }).name}")`,
            code: 'fileName',
          },
        ]
      : [];
  if (!checked.ok) {
    const errors = checked.errors.some((e) => e.field === 'name') ? checked.errors : [...nameErrors, ...checked.errors];
    throw new TemplateFileError(file, errors);
  }
  if (nameErrors.length > 0) throw new TemplateFileError(file, nameErrors);
  return checked.definition;
}

export function definitionFromDto(dto: TemplateDefinitionDto): TemplateDefinition {
  return {
    name: dto.name,
    displayName: dto.display_name,
    description: dto.description,
    category: dto.category,
    tags: [...dto.tags],
    status: dto.status,
    version: dto.version,
    defaultPort: dto.default_port ?? null,
    documentationUrl: dto.documentation_url ?? null,
    iconUrl: dto.icon_url ?? null,
    image: dto.image,
    user: { name: dto.user.name, uid: dto.user.uid, gid: dto.user.gid, home: dto.user.home },
    shell: dto.shell,
    workingDirectory: dto.working_directory,
    ports: dto.ports.map((p) => ({ name: p.name, port: p.port, protocol: p.protocol })),
    environmentVariables: { ...dto.environment_variables },
    startup: { system: [...dto.startup.system], user: [...dto.startup.user] },
    requiredCommands: [...dto.required_commands],
    defaultResources: { cpu: dto.default_resources.cpu, memory: dto.default_resources.memory, storage: dto.default_resources.storage },
    runAsNonRoot: dto.run_as_non_root,
  };
}

/** Changes to a definition: absent fields stay; `null` clears an optional field (and is refused for a required one). */
export type TemplateChanges = { [K in keyof TemplateDefinition]?: TemplateDefinition[K] | null };

const DOMAIN_TO_WIRE: Record<keyof TemplateDefinition, string> = {
  name: 'name',
  displayName: 'display_name',
  description: 'description',
  category: 'category',
  tags: 'tags',
  status: 'status',
  version: 'version',
  defaultPort: 'default_port',
  documentationUrl: 'documentation_url',
  iconUrl: 'icon_url',
  image: 'image',
  user: 'user',
  shell: 'shell',
  workingDirectory: 'working_directory',
  ports: 'ports',
  environmentVariables: 'environment_variables',
  startup: 'startup',
  requiredCommands: 'required_commands',
  defaultResources: 'default_resources',
  runAsNonRoot: 'run_as_non_root',
};

const WIRE_TO_DOMAIN = new Map(Object.entries(DOMAIN_TO_WIRE).map(([domain, wire]) => [wire, domain as keyof TemplateDefinition]));

/** Plain data (class instances from the ValidationPipe become plain objects). */
const plain = (value: unknown): unknown => (value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as unknown));

/** The fields present in an update body, renamed to the domain's names; values as sent (null included). */
export function changesFromDto(dto: UpdateTemplateDto): TemplateChanges {
  const changes: Record<string, unknown> = {};
  for (const [wire, value] of Object.entries(dto)) {
    const key = WIRE_TO_DOMAIN.get(wire);
    if (key && value !== undefined) changes[key] = plain(value);
  }
  return changes;
}

/** Applies changes to a definition and validates the result as a whole, like a file. */
export function applyTemplateChanges(definition: TemplateDefinition, changes: TemplateChanges): DefinitionCheck {
  const document = toTemplateDocument(definition);
  for (const [key, value] of Object.entries(changes)) {
    const wire = DOMAIN_TO_WIRE[key as keyof TemplateDefinition];
    if (wire !== undefined && value !== undefined) document[wire] = plain(value);
  }
  return checkTemplateDefinition(document);
}

/** The definition in the file/wire format (snake_case), e.g. to merge an update and validate the result. */
export function toTemplateDocument(definition: TemplateDefinition): Record<string, unknown> {
  return {
    name: definition.name,
    display_name: definition.displayName,
    description: definition.description,
    category: definition.category,
    tags: [...definition.tags],
    status: definition.status,
    version: definition.version,
    default_port: definition.defaultPort,
    documentation_url: definition.documentationUrl,
    icon_url: definition.iconUrl,
    image: definition.image,
    user: { ...definition.user },
    shell: definition.shell,
    working_directory: definition.workingDirectory,
    ports: definition.ports.map((p) => ({ ...p })),
    environment_variables: { ...definition.environmentVariables },
    startup: { system: [...definition.startup.system], user: [...definition.startup.user] },
    required_commands: [...definition.requiredCommands],
    default_resources: { ...definition.defaultResources },
    run_as_non_root: definition.runAsNonRoot,
  };
}

/** The definition part of a stored template. */
export function definitionOf(template: Template): TemplateDefinition {
  return {
    name: template.name,
    displayName: template.displayName,
    description: template.description,
    category: template.category,
    tags: template.tags,
    status: template.status,
    version: template.version,
    defaultPort: template.defaultPort,
    documentationUrl: template.documentationUrl,
    iconUrl: template.iconUrl,
    image: template.image,
    user: template.user,
    shell: template.shell,
    workingDirectory: template.workingDirectory,
    ports: template.ports,
    environmentVariables: template.environmentVariables,
    startup: template.startup,
    requiredCommands: template.requiredCommands,
    defaultResources: template.defaultResources,
    runAsNonRoot: template.runAsNonRoot,
  };
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, canonical((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}

/**
 * SHA-256 of the definition's content in a canonical form: comments, key order and formatting of
 * the YAML file do not change it; any value does.
 */
export function templateContentHash(definition: TemplateDefinition): string {
  return createHash('sha256')
    .update(JSON.stringify(canonical(toTemplateDocument(definition))))
    .digest('hex');
}
