import { ApiProperty, PartialType } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import { ValidateNested } from 'class-validator';
import { isPlainObject } from '../../common/dto/fields.js';
import {
  ENV_NAME_PATTERN,
  IMAGE_PATTERN,
  isAbsolutePath,
  isCommandName,
  isRelativePath,
  LIMITS,
  PORT_NAME_PATTERN,
  TAG_PATTERN,
  TEMPLATE_NAME_PATTERN,
  UNIX_USER_PATTERN,
  cpuNumberQuantity,
  MAX_CPU_NUMBER,
} from '../template-rules.js';
import { TEMPLATE_CATEGORIES, TEMPLATE_STATUSES, type TemplateCategory, type TemplateStatus } from '../template.js';
import {
  Rule,
  Field,
  NestedObject,
  matching,
  stringList,
  listSchema,
  ABSOLUTE_PATH_PATTERN,
  RELATIVE_PATH_PATTERN,
  COMMAND_PATTERN,
  SINGLE_LINE_PATTERN,
  TEXT_PATTERN,
  VERSION_PATTERN,
  VERSION_MAX_LENGTH,
  CPU_QUANTITY_PATTERN,
  BYTE_QUANTITY_PATTERN,
  isPortNumber,
  isId,
  ID_SCHEMA,
  PORT_SCHEMA,
  URL_SCHEMA,
  isHttpUrl,
  STEP_LIST,
  ENV_VALUE_PATTERN,
  environmentProblem,
} from './template-field-rules.js';

/**
 * The template definition on the wire and in the YAML files: one format, one set of rules. The
 * admin API validates bodies with these classes (global ValidationPipe) and template-file.ts
 * validates each YAML file with the same classes, so a file and a POST body are refused with the
 * same messages. Each field's OpenAPI schema says exactly what its rule accepts (patterns are
 * written for every engine: see src/common/dto/fields.ts).
 */
export class TemplateUserDto {
  @Field(
    {
      type: String,
      pattern: UNIX_USER_PATTERN.source,
      example: 'devpocket',
      description: 'Unix user name: 1-32 characters of a-z, 0-9, _ and -, not starting with a digit or -',
    },
    {
      code: 'userName',
      test: (v) => typeof v === 'string' && UNIX_USER_PATTERN.test(v),
      must: 'must be a Unix user name like devpocket (a-z, 0-9, _ and -, at most 32 characters)',
    },
  )
  name!: string;

  @Field({ ...ID_SCHEMA, example: 1000 }, { code: 'uid', test: isId, must: `must be an integer from 0 to ${LIMITS.maxId}` })
  uid!: number;

  @Field({ ...ID_SCHEMA, example: 1000 }, { code: 'gid', test: isId, must: `must be an integer from 0 to ${LIMITS.maxId}` })
  gid!: number;

  @Field(
    { type: String, maxLength: LIMITS.path, pattern: ABSOLUTE_PATH_PATTERN, example: '/home/devpocket' },
    { code: 'absolutePath', test: isAbsolutePath, must: 'must be an absolute path like /home/devpocket' },
  )
  home!: string;
}

export class TemplatePortDto {
  @Field(
    {
      type: String,
      pattern: PORT_NAME_PATTERN.source,
      example: 'http',
      description: 'Kubernetes port name: 1-15 characters of a-z, 0-9 and -, starting with a letter',
    },
    {
      code: 'portName',
      test: (v) => typeof v === 'string' && PORT_NAME_PATTERN.test(v),
      must: 'must be a port name like http (1-15 characters of a-z, 0-9 and -, starting with a letter)',
    },
  )
  name!: string;

  @Field({ ...PORT_SCHEMA, example: 8000 }, { code: 'port', test: isPortNumber, must: 'must be an integer from 1 to 65535' })
  port!: number;

  @Field(
    { type: String, enum: ['TCP', 'UDP'], example: 'TCP' },
    { code: 'protocol', test: (v) => v === 'TCP' || v === 'UDP', must: 'must be TCP or UDP' },
  )
  protocol!: 'TCP' | 'UDP';
}

export class TemplateStartupDto {
  @Field(
    {
      ...listSchema(LIMITS.steps, { maxLength: LIMITS.step, pattern: TEXT_PATTERN }, false),
      example: [],
      description:
        "Run as root inside the container at every start (never on the local runtime): only with run_as_non_root: false and an image that is not DevPocket's own (devpocket/env-*)",
    },
    STEP_LIST,
  )
  system!: string[];

  @Field(
    {
      ...listSchema(LIMITS.steps, { maxLength: LIMITS.step, pattern: TEXT_PATTERN }, false),
      example: ['command -v python3 >/dev/null && [ ! -d "$HOME/.venv" ] && python3 -m venv "$HOME/.venv" || true'],
      description: "Run as the environment's user in its home (also on the local runtime's host)",
    },
    STEP_LIST,
  )
  user!: string[];
}

