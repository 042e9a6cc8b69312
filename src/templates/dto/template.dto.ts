import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional, ApiPropertyOptions, PartialType } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import { IsOptional, ValidateBy, ValidateNested, ValidationArguments } from 'class-validator';
import { characterCount, compilePattern, HTTP_URL_PATTERN, isPlainObject, TRIMMED_CHARACTERS } from '../../common/dto/fields.js';
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
import {
  startupCommands,
  Template,
  TEMPLATE_CATEGORIES,
  TEMPLATE_STATUSES,
  type TemplateCategory,
  type TemplatePort,
  type TemplateStatus,
} from '../template.js';

/**
 * The template definition on the wire and in the YAML files: one format, one set of rules. The
 * admin API validates bodies with these classes (global ValidationPipe) and template-file.ts
 * validates each YAML file with the same classes, so a file and a POST body are refused with the
 * same messages. Each field's OpenAPI schema says exactly what its rule accepts (patterns are
 * written for every engine: see src/common/dto/fields.ts).
 */

interface RuleOptions {
  /** The `code` of the field error. */
  code: string;
  test: (value: unknown) => boolean;
  /** Completes "<field> must …" (or any sentence after the field name); may name the offending part. */
  must: string | ((value: unknown) => string);
}

/** One rule, one message: "<field> is required" when missing, otherwise "<field> <must>". */
function Rule(options: RuleOptions): PropertyDecorator {
  return ValidateBy({
    name: options.code,
    validator: {
      validate: (value: unknown) => options.test(value),
      defaultMessage: (args?: ValidationArguments) => {
        const property = args?.property ?? 'value';
        if (args?.value === undefined || args.value === null) return `${property} is required`;
        return `${property} ${typeof options.must === 'function' ? options.must(args.value) : options.must}`;
      },
    },
  });
}

/** Swagger metadata and the validation rule of one field, together. */
function Field(api: ApiPropertyOptions, rule: RuleOptions, optional = false): PropertyDecorator {
  return optional ? applyDecorators(ApiPropertyOptional(api), IsOptional(), Rule(rule)) : applyDecorators(ApiProperty(api), Rule(rule));
}

/** A nested mapping validated by its own class. */
function NestedObject(type: new () => object, api: ApiPropertyOptions, must: string): PropertyDecorator {
  return applyDecorators(
    ApiProperty({ ...api, type } as ApiPropertyOptions),
    Rule({ code: 'isObject', test: isPlainObject, must }),
    ValidateNested(),
    Type(() => type),
  );
}

const quote = (value: unknown): string => JSON.stringify(value) ?? String(value);

/** A string matching `pattern` (compiled as the schema reads it), of at most `maxLength` characters. */
function matching(pattern: string, maxLength?: number): (value: unknown) => boolean {
  const compiled = compilePattern(pattern);
  return (value) => typeof value === 'string' && (maxLength === undefined || characterCount(value) <= maxLength) && compiled.test(value);
}

/** A list of strings each passing `item`, distinct, at most `max`; the message names the first bad entry. */
function stringList(options: {
  code: string;
  max: number;
  item: (value: unknown) => boolean;
  describe: string;
  distinct: boolean;
}): RuleOptions {
  const problem = (value: unknown): string | null => {
    if (!Array.isArray(value)) return 'is not a list';
    const list = value as unknown[];
    if (list.length > options.max) return `has ${list.length} entries`;
    const bad = list.find((entry) => !options.item(entry));
    if (bad !== undefined) return `has ${quote(bad)}`;
    if (options.distinct) {
      const duplicate = list.find((entry, index) => list.indexOf(entry) !== index);
      if (duplicate !== undefined) return `repeats ${quote(duplicate)}`;
    }
    return null;
  };
  return {
    code: options.code,
    test: (value) => problem(value) === null,
    must: (value) =>
      `must be a list of at most ${options.max} ${options.describe}${options.distinct ? ', each once' : ''} (it ${problem(value) ?? 'is invalid'})`,
  };
}

/** The schema of a list of strings, each as `item` describes it. */
const listSchema = (max: number, item: ApiPropertyOptions, distinct: boolean): ApiPropertyOptions =>
  ({ type: 'array', maxItems: max, items: { type: 'string', ...item }, ...(distinct ? { uniqueItems: true } : {}) }) as ApiPropertyOptions;

