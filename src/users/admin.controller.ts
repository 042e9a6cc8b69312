import { Body, Controller, Get, Param, Patch, Query, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { AuditService } from '../audit/audit.service.js';
import { Text } from '../common/dto/fields.js';
import { CurrentPrincipal, Principal } from '../common/http/principal.js';
import { AdminOnly } from '../common/http/route-access.js';
import { requestContext } from '../common/http/request-context.js';
import {
  AdminUpdateUserDto,
  PaginationQueryDto,
  toUserResponse,
  UserPageDto,
  UserResponseDto,
  UserSearchQueryDto,
} from './dto/user.dto.js';
import { UsersService } from './users.service.js';

class AuditQueryDto extends PaginationQueryDto {
  @Text({ presence: 'optional', example: 'auth.login_failed', trim: true, maxLength: 64 })
  action?: string;

  @Text({ presence: 'optional', maxLength: 64 })
  actor_id?: string;

  @Text({ presence: 'optional', maxLength: 64 })
  target_id?: string;
}

class AuditEventDto {
  @ApiProperty() id!: string;
  @ApiProperty({ example: 'auth.login' }) action!: string;
  @ApiProperty({ nullable: true, type: String }) actor_id!: string | null;
  @ApiProperty({ nullable: true, type: String }) actor_username!: string | null;
  @ApiProperty({ nullable: true, type: String }) target_id!: string | null;
  @ApiProperty({ nullable: true, type: String }) target!: string | null;
  @ApiProperty({ nullable: true, type: String }) ip!: string | null;
  @ApiProperty({ type: Object }) details!: Record<string, unknown>;
  @ApiProperty() at!: string;
}

class AuditPageDto {
  @ApiProperty({ type: [AuditEventDto] }) items!: AuditEventDto[];
  @ApiProperty() total!: number;
  @ApiProperty() page!: number;
  @ApiProperty() page_size!: number;
}

@ApiTags('admin')
@ApiBearerAuth()
@AdminOnly()
@Controller('admin')
export class AdminController {
  constructor(
    private readonly users: UsersService,
    private readonly audit: AuditService,
  ) {}

  @Get('users')
  @ApiOperation({ summary: 'List or search users (newest first)' })
  @ApiOkResponse({ type: UserPageDto })
  async listUsers(@Query() query: UserSearchQueryDto): Promise<UserPageDto> {
    const page = await this.users.search(query.query, query.page ?? 1, query.page_size ?? 20);
    return { items: page.items.map(toUserResponse), total: page.total, page: page.page, page_size: page.pageSize };
  }

  @Get('users/:id')
  @ApiOperation({ summary: 'One user' })
  @ApiOkResponse({ type: UserResponseDto })
  async getUser(@Param('id') id: string): Promise<UserResponseDto> {
    return toUserResponse(await this.users.get(id));
  }

  @Patch('users/:id')
  @ApiOperation({ summary: "Change a user's plan, role or active flag (audited)" })
  @ApiOkResponse({ type: UserResponseDto })
  async updateUser(
    @Param('id') id: string,
    @Body() body: AdminUpdateUserDto,
    @CurrentPrincipal() principal: Principal,
    @Req() req: Request,
  ): Promise<UserResponseDto> {
    const user = await this.users.updateAsAdmin(
      id,
      { plan: body.subscription_plan, role: body.role, isActive: body.is_active },
      { id: principal.user.id, username: principal.user.username, ip: requestContext(req).ip },
    );
    return toUserResponse(user);
  }

  @Get('audit-events')
  @ApiOperation({ summary: 'The audit log, newest first' })
  @ApiOkResponse({ type: AuditPageDto })
  async auditEvents(@Query() query: AuditQueryDto): Promise<AuditPageDto> {
    const page = query.page ?? 1;
    const pageSize = query.page_size ?? 20;
    const result = await this.audit.list({ action: query.action, actorId: query.actor_id, targetId: query.target_id }, page, pageSize);
    return {
      items: result.items.map((e) => ({
        id: e.id,
        action: e.action,
        actor_id: e.actorId,
        actor_username: e.actorUsername,
        target_id: e.targetId,
        target: e.target,
        ip: e.ip,
        details: e.details,
        at: e.at.toISOString(),
      })),
      total: result.total,
      page,
      page_size: pageSize,
    };
  }
}
