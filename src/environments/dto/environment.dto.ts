import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsOptional } from 'class-validator';
import {
  characterCount,
  compilePattern,
  Integer,
  isPlainObject,
  Nested,
  Rule,
  SchemaExtras,
  Text,
  TRIMMED_CHARACTERS,
  trimmedPattern,
} from '../../common/dto/fields.js';
import { PHASES, QUEUED_ACTIONS, STATUSES, type Phase, type QueuedAction, type Status } from '../environment.js';
import { BYTE_QUANTITY, CPU_QUANTITY } from '../../templates/dto/template-field-rules.js';
import { cpuNumberQuantity, MAX_CPU_NUMBER } from '../../templates/template-rules.js';

export const ENV_VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const MAX_ENV_VARS = 64;
/** Longest value, in characters (code points). */
export const MAX_ENV_VALUE_LENGTH = 4096;
/** Names the runtime sets itself; a user may not override them. */
export const RESERVED_ENV_VARS = new Set(['HOME', 'USER', 'LOGNAME', 'SHELL', 'PATH', 'TERM', 'TMUX', 'TMUX_TMPDIR', 'PWD', 'LANG']);
/** A name a user may set: ENV_VAR_NAME, neither reserved nor starting with DEVPOCKET_ (the schema's patternProperties key). */
const USER_ENV_VAR_NAME = `^(?!(?:${[...RESERVED_ENV_VARS].join('|')})$)(?!DEVPOCKET_)[A-Za-z_][A-Za-z0-9_]*$`;
const ENV_VALUE_PATTERN = String.raw`^[^\u0000]*$`;

/** Why an environment_variables object is unacceptable, or null. */
export function environmentVariablesProblem(value: unknown): string | null {
  if (!isPlainObject(value)) return 'must be an object of string values';
  const entries = Object.entries(value);
  if (entries.length > MAX_ENV_VARS) return `may hold at most ${MAX_ENV_VARS} variables`;
  for (const [name, v] of entries) {
    if (!ENV_VAR_NAME.test(name))
      return `has an invalid name ${JSON.stringify(name.slice(0, 64))}: use letters, digits and _ and do not start with a digit`;
    if (RESERVED_ENV_VARS.has(name) || name.startsWith('DEVPOCKET_')) return `may not set ${name}: the runtime sets it`;
    if (typeof v !== 'string') return `value of ${name} must be a string`;
    if (characterCount(v) > MAX_ENV_VALUE_LENGTH) return `value of ${name} is longer than ${MAX_ENV_VALUE_LENGTH} characters`;
    if (v.includes('\0')) return `value of ${name} contains a NUL character`;
  }
  return null;
}

/** `{NAME: "value"}`: the variables rule and its schema (names as patternProperties, values, count). */
function EnvironmentVariables(description: string): PropertyDecorator {
  return applyDecorators(
    ApiPropertyOptional({
      type: 'object',
      nullable: true,
      description,
      example: { DEBUG: '1' },
      maxProperties: MAX_ENV_VARS,
      patternProperties: { [USER_ENV_VAR_NAME]: { type: 'string', maxLength: MAX_ENV_VALUE_LENGTH, pattern: ENV_VALUE_PATTERN } },
      additionalProperties: false,
    }),
    IsOptional(),
    Rule(
      'isEnvironmentVariables',
      (value) => environmentVariablesProblem(value) === null,
      (value) => environmentVariablesProblem(value) ?? 'is invalid',
    ),
  );
}

/** A CPU quantity string above zero, or a number of cores of at least 0.001 (taken to the millicore). */
function CpuQuantity(): PropertyDecorator {
  const pattern = trimmedPattern(CPU_QUANTITY);
  const compiled = compilePattern(pattern);
  return applyDecorators(
    ApiPropertyOptional({
      nullable: true,
      example: '500m',
      description:
        'CPU cores ("1", "0.5", at most 3 decimals) or millicores ("500m"), above zero; a number of cores is taken to the millicore (0.5 is "500m")',
      oneOf: [
        { type: 'string', pattern },
        { type: 'number', minimum: 0.001, maximum: MAX_CPU_NUMBER },
      ],
    }),
    IsOptional(),
    Transform(({ value }: { value: unknown }) => cpuNumberQuantity(value) ?? (typeof value === 'string' ? value.trim() : value)),
    Rule('matches', (value) => typeof value === 'string' && compiled.test(value), 'must be a CPU quantity like 500m or 1'),
  );
}

/** The keys of a resource object; any other key is dropped unread (older clients send e.g. max_instances). */
export const RESOURCE_KEYS = ['cpu', 'memory', 'storage'] as const;

@SchemaExtras({
  additionalProperties: true,
  description: `Requested resources. Keys other than ${RESOURCE_KEYS.join(', ')} (older clients send e.g. max_instances) are accepted and ignored: never stored, never echoed.`,
})
export class ResourcesDto {
  @CpuQuantity()
  cpu?: string | null;

  @Text({
    presence: 'nullable',
    example: '1Gi',
    description: 'A Kubernetes quantity above zero with a unit (at most 3 decimals): 512Mi, 1Gi, 10G (trimmed)',
    trim: true,
    pattern: BYTE_QUANTITY,
    must: 'must be a quantity like 512Mi or 1Gi',
  })
  memory?: string | null;