/** A path segment of A-Z a-z 0-9 . _ + -, other than `.` and `..`. */
const SEGMENT = String.raw`(?:[A-Za-z0-9_+-][A-Za-z0-9._+-]*|\.[A-Za-z0-9_+-][A-Za-z0-9._+-]*|\.\.[A-Za-z0-9._+-]+)`;
/** `/home/dev`: what isAbsolutePath accepts. */
const ABSOLUTE_PATH_PATTERN = `^(?:/${SEGMENT})+$`;
/** `projects/app` or '': what isRelativePath accepts. */
const RELATIVE_PATH_PATTERN = `^(?:${SEGMENT}(?:/${SEGMENT})*)?$`;
/** A command name of 1-64 characters of A-Z a-z 0-9 . _ + -, not only dots: what isCommandName accepts. */
const COMMAND_PATTERN = String.raw`^(?:[A-Za-z0-9_+-][A-Za-z0-9._+-]*|\.+[A-Za-z0-9_+-][A-Za-z0-9._+-]*)$`;

/** A line of text: no control characters, not blank. */
const SINGLE_LINE_EXCLUDED = String.raw`\u0000-\u001f\u007f`;
const SINGLE_LINE_PATTERN = `^[^${SINGLE_LINE_EXCLUDED}]*[^${SINGLE_LINE_EXCLUDED}${TRIMMED_CHARACTERS}][^${SINGLE_LINE_EXCLUDED}]*$`;
/** Text that may span lines: no control characters but tab and newline, not blank. */
const TEXT_EXCLUDED = String.raw`\u0000-\u0008\u000b-\u001f\u007f`;
const TEXT_PATTERN = `^[^${TEXT_EXCLUDED}]*[^${TEXT_EXCLUDED}${TRIMMED_CHARACTERS}][^${TEXT_EXCLUDED}]*$`;

/** Semantic Versioning 2.0.0, numbers of at most 15 digits (always safe integers), as semver.ts reads it. */
const VERSION_NUMBER = '(?:0|[1-9][0-9]{0,14})';
const PRERELEASE_ID = '(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)';
const BUILD_ID = '[0-9a-zA-Z-]+';
const VERSION_PATTERN = String.raw`^${VERSION_NUMBER}\.${VERSION_NUMBER}\.${VERSION_NUMBER}(?:-${PRERELEASE_ID}(?:\.${PRERELEASE_ID})*)?(?:\+${BUILD_ID}(?:\.${BUILD_ID})*)?$`;
const VERSION_MAX_LENGTH = 64;

/** A positive number of at most three decimals (so never rounded to zero): `1`, `0.5`, `0.001`. */
const POSITIVE_DECIMAL = String.raw`(?:[0-9]*[1-9][0-9]*(?:\.[0-9]{1,3})?|[0-9]+\.(?:[1-9][0-9]{0,2}|0[1-9][0-9]?|00[1-9]))`;
/** A Kubernetes CPU quantity above zero: `500m`, `1`, `0.25` (unanchored; environments' resources use it too). */
export const CPU_QUANTITY = `(?:[0-9]*[1-9][0-9]*m|${POSITIVE_DECIMAL})`;
/** A Kubernetes memory or storage quantity above zero, with a unit: `512Mi`, `1Gi`, `1.5G` (unanchored). */
export const BYTE_QUANTITY = `${POSITIVE_DECIMAL}(?:Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)`;
const CPU_QUANTITY_PATTERN = `^${CPU_QUANTITY}$`;
const BYTE_QUANTITY_PATTERN = `^${BYTE_QUANTITY}$`;

const isPortNumber = (value: unknown): boolean => Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65535;
const isId = (value: unknown): boolean => Number.isInteger(value) && (value as number) >= 0 && (value as number) <= LIMITS.maxId;
const ID_SCHEMA = { type: 'integer', minimum: 0, maximum: LIMITS.maxId } as const;
const PORT_SCHEMA = { type: 'integer', minimum: 1, maximum: 65535 } as const;
const URL_SCHEMA = { type: String, maxLength: LIMITS.url, pattern: HTTP_URL_PATTERN, nullable: true } as const;
const isHttpUrl = matching(`^(?:${HTTP_URL_PATTERN})$`, LIMITS.url);

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