export class TemplateResourcesDto {
  /** A YAML number of cores (`cpu: 2`, `cpu: 0.5`) is taken to the millicore (`"2"`, `"500m"`). */
  @Transform(({ value }: { value: unknown }) => cpuNumberQuantity(value) ?? value)
  @Field(
    {
      example: '500m',
      description: 'Kubernetes CPU quantity above zero (at most 3 decimals), or a number of cores of at least 0.001',
      oneOf: [
        { type: 'string', pattern: CPU_QUANTITY_PATTERN },
        { type: 'number', minimum: 0.001, maximum: MAX_CPU_NUMBER },
      ],
    },
    { code: 'cpuQuantity', test: matching(CPU_QUANTITY_PATTERN), must: 'must be a Kubernetes CPU quantity like 500m, 1 or 2' },
  )
  cpu!: string;

  @Field(
    {
      type: String,
      pattern: BYTE_QUANTITY_PATTERN,
      example: '1Gi',
      description: 'Kubernetes quantity above zero, with a unit (at most 3 decimals)',
    },
    { code: 'quantity', test: matching(BYTE_QUANTITY_PATTERN), must: 'must be a Kubernetes quantity like 512Mi or 1Gi' },
  )
  memory!: string;

  @Field(
    {
      type: String,
      pattern: BYTE_QUANTITY_PATTERN,
      example: '5Gi',
      description: 'Kubernetes quantity above zero, with a unit (at most 3 decimals)',
    },
    { code: 'quantity', test: matching(BYTE_QUANTITY_PATTERN), must: 'must be a Kubernetes quantity like 512Mi or 1Gi' },
  )
  storage!: string;
}

export class TemplateDefinitionDto {
  @Field(
    {
      type: String,
      pattern: TEMPLATE_NAME_PATTERN.source,
      example: 'python',
      description: 'Unique; a DNS label of 1-40 characters (a-z, 0-9, -); in a file, the file name without .yaml',
    },
    {
      code: 'templateName',
      test: (v) => typeof v === 'string' && TEMPLATE_NAME_PATTERN.test(v),
      must: 'must be 1-40 characters of a-z, 0-9 and -, starting and ending with a letter or digit',
    },
  )
  name!: string;

  @Field(
    {
      type: String,
      maxLength: LIMITS.displayName,
      pattern: SINGLE_LINE_PATTERN,
      example: 'Python 3.12',
      description: `A single line of 1-${LIMITS.displayName} characters, not blank`,
    },
    {
      code: 'displayName',
      test: matching(SINGLE_LINE_PATTERN, LIMITS.displayName),
      must: `must be a single line of 1-${LIMITS.displayName} characters`,
    },
  )
  display_name!: string;

  @Field(
    {
      type: String,
      maxLength: LIMITS.description,
      pattern: TEXT_PATTERN,
      example: 'Python 3.12 with pip and a virtualenv',
      description: `Text of 1-${LIMITS.description} characters (lines allowed), not blank`,
    },
    {
      code: 'description',
      test: matching(TEXT_PATTERN, LIMITS.description),
      must: `must be a text of 1-${LIMITS.description} characters`,
    },
  )
  description!: string;

  @Field(
    { type: String, enum: [...TEMPLATE_CATEGORIES] },
    {
      code: 'category',
      test: (v) => (TEMPLATE_CATEGORIES as readonly unknown[]).includes(v),
      must: `must be one of ${TEMPLATE_CATEGORIES.join(', ')}`,
    },
  )
  category!: TemplateCategory;

  @Field(
    { ...listSchema(LIMITS.tags, { pattern: TAG_PATTERN.source }, true), example: ['python', 'pip'] },
    stringList({
      code: 'tags',
      max: LIMITS.tags,
      item: (v) => typeof v === 'string' && TAG_PATTERN.test(v),
      describe: 'tags of 1-40 characters of a-z, 0-9, ., +, #, _ and -',
      distinct: true,
    }),
  )
  tags!: string[];

  @Field(
    { type: String, enum: [...TEMPLATE_STATUSES] },
    {
      code: 'status',
      test: (v) => (TEMPLATE_STATUSES as readonly unknown[]).includes(v),
      must: `must be one of ${TEMPLATE_STATUSES.join(', ')}`,
    },
  )
  status!: TemplateStatus;

  @Field(
    {
      type: String,
      maxLength: VERSION_MAX_LENGTH,
      pattern: VERSION_PATTERN,
      example: '1.0.0',
      description: 'Semantic version; a file replaces the stored template only when newer (or equal with other content)',
    },
    { code: 'semver', test: matching(VERSION_PATTERN, VERSION_MAX_LENGTH), must: 'must be a semantic version like 1.2.0' },
  )
  version!: string;