  @Text({
    presence: 'nullable',
    example: '5Gi',
    description: 'A Kubernetes quantity above zero with a unit (at most 3 decimals): 5Gi, 10G (trimmed)',
    trim: true,
    pattern: BYTE_QUANTITY,
    must: 'must be a quantity like 5Gi',
  })
  storage?: string | null;
}

/** `resources` or `resource_limits`: validated by ResourcesDto, unknown keys dropped. */
function Resources(description: string): PropertyDecorator {
  return Nested(ResourcesDto, { presence: 'nullable', description, ignoreUnknownKeys: RESOURCE_KEYS, must: 'must be an object' });
}

/** A display name: 1-64 characters, not blank, without control, line-separator or bidirectional-text characters. */
const DISPLAY_NAME_EXCLUDED = String.raw`\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028-\u202e\u2066-\u2069`;
function DisplayName(presence: 'required' | 'nullable', example: string): PropertyDecorator {
  return Text({
    presence,
    example,
    description:
      '1-64 characters, not blank, without control characters, line separators or bidirectional-text controls; a display name (stored trimmed)',
    maxLength: 64,
    pattern: `^[^${DISPLAY_NAME_EXCLUDED}]*[^${DISPLAY_NAME_EXCLUDED}${TRIMMED_CHARACTERS}][^${DISPLAY_NAME_EXCLUDED}]*$`,
    must: 'must be 1-64 characters, not blank, without control characters',
  });
}

function TemplateReference(description: string, example?: string): PropertyDecorator {
  return Text({ presence: 'nullable', description, maxLength: 64, ...(example ? { example } : {}) });
}

/**
 * Both generations of the mobile client's field names are accepted; explicit nulls mean "not
 * given". One of template and template_id is required (the schema says so with anyOf).
 */
@SchemaExtras({
  anyOf: [
    { required: ['template'], properties: { template: { type: 'string' } } },
    { required: ['template_id'], properties: { template_id: { type: 'string' } } },
  ],
})
export class CreateEnvironmentDto {
  @DisplayName('required', 'My Awesome Project')
  name!: string;

  @TemplateReference("The template's name (current clients); one of template and template_id is required", 'python')
  template?: string | null;

  @TemplateReference('The template (older clients): its name or id')
  template_id?: string | null;

  @Resources('Requested resources (current clients)')
  resources?: ResourcesDto | null;

  @Resources('Older clients’ name for resources; resources wins when both are given')
  resource_limits?: ResourcesDto | null;

  @EnvironmentVariables('{NAME: "value"}; names of letters, digits and _ (not reserved); values of at most 4096 characters')
  environment_variables?: Record<string, string> | null;
}

/** Most ports an owner may add for previews. */
export const MAX_PREVIEW_PORTS = 10;

function previewPortsProblem(value: unknown): string | null {
  if (!Array.isArray(value)) return 'must be a list of port numbers';
  const list = value as unknown[];
  if (list.length > MAX_PREVIEW_PORTS) return `may hold at most ${MAX_PREVIEW_PORTS} ports`;
  const bad = list.find((port) => typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535);
  if (bad !== undefined) return `has ${JSON.stringify(bad)}: each must be a whole number 1-65535`;
  const repeated = list.find((port, index) => list.indexOf(port) !== index);
  if (repeated !== undefined) return `repeats ${JSON.stringify(repeated)}`;
  return null;
}

/** `ports`: the TCP ports a browser may preview besides the template's (docs/previews.md). */
function PreviewPorts(): PropertyDecorator {
  return applyDecorators(
    ApiPropertyOptional({
      type: 'array',
      nullable: true,
      items: { type: 'integer', minimum: 1, maximum: 65_535 },
      maxItems: MAX_PREVIEW_PORTS,
      uniqueItems: true,
      example: [5173],
      description:
        "Replaces the ports added for web previews (besides the template's own): TCP ports the environment serves, at most 10, each once; [] removes them all",
    }),
    IsOptional(),
    Rule(
      'isPreviewPorts',
      (value) => previewPortsProblem(value) === null,
      (value) => previewPortsProblem(value) ?? 'is invalid',
    ),
  );
}

export class UpdateEnvironmentDto {
  @DisplayName('nullable', 'Renamed project')
  name?: string | null;

  @Resources('Merged key by key with the current values; applied at the next start')
  resources?: ResourcesDto | null;

  @Resources('Older clients’ name for resources')
  resource_limits?: ResourcesDto | null;

  @EnvironmentVariables('Replaces the variables; applied at the next start')
  environment_variables?: Record<string, string> | null;

  @PreviewPorts()
  ports?: number[] | null;
}

const DATE =
  '[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))' +
  '|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29';
const TIME = String.raw`(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]+)?)?`;
const OFFSET = '(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])';
/** ISO 8601: a calendar date, optionally with a time (hh:mm[:ss[.fraction]]) and an offset; no offset is the server's local time. */
export const TIME_PATTERN = `^(?:${DATE})(?:T${TIME}${OFFSET}?)?$`;

