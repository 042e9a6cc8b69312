import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

import {
  startupCommands,
  Template,
  TEMPLATE_CATEGORIES,
  TEMPLATE_STATUSES,
  type TemplateCategory,
  type TemplatePort,
  type TemplateStatus,
} from '../template.js';

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
  @ApiProperty({ example: 'devpocket/env-python:1', description: 'The container image' }) docker_image!: string;
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
