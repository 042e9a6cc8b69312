import { Body, Controller, Delete, Get, HttpCode, HttpStatus, Put, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { CurrentPrincipal, Principal } from '../common/http/principal.js';
import { MessageResponseDto } from '../common/http/message-response.dto.js';
import { requestContext } from '../common/http/request-context.js';
import { toUserResponse, UpdateProfileDto, UserResponseDto } from './dto/user.dto.js';
import { UsersService } from './users.service.js';

@ApiTags('users')
@ApiBearerAuth()
@Controller('users')
export class UsersController {
  constructor(private readonly users: UsersService) {}

  @Get('me')
  @ApiOperation({ summary: 'The signed-in user' })
  @ApiOkResponse({ type: UserResponseDto })
  me(@CurrentPrincipal() principal: Principal): UserResponseDto {
    return toUserResponse(principal.user);
  }

  @Put('me')
  @ApiOperation({ summary: 'Update full_name, preferred_region, avatar_url (null clears a field)' })
  @ApiOkResponse({ type: UserResponseDto })
  async update(@CurrentPrincipal() principal: Principal, @Body() body: UpdateProfileDto): Promise<UserResponseDto> {
    const user = await this.users.updateProfile(principal.user.id, {
      fullName: body.full_name,
      preferredRegion: body.preferred_region,
      avatarUrl: body.avatar_url,
    });
    return toUserResponse(user);
  }

  @Delete('me')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Delete the account: every session ends, everything it owns is removed' })
  @ApiOkResponse({ type: MessageResponseDto })
  async delete(@CurrentPrincipal() principal: Principal, @Req() req: Request): Promise<MessageResponseDto> {
    await this.users.deleteAccount(principal.user.id, {
      id: principal.user.id,
      username: principal.user.username,
      ip: requestContext(req).ip,
    });
    return { message: 'Account deleted' };
  }
}