  @Field(
    { ...PORT_SCHEMA, example: 8000, nullable: true, description: 'One of ports[].port' },
    { code: 'port', test: isPortNumber, must: 'must be an integer from 1 to 65535' },
    true,
  )
  default_port?: number | null;

  @Field(
    { ...URL_SCHEMA, example: 'https://docs.python.org/3.12/', description: 'An http(s) URL on a host name' },
    { code: 'url', test: isHttpUrl, must: 'must be an http(s) URL' },
    true,
  )
  documentation_url?: string | null;

  @Field(
    { ...URL_SCHEMA, description: 'An http(s) URL on a host name' },
    { code: 'url', test: isHttpUrl, must: 'must be an http(s) URL' },
    true,
  )
  icon_url?: string | null;

  @Field(
    {
      type: String,
      maxLength: 255,
      pattern: IMAGE_PATTERN.source,
      example: 'devpocket/env-python:1',
      description:
        "Container image (Kubernetes runtime): DevPocket's own devpocket/env-<template>:<tag> (tools installed, runs as its user), or an image of your own",
    },
    {
      code: 'image',
      test: (v) => typeof v === 'string' && v.length <= 255 && IMAGE_PATTERN.test(v),
      must: 'must be a container image reference like python:3.12-bookworm or ghcr.io/org/image:tag',
    },
  )
  image!: string;

  @NestedObject(TemplateUserDto, {}, 'must be a mapping with name, uid, gid and home')
  user!: TemplateUserDto;

  @Field(
    { type: String, maxLength: LIMITS.path, pattern: ABSOLUTE_PATH_PATTERN, example: '/bin/bash' },
    { code: 'absolutePath', test: isAbsolutePath, must: 'must be an absolute path like /bin/bash' },
  )
  shell!: string;

  @Field(
    {
      type: String,
      maxLength: LIMITS.path,
      pattern: RELATIVE_PATH_PATTERN,
      example: 'workspace',
      description: "Relative to the user's home directory; '' is the home directory",
    },
    {
      code: 'relativePath',
      test: isRelativePath,
      must: "must be a path relative to the home directory like workspace ('' for the home directory itself)",
    },
  )
  working_directory!: string;

  @ApiProperty({ type: [TemplatePortDto], maxItems: LIMITS.ports })
  @Rule({
    code: 'ports',
    test: (v) => Array.isArray(v) && v.length <= LIMITS.ports && v.every(isPlainObject),
    must: `must be a list of at most ${LIMITS.ports} mappings with name, port and protocol`,
  })
  @ValidateNested({ each: true })
  @Type(() => TemplatePortDto)
  ports!: TemplatePortDto[];

  @ApiProperty({
    type: 'object',
    example: { PYTHONUNBUFFERED: '1' },
    description: `At most ${LIMITS.environmentVariables} variables; values of at most ${LIMITS.environmentValue} characters without NUL`,
    maxProperties: LIMITS.environmentVariables,
    patternProperties: {
      [ENV_NAME_PATTERN.source]: { type: 'string', maxLength: LIMITS.environmentValue, pattern: ENV_VALUE_PATTERN },
    },
    additionalProperties: false,
  })
  @Rule({
    code: 'environmentVariables',
    test: (v) => environmentProblem(v) === null,
    must: (v) =>
      `must map at most ${LIMITS.environmentVariables} names (letters, digits and _, not starting with a digit) to strings (${environmentProblem(v) ?? 'invalid'})`,
  })
  environment_variables!: Record<string, string>;

  @NestedObject(TemplateStartupDto, {}, 'must be a mapping with the lists system and user')
  startup!: TemplateStartupDto;

  @Field(
    {
      ...listSchema(LIMITS.requiredCommands, { maxLength: 64, pattern: COMMAND_PATTERN }, true),
      example: ['bash', 'tmux', 'git', 'python3'],
      description: 'Commands the shell needs',
    },
    stringList({
      code: 'commands',
      max: LIMITS.requiredCommands,
      item: isCommandName,
      describe: 'command names (A-Z, a-z, 0-9, ., _, + and -)',
      distinct: true,
    }),
  )
  required_commands!: string[];

  @NestedObject(TemplateResourcesDto, {}, 'must be a mapping with cpu, memory and storage')
  default_resources!: TemplateResourcesDto;

  @Field(
    {
      type: Boolean,
      example: true,
      description:
        "True when the container runs as user from the start (Kubernetes runAsNonRoot; user.uid must not be 0). Must be true with DevPocket's own images; false (root in the container) is the opt-in that startup.system needs",
    },
    { code: 'isBoolean', test: (v) => typeof v === 'boolean', must: 'must be true or false' },
  )
  run_as_non_root!: boolean;
}

/** `PUT /templates/{id or name}`: the fields to change (nested mappings are replaced whole); the result is validated like a file. */
export class UpdateTemplateDto extends PartialType(TemplateDefinitionDto) {}
