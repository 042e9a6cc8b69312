import { Body, Controller, Delete, Get, HttpCode, HttpStatus, Param, Post, Put, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { CurrentPrincipal, Principal } from '../common/http/principal.js';
import { ErrorBodyDto } from '../common/errors/error-body.dto.js';
import {
  CreateEnvironmentDto,
  EnvironmentResponseDto,
  LogsQueryDto,
  LogsResponseDto,
  MetricsResponseDto,
  UpdateEnvironmentDto,
} from './dto/environment.dto.js';
import { CurrentViewer, EnvironmentResponses, Viewer } from './environment-responses.js';
import { EnvironmentsService } from './environments.service.js';

const ERRORS = { type: ErrorBodyDto };

/** Every route checks ownership: another user's environment answers 404, for every verb. */
@ApiTags('environments')
@ApiBearerAuth()
@ApiResponse({ status: 404, ...ERRORS, description: 'No such environment for this user' })
@Controller('environments')
export class EnvironmentsController {
  constructor(
    private readonly environments: EnvironmentsService,
    private readonly responses: EnvironmentResponses,
  ) {}

  @Get()
  @ApiOperation({ summary: "The caller's environments, newest first (a bare array; terminated ones stay until purged)" })
  @ApiOkResponse({ type: [EnvironmentResponseDto] })
  async list(@CurrentPrincipal() principal: Principal, @CurrentViewer() viewer: Viewer): Promise<EnvironmentResponseDto[]> {
    return this.responses.many(viewer, await this.environments.list(principal));
  }

  @Post()
  @ApiOperation({ summary: 'Create an environment from a template; it provisions in the background (status "creating")' })
  @ApiResponse({ status: 201, type: EnvironmentResponseDto })
  @ApiResponse({ status: 403, ...ERRORS, description: "The plan's environment limit is reached (detail names it)" })
  @ApiResponse({ status: 422, ...ERRORS, description: 'Invalid input, unknown template, or resources above the plan (field named)' })
  async create(
    @CurrentPrincipal() principal: Principal,
    @CurrentViewer() viewer: Viewer,
    @Body() body: CreateEnvironmentDto,
  ): Promise<EnvironmentResponseDto> {
    return this.responses.one(viewer, await this.environments.create(principal, body));
  }

  @Get(':id')
  @ApiOkResponse({ type: EnvironmentResponseDto })
  async get(
    @CurrentPrincipal() principal: Principal,
    @CurrentViewer() viewer: Viewer,
    @Param('id') id: string,
  ): Promise<EnvironmentResponseDto> {
    return this.responses.one(viewer, await this.environments.get(principal, id));
  }

  @Put(':id')
  @ApiOperation({ summary: 'Rename, or change variables and resources (applied at the next start)' })
  @ApiOkResponse({ type: EnvironmentResponseDto })
  async update(
    @CurrentPrincipal() principal: Principal,
    @CurrentViewer() viewer: Viewer,
    @Param('id') id: string,
    @Body() body: UpdateEnvironmentDto,
  ): Promise<EnvironmentResponseDto> {
    return this.responses.one(viewer, await this.environments.update(principal, id, body));
  }

  @Delete(':id')
  @ApiOperation({ summary: 'Delete: every runtime resource, storage included, is removed; the record stays as terminated until purged' })
  @ApiOkResponse({ type: EnvironmentResponseDto })
  @ApiResponse({ status: 409, ...ERRORS, description: 'Already terminating or terminated' })
  async delete(
    @CurrentPrincipal() principal: Principal,
    @CurrentViewer() viewer: Viewer,
    @Param('id') id: string,
  ): Promise<EnvironmentResponseDto> {
    return this.responses.one(viewer, await this.environments.delete(principal, id));
  }

  @Post(':id/start')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({ summary: 'Start a stopped (or failed) environment' })
  @ApiResponse({ status: 202, type: EnvironmentResponseDto })
  @ApiResponse({ status: 409, ...ERRORS, description: 'Invalid transition; the body carries status and phase' })
  async start(
    @CurrentPrincipal() principal: Principal,
    @CurrentViewer() viewer: Viewer,
    @Param('id') id: string,
  ): Promise<EnvironmentResponseDto> {
    return this.responses.one(viewer, await this.environments.start(principal, id));
  }

  @Post(':id/stop')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({ summary: 'Stop a running environment (files are kept)' })
  @ApiResponse({ status: 202, type: EnvironmentResponseDto })
  @ApiResponse({ status: 409, ...ERRORS })
  async stop(
    @CurrentPrincipal() principal: Principal,
    @CurrentViewer() viewer: Viewer,
    @Param('id') id: string,
  ): Promise<EnvironmentResponseDto> {
    return this.responses.one(viewer, await this.environments.stop(principal, id));
  }

  @Post(':id/restart')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({ summary: 'Stop then start' })
  @ApiResponse({ status: 202, type: EnvironmentResponseDto })
  @ApiResponse({ status: 409, ...ERRORS })
  async restart(
    @CurrentPrincipal() principal: Principal,
    @CurrentViewer() viewer: Viewer,
    @Param('id') id: string,
  ): Promise<EnvironmentResponseDto> {
    return this.responses.one(viewer, await this.environments.restart(principal, id));
  }

  @Get(':id/logs')
  @ApiOperation({ summary: "The environment's log: startup script output and runtime events (newest last)" })
  @ApiOkResponse({ type: LogsResponseDto })
  async logs(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Query() query: LogsQueryDto): Promise<LogsResponseDto> {
    const page = await this.environments.logs(principal, id, query.lines ?? 100, query.since ? new Date(query.since) : undefined);
    return { logs: page.lines, total: page.total, has_more: page.total > page.lines.length };
  }

  @Get(':id/metrics')
  @ApiOperation({ summary: 'CPU, memory and disk in use (percent of the limits, and raw); null where the runtime cannot tell' })
  @ApiOkResponse({ type: MetricsResponseDto })
  async metrics(@CurrentPrincipal() principal: Principal, @Param('id') id: string): Promise<MetricsResponseDto> {
    const m = await this.environments.metrics(principal, id);
    return {
      cpu_usage: m.cpuPercent,
      memory_usage: m.memoryPercent,
      disk_usage: m.diskPercent,
      network_in: m.networkInBytes,
      network_out: m.networkOutBytes,
      timestamp: m.at.toISOString(),
      cpu_cores: m.cpuCores,
      memory_bytes: m.memoryBytes,
      disk_bytes: m.diskBytes,
    };
  }
}
