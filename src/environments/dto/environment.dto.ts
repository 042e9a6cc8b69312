import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import {
  IsInt,
  IsISO8601,
  IsObject,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  Min,
  registerDecorator,
  ValidateNested,
  ValidationArguments,
} from 'class-validator';
import { PHASES, STATUSES, type Phase, type Status } from '../environment.js';
import { BYTES_PATTERN as BYTE_QUANTITY, CPU_PATTERN as CPU_QUANTITY } from '../../templates/template-rules.js';

const toQuantity = ({ value }: { value: unknown }): unknown =>
  typeof value === 'number' && Number.isFinite(value) ? String(value) : typeof value === 'string' ? value.trim() : value;
const toInt = ({ value }: { value: unknown }): unknown => (typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value);

export const ENV_VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const MAX_ENV_VARS = 64;
export const MAX_ENV_VALUE_BYTES = 4096;
/** Names the runtime sets itself; a user may not override them. */
export const RESERVED_ENV_VARS = new Set(['HOME', 'USER', 'LOGNAME', 'SHELL', 'PATH', 'TERM', 'TMUX', 'TMUX_TMPDIR', 'PWD', 'LANG']);

/** Why an environment_variables object is unacceptable, or null. */
export function environmentVariablesProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'must be an object of string values';
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > MAX_ENV_VARS) return `may hold at most ${MAX_ENV_VARS} variables`;
  for (const [name, v] of entries) {
    if (!ENV_VAR_NAME.test(name))
      return `has an invalid name ${JSON.stringify(name.slice(0, 64))}: use letters, digits and _ and do not start with a digit`;
    if (RESERVED_ENV_VARS.has(name) || name.startsWith('DEVPOCKET_')) return `may not set ${name}: the runtime sets it`;
    if (typeof v !== 'string') return `value of ${name} must be a string`;
    if (Buffer.byteLength(v) > MAX_ENV_VALUE_BYTES) return `value of ${name} is longer than ${MAX_ENV_VALUE_BYTES} bytes`;
    if (v.includes('\0')) return `value of ${name} contains a NUL character`;
  }
  return null;
}

function IsEnvironmentVariables(): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'isEnvironmentVariables',
      target: target.constructor,
      propertyName: String(propertyName),
      validator: {
        validate: (value: unknown) => value === null || value === undefined || environmentVariablesProblem(value) === null,
        defaultMessage: (args?: ValidationArguments) =>
          `${args?.property ?? 'environment_variables'} ${environmentVariablesProblem(args?.value) ?? 'is invalid'}`,
      },
    });
}

export class ResourcesDto {
  @ApiPropertyOptional({ example: '500m', nullable: true, description: 'CPU cores ("1", "0.5") or millicores ("500m")' })
  @IsOptional()
  @Transform(toQuantity)
  @IsString()
  @Matches(CPU_QUANTITY, { message: '$property must be a CPU quantity like 500m or 1' })
  cpu?: string | null;

  @ApiPropertyOptional({ example: '1Gi', nullable: true })
  @IsOptional()
  @Transform(toQuantity)
  @IsString()
  @Matches(BYTE_QUANTITY, { message: '$property must be a quantity like 512Mi or 1Gi' })
  memory?: string | null;

  @ApiPropertyOptional({ example: '5Gi', nullable: true })
  @IsOptional()
  @Transform(toQuantity)
  @IsString()
  @Matches(BYTE_QUANTITY, { message: '$property must be a quantity like 5Gi' })
  storage?: string | null;
}

/** Both generations of the mobile client's field names are accepted; explicit nulls mean "not given". */
export class CreateEnvironmentDto {
  @ApiProperty({ example: 'My Awesome Project', description: '1-64 printable characters; a display name' })
  @IsString()
  @Matches(/^[^\p{C}]{1,64}$/u, { message: 'name must be 1-64 printable characters' })
  @Matches(/\S/, { message: 'name must not be blank' })
  name!: string;

  @ApiPropertyOptional({ example: 'python', nullable: true, description: "The template's name (current clients)" })
  @IsOptional()
  @IsString()
  @Length(1, 64)
  template?: string | null;

  @ApiPropertyOptional({ nullable: true, description: 'The template (older clients); its name or id' })
  @IsOptional()
  @IsString()
  @Length(1, 64)
  template_id?: string | null;

  @ApiPropertyOptional({ type: ResourcesDto, nullable: true })
  @IsOptional()
  @ValidateNested()
  @Type(() => ResourcesDto)
  resources?: ResourcesDto | null;

  @ApiPropertyOptional({ type: ResourcesDto, nullable: true, description: 'Older clients’ name for resources' })
  @IsOptional()
  @ValidateNested()
  @Type(() => ResourcesDto)
  resource_limits?: ResourcesDto | null;

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' }, nullable: true, example: { DEBUG: '1' } })
  @IsOptional()
  @IsObject()
  @IsEnvironmentVariables()
  environment_variables?: Record<string, string> | null;
}

export class UpdateEnvironmentDto {
  @ApiPropertyOptional({ example: 'Renamed project' })
  @IsOptional()
  @IsString()
  @Matches(/^[^\p{C}]{1,64}$/u, { message: 'name must be 1-64 printable characters' })
  @Matches(/\S/, { message: 'name must not be blank' })
  name?: string | null;

  @ApiPropertyOptional({ type: ResourcesDto, nullable: true, description: 'Applied at the next start' })
  @IsOptional()
  @ValidateNested()
  @Type(() => ResourcesDto)
  resources?: ResourcesDto | null;

  @ApiPropertyOptional({ type: ResourcesDto, nullable: true })
  @IsOptional()
  @ValidateNested()
  @Type(() => ResourcesDto)
  resource_limits?: ResourcesDto | null;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'string' },
    nullable: true,
    description: 'Replaces the variables; applied at the next start',
  })
  @IsOptional()
  @IsObject()
  @IsEnvironmentVariables()
  environment_variables?: Record<string, string> | null;
}

export class LogsQueryDto {
  @ApiPropertyOptional({ default: 100, minimum: 1, maximum: 5000 })
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(5000)
  lines?: number;

  @ApiPropertyOptional({ example: '2026-11-27T10:00:00Z', description: 'Only lines written at or after this time' })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'since must be an ISO 8601 time' })
  since?: string;
}

export class ResourceLimitsResponseDto {
  @ApiProperty({ example: '500m' }) cpu!: string;
  @ApiProperty({ example: '1Gi' }) memory!: string;
  @ApiProperty({ example: '5Gi' }) storage!: string;
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
  @ApiProperty({ description: 'The startup script has finished (successfully or not)' }) installation_completed!: boolean;
  @ApiProperty({ nullable: true, type: Number, description: 'Startup script progress 0-100' }) installation_progress!: number | null;
  @ApiProperty({ type: ResourceLimitsResponseDto }) resource_limits!: ResourceLimitsResponseDto;
  @ApiProperty({ type: ResourceLimitsResponseDto, description: 'Same as resource_limits (older clients)' })
  resources!: ResourceLimitsResponseDto;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' } }) environment_variables!: Record<string, string>;
  @ApiProperty() created_at!: string;
  @ApiProperty() updated_at!: string;
  @ApiProperty({ nullable: true, type: String }) last_accessed!: string | null;
  @ApiProperty({ nullable: true, type: String }) external_url!: string | null;
  @ApiProperty({ nullable: true, type: Number }) web_port!: number | null;
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