const isStep = matching(TEXT_PATTERN, LIMITS.step);
const STEP_LIST = stringList({
  code: 'steps',
  max: LIMITS.steps,
  item: isStep,
  describe: `non-empty shell steps of at most ${LIMITS.step} characters`,
  distinct: false,
});

export class TemplateStartupDto {
  @Field(
    {
      ...listSchema(LIMITS.steps, { maxLength: LIMITS.step, pattern: TEXT_PATTERN }, false),
      example: ['apt-get update && apt-get install -y --no-install-recommends tmux git'],
      description: 'Run as root inside a container only (package installs)',
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

const ENV_VALUE_PATTERN = String.raw`^[^\u0000]*$`;
const environmentProblem = (value: unknown): string | null => {
  if (!isPlainObject(value)) return 'it is not a mapping';
  const entries = Object.entries(value);
  if (entries.length > LIMITS.environmentVariables) return `it has ${entries.length} variables`;
  for (const [name, text] of entries) {
    if (!ENV_NAME_PATTERN.test(name)) return `${quote(name)} is not a variable name`;
    if (typeof text !== 'string') return `the value of ${name} is not a string (quote numbers and booleans in YAML: "1")`;
    if (characterCount(text) > LIMITS.environmentValue || text.includes('\u0000'))
      return `the value of ${name} is longer than ${LIMITS.environmentValue} characters or holds NUL`;
  }
  return null;
};

/** The definition of a template: the YAML file's content, and the body of `POST /templates`. */
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
      example: 'python:3.12-bookworm',
      description: 'Container image (Kubernetes runtime)',
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
      example: false,
      description: 'True when the image can run as the non-root user (Kubernetes runAsNonRoot); then user.uid must not be 0',
    },
    { code: 'isBoolean', test: (v) => typeof v === 'boolean', must: 'must be true or false' },
  )
  run_as_non_root!: boolean;
}

/** `PUT /templates/{id or name}`: the fields to change (nested mappings are replaced whole); the result is validated like a file. */
export class UpdateTemplateDto extends PartialType(TemplateDefinitionDto) {}

const emptyToUndefined = ({ value }: { value: unknown }): unknown => (value === '' ? undefined : value);
const toBoolean = ({ value }: { value: unknown }): unknown => (value === 'true' ? true : value === 'false' ? false : value);

export class TemplateLookupQueryDto {
  @ApiPropertyOptional({ type: Boolean, description: 'Admins only: include soft-deleted templates' })
  @Transform(toBoolean)
  @IsOptional()
  @Rule({ code: 'isBoolean', test: (v) => typeof v === 'boolean', must: 'must be true or false' })
  include_deleted?: boolean;
}

export class TemplateListQueryDto extends TemplateLookupQueryDto {
  @ApiPropertyOptional({ type: String, enum: [...TEMPLATE_CATEGORIES, ''], description: 'Only this category; empty: every category' })
  @Transform(emptyToUndefined)
  @IsOptional()
  @Rule({
    code: 'category',
    test: (v) => (TEMPLATE_CATEGORIES as readonly unknown[]).includes(v),
    must: `must be one of ${TEMPLATE_CATEGORIES.join(', ')}`,
  })
  category?: TemplateCategory;

  @ApiPropertyOptional({ type: String, enum: [...TEMPLATE_STATUSES, ''], description: 'Only this status; empty: every status' })
  @Transform(emptyToUndefined)
  @IsOptional()
  @Rule({
    code: 'status',
    test: (v) => (TEMPLATE_STATUSES as readonly unknown[]).includes(v),
    must: `must be one of ${TEMPLATE_STATUSES.join(', ')}`,
  })
  status?: TemplateStatus;
}

class TemplateResourcesResponseDto {
  @ApiProperty({ example: '500m' }) cpu!: string;
  @ApiProperty({ example: '1Gi' }) memory!: string;
  @ApiProperty({ example: '5Gi' }) storage!: string;
}

