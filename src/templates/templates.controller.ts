import { Body, Controller, Delete, Get, HttpCode, HttpStatus, Param, Post, Put, Query, Req } from '@nestjs/common';
import type { Request } from 'express';
import { AuditAction, AuditService } from '../audit/audit.service.js';
import { requestContext } from '../common/http/request-context.js';
import {
  ApiBearerAuth,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiForbiddenResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
  ApiUnprocessableEntityResponse,
} from '@nestjs/swagger';
import { CurrentPrincipal, Principal } from '../common/http/principal.js';
import { AdminOnly } from '../common/http/route-access.js';
import { MessageResponseDto } from '../common/http/message-response.dto.js';
import { AppError } from '../common/errors/app-error.js';
import { ErrorBodyDto } from '../common/errors/error-body.dto.js';
import { AccountsError } from '../auth/auth.errors.js';
import { TemplateDefinitionDto, UpdateTemplateDto } from './dto/template-definition.dto.js';
import { TemplateListQueryDto, TemplateLookupQueryDto } from './dto/template-query.dto.js';
import { TemplateResponseDto, toTemplateResponse } from './dto/template-response.dto.js';
import { changesFromDto, definitionFromDto } from './template-file.js';
import { Template } from './template.js';
import { TemplatesService } from './templates.service.js';

const ID_OR_NAME = { name: 'idOrName', description: "The template's id or its name (e.g. python)" };

function isAdmin(principal: Principal): boolean {
  return principal.user.role === 'admin';
}

/** Asking for deleted templates is an admin's privilege. */
function includeDeleted(principal: Principal, query: TemplateLookupQueryDto): boolean {
  if (query.include_deleted !== true) return false;
  if (!isAdmin(principal)) throw new AppError(AccountsError.AdminRequired, 'include_deleted requires the admin role');
  return true;
}

@ApiTags('templates')
@ApiBearerAuth()
@Controller('templates')
export class TemplatesController {
  constructor(
    private readonly templates: TemplatesService,
    private readonly audit: AuditService,
  ) {}

  @Get()
  @ApiOperation({
    summary: 'Templates to create environments from (a bare array, by name)',
    description: 'Users see active and beta templates; admins also see deprecated ones, and soft-deleted ones with include_deleted=true.',
  })
  @ApiOkResponse({ type: [TemplateResponseDto] })
  async list(@Query() query: TemplateListQueryDto, @CurrentPrincipal() principal: Principal): Promise<TemplateResponseDto[]> {
    const templates = await this.templates.list(
      { category: query.category, status: query.status, includeDeleted: includeDeleted(principal, query) },
      isAdmin(principal),
    );
    return templates.map(toTemplateResponse);
  }

  @Get(':idOrName')
  @ApiOperation({ summary: 'One template by id or name' })
  @ApiParam(ID_OR_NAME)
  @ApiOkResponse({ type: TemplateResponseDto })
  @ApiNotFoundResponse({ type: ErrorBodyDto, description: 'No such template, or one the caller may not see (deprecated, deleted)' })
  async get(
    @Param('idOrName') idOrName: string,
    @Query() query: TemplateLookupQueryDto,
    @CurrentPrincipal() principal: Principal,
  ): Promise<TemplateResponseDto> {
    return toTemplateResponse(await this.templates.get(idOrName, isAdmin(principal), { includeDeleted: includeDeleted(principal, query) }));
  }

  @Post()
  @AdminOnly()
  @ApiOperation({ summary: 'Admin: create a template (the body is a template file as JSON)' })
  @ApiCreatedResponse({ type: TemplateResponseDto })
  @ApiForbiddenResponse({ type: ErrorBodyDto })
  @ApiConflictResponse({ type: ErrorBodyDto, description: 'A template with this name exists' })
  @ApiUnprocessableEntityResponse({ type: ErrorBodyDto })
  async create(
    @Body() body: TemplateDefinitionDto,
    @CurrentPrincipal() principal: Principal,
    @Req() req: Request,
  ): Promise<TemplateResponseDto> {
    const template = await this.templates.create(definitionFromDto(body));
    await this.auditChange('admin.template_created', template, principal, req);
    return toTemplateResponse(template);
  }

  private auditChange(action: AuditAction, template: Template, principal: Principal, req: Request): Promise<void> {
    return this.audit.record({
      action,
      actorId: principal.user.id,
      actorUsername: principal.user.username,
      targetId: template.id,
      target: template.name,
      ip: requestContext(req).ip,
      details: { version: template.version },
    });
  }

  @Put(':idOrName')
  @AdminOnly()
  @ApiOperation({
    summary: 'Admin: change fields of a template',
    description:
      'Absent fields stay; nested mappings are replaced whole; the result is validated like a file. Nothing is bumped: raise version above the file to keep the change when the files are loaded again.',
  })
  @ApiParam(ID_OR_NAME)
  @ApiOkResponse({ type: TemplateResponseDto })
  @ApiForbiddenResponse({ type: ErrorBodyDto })
  @ApiNotFoundResponse({ type: ErrorBodyDto })
  @ApiUnprocessableEntityResponse({ type: ErrorBodyDto })
  async update(
    @Param('idOrName') idOrName: string,
    @Body() body: UpdateTemplateDto,
    @CurrentPrincipal() principal: Principal,
    @Req() req: Request,
  ): Promise<TemplateResponseDto> {
    const template = await this.templates.update(idOrName, changesFromDto(body));
    await this.auditChange('admin.template_updated', template, principal, req);
    return toTemplateResponse(template);
  }

  @Delete(':idOrName')
  @AdminOnly()
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Admin: soft-delete a template (hidden everywhere; existing environments keep working)' })
  @ApiParam(ID_OR_NAME)
  @ApiOkResponse({ type: MessageResponseDto })
  @ApiForbiddenResponse({ type: ErrorBodyDto })
  @ApiNotFoundResponse({ type: ErrorBodyDto })
  async remove(
    @Param('idOrName') idOrName: string,
    @CurrentPrincipal() principal: Principal,
    @Req() req: Request,
  ): Promise<MessageResponseDto> {
    const deleted = await this.templates.remove(idOrName);
    await this.auditChange('admin.template_deleted', deleted, principal, req);
    return { message: `Template ${deleted.name} deleted` };
  }
}
