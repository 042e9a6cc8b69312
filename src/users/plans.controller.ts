import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { Public } from '../common/http/route-access.js';
import { PLAN_NAMES, PLANS, type PlanName } from './plans.js';

/** Named apart from the environments' ResourcesDto: Swagger keys schemas by class name. */
class PlanResourcesDto {
  @ApiProperty({ example: '500m' }) cpu!: string;
  @ApiProperty({ example: '1Gi' }) memory!: string;
  @ApiProperty({ example: '5Gi' }) storage!: string;
}

class PlanDto {
  @ApiProperty({ enum: PLAN_NAMES }) name!: PlanName;
  @ApiProperty({ example: 'Free' }) display_name!: string;
  @ApiProperty({ type: 'integer', example: 1 }) max_environments!: number;
  @ApiProperty({ type: PlanResourcesDto }) default_resources!: PlanResourcesDto;
  @ApiProperty({ type: PlanResourcesDto }) max_resources!: PlanResourcesDto;
  @ApiProperty({ type: 'integer', example: 30 }) idle_timeout_minutes!: number;
}

@ApiTags('plans')
@Controller('plans')
export class PlansController {
  @Public()
  @Get()
  @ApiOperation({ summary: 'Every subscription plan with its quotas' })
  @ApiOkResponse({ type: [PlanDto] })
  list(): PlanDto[] {
    return PLAN_NAMES.map((name) => {
      const plan = PLANS[name];
      return {
        name,
        display_name: plan.displayName,
        max_environments: plan.maxEnvironments,
        default_resources: { ...plan.defaultResources },
        max_resources: { ...plan.maxResources },
        idle_timeout_minutes: plan.idleTimeoutMinutes,
      };
    });
  }
}