class TemplateUserResponseDto {
  @ApiProperty({ example: 'devpocket' }) name!: string;
  @ApiProperty({ example: 1000 }) uid!: number;
  @ApiProperty({ example: 1000 }) gid!: number;
  @ApiProperty({ example: '/home/devpocket' }) home!: string;
}

class TemplatePortResponseDto {
  @ApiProperty({ example: 'http' }) name!: string;
  @ApiProperty({ example: 8000 }) port!: number;
  @ApiProperty({ enum: ['TCP', 'UDP'] }) protocol!: 'TCP' | 'UDP';
}

class TemplateStartupResponseDto {
  @ApiProperty({ type: [String] }) system!: string[];
  @ApiProperty({ type: [String] }) user!: string[];
}

/** The Template of the mobile client contract, plus what runtimes and admins need. */
export class TemplateResponseDto {
  @ApiProperty({ example: '6651f0c2a4b1c2d3e4f5a6b7' }) id!: string;
  @ApiProperty({ example: 'python' }) name!: string;
  @ApiProperty({ example: 'Python 3.12' }) display_name!: string;
  @ApiProperty() description!: string;
  @ApiProperty({ enum: TEMPLATE_CATEGORIES }) category!: TemplateCategory;
  @ApiProperty({ type: [String] }) tags!: string[];
  @ApiProperty({ example: 'python:3.12-bookworm', description: 'The container image' }) docker_image!: string;
  @ApiProperty({ type: TemplateResourcesResponseDto }) default_resources!: TemplateResourcesResponseDto;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' } }) environment_variables!: Record<string, string>;
  @ApiProperty({ type: [String], description: 'Every startup step, system ones first' }) startup_commands!: string[];
  @ApiProperty({ enum: TEMPLATE_STATUSES }) status!: TemplateStatus;
  @ApiProperty({ example: '1.0.0' }) version!: string;
  @ApiProperty({ example: '2026-11-27T10:00:00.000Z' }) created_at!: string;
  @ApiProperty({ example: '2026-11-27T10:00:00.000Z' }) updated_at!: string;
  @ApiProperty({ example: 0, description: 'Environments created from this template' }) usage_count!: number;
  @ApiPropertyOptional({ nullable: true, type: Number, example: 8000 }) default_port!: number | null;
  @ApiPropertyOptional({ nullable: true, type: String }) documentation_url!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) icon_url!: string | null;

  @ApiProperty({ type: TemplateUserResponseDto }) user!: TemplateUserResponseDto;
  @ApiProperty({ example: '/bin/bash' }) shell!: string;
  @ApiProperty({ example: 'workspace', description: "Relative to the home directory; '' is the home directory" })
  working_directory!: string;
  @ApiProperty({ type: [TemplatePortResponseDto] }) ports!: TemplatePortResponseDto[];
  @ApiProperty({ type: TemplateStartupResponseDto }) startup!: TemplateStartupResponseDto;
  @ApiProperty({ type: [String] }) required_commands!: string[];
  @ApiProperty() run_as_non_root!: boolean;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: 'Set when an admin (or a prune) soft-deleted it; only admins see those',
  })
  deleted_at!: string | null;
}

export function toTemplateResponse(template: Template): TemplateResponseDto {
  return {
    id: template.id,
    name: template.name,
    display_name: template.displayName,
    description: template.description,
    category: template.category,
    tags: [...template.tags],
    docker_image: template.image,
    default_resources: { ...template.defaultResources },
    environment_variables: { ...template.environmentVariables },
    startup_commands: startupCommands(template),
    status: template.status,
    version: template.version,
    created_at: template.createdAt.toISOString(),
    updated_at: template.updatedAt.toISOString(),
    usage_count: template.usageCount,
    default_port: template.defaultPort,
    documentation_url: template.documentationUrl,
    icon_url: template.iconUrl,
    user: { ...template.user },
    shell: template.shell,
    working_directory: template.workingDirectory,
    ports: template.ports.map((p: TemplatePort) => ({ ...p })),
    startup: { system: [...template.startup.system], user: [...template.startup.user] },
    required_commands: [...template.requiredCommands],
    run_as_non_root: template.runAsNonRoot,
    deleted_at: template.deletedAt ? template.deletedAt.toISOString() : null,
  };
}