export class LogsQueryDto {
  @Integer({ presence: 'optional', query: true, minimum: 1, maximum: 5000, default: 100 })
  lines?: number;

  @Text({
    presence: 'optional',
    example: '2026-11-27T10:00:00Z',
    description:
      'Only lines written at or after this time: an ISO 8601 date or date-time (2026-11-27, 2026-11-27T10:00:00Z, 2026-11-27T11:00:00.5+01:00)',
    pattern: TIME_PATTERN,
    must: 'must be an ISO 8601 time',
  })
  since?: string;
}

export class ResourceLimitsResponseDto {
  @ApiProperty({ example: '500m' }) cpu!: string;
  @ApiProperty({ example: '1Gi' }) memory!: string;
  @ApiProperty({ example: '5Gi' }) storage!: string;
}

export class PreviewResponseDto {
  @ApiProperty({ example: 8000 }) port!: number;
  @ApiProperty({
    nullable: true,
    type: String,
    example: 'http',
    description: "The template's name for the port; null for one added with PUT",
  })
  name!: string | null;
  @ApiProperty({
    example: 'https://8000-6650a1b2c3d4e5f6a7b8c9d0.preview.example.com/',
    description: 'The clean address; the first request needs ?devpocket_token=<access token> (or the preview cookie)',
  })
  url!: string;
  @ApiProperty({
    description: "url with a short-lived signed grant (minutes) of the caller's: opens it in a browser without its cookie yet",
  })
  open_url!: string;
}

export class EnvironmentResponseDto {
  @ApiProperty() id!: string;
  @ApiProperty({ example: 'My Awesome Project' }) name!: string;
  @ApiProperty({ example: 'my-awesome-project', description: 'DNS-1123 label derived from the name' }) slug!: string;
  @ApiProperty({ description: "The template's id" }) template_id!: string;
  @ApiProperty({ example: 'python', description: "The template's name (older clients read this)" }) template!: string;
  @ApiProperty({ enum: STATUSES, description: 'Exactly one of the five values the mobile client knows' }) status!: Status;
  @ApiProperty({ enum: PHASES, description: 'The finer lifecycle state' }) phase!: Phase;
  @ApiProperty({ nullable: true, type: String, description: 'Why the environment is in error, or a notice' }) status_message!:
    string | null;
  @ApiProperty({
    enum: [...QUEUED_ACTIONS, null],
    nullable: true,
    type: String,
    description: 'A start asked for while stopping (or a stop while coming up): it runs once the operation in flight has finished',
  })
  queued_action!: QueuedAction | null;
  @ApiProperty({ description: 'The startup script has finished (successfully or not)' }) installation_completed!: boolean;
  @ApiProperty({ nullable: true, type: Number, description: 'Startup script progress 0-100' }) installation_progress!: number | null;
  @ApiProperty({ type: ResourceLimitsResponseDto }) resource_limits!: ResourceLimitsResponseDto;
  @ApiProperty({ type: ResourceLimitsResponseDto, description: 'Same as resource_limits (older clients)' })
  resources!: ResourceLimitsResponseDto;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' } }) environment_variables!: Record<string, string>;
  @ApiProperty() created_at!: string;
  @ApiProperty() updated_at!: string;
  @ApiProperty({ nullable: true, type: String }) last_accessed!: string | null;
  @ApiProperty({
    nullable: true,
    type: String,
    description:
      "The first declared port's web preview with a short-lived signed grant (minutes): opened without any token, it sets the preview's cookie and redirects to the clean address (docs/previews.md); null without ports",
  })
  external_url!: string | null;
  @ApiProperty({ nullable: true, type: Number, description: 'The port external_url previews' }) web_port!: number | null;
  @ApiPropertyOptional({
    type: [PreviewResponseDto],
    description: "Every declared port's preview (the template's, then those added with PUT)",
  })
  previews?: PreviewResponseDto[];
  @ApiProperty({ nullable: true, type: Number }) ssh_port!: number | null;
}

export class LogsResponseDto {
  @ApiProperty({ type: [String] }) logs!: string[];
  @ApiProperty() total!: number;
  @ApiProperty() has_more!: boolean;
}

export class MetricsResponseDto {
  @ApiProperty({ nullable: true, type: Number, description: 'Percent of the CPU limit in use' }) cpu_usage!: number | null;
  @ApiProperty({ nullable: true, type: Number, description: 'Percent of the memory limit in use' }) memory_usage!: number | null;
  @ApiProperty({ nullable: true, type: Number, description: 'Percent of the storage size in use' }) disk_usage!: number | null;
  @ApiProperty({ nullable: true, type: Number, description: 'Bytes received' }) network_in!: number | null;
  @ApiProperty({ nullable: true, type: Number, description: 'Bytes sent' }) network_out!: number | null;
  @ApiProperty() timestamp!: string;
  @ApiProperty({ nullable: true, type: Number }) cpu_cores!: number | null;
  @ApiProperty({ nullable: true, type: Number }) memory_bytes!: number | null;
  @ApiProperty({ nullable: true, type: Number }) disk_bytes!: number | null;
}
