import { Controller, Get, Inject } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import { Public } from '../http/route-access.js';
import { HealthCheck, HealthCheckResult, HealthCheckService, MongooseHealthIndicator } from '@nestjs/terminus';
import { databaseConfig } from '../../config/namespaces/database.config.js';
import { AppError } from '../errors/app-error.js';
import { ErrorBodyDto } from '../errors/error-body.dto.js';
import { CommonError } from '../errors/error-code.js';
import { RuntimeHealthIndicator } from './runtime-health.js';
import { SharedStateHealthIndicator } from './shared-state-health.js';

class LivenessDto {
  status!: 'ok';
}

/**
 * Health endpoints, outside the API prefix. `/health` is what the mobile client probes (only 200
 * counts as up); `/health/live` is for process supervisors; `/health/ready` checks dependencies:
 * MongoDB, the runtime (runtime-health.ts: cached, with hysteresis), and Redis when REDIS_URL is
 * set (shared-state-health.ts, judged the same way).
 */
@Public()
@ApiTags('health')
@SkipThrottle()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly mongoose: MongooseHealthIndicator,
    private readonly runtime: RuntimeHealthIndicator,
    private readonly sharedState: SharedStateHealthIndicator,
    @Inject(databaseConfig.KEY) private readonly database: ConfigType<typeof databaseConfig>,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Connectivity probe for clients: 200 while the process serves requests' })
  @ApiOkResponse({ type: LivenessDto })
  probe(): LivenessDto {
    return { status: 'ok' };
  }

  @Get('live')
  @ApiOperation({ summary: 'Liveness: 200 while the process serves requests' })
  @ApiOkResponse({ type: LivenessDto })
  live(): LivenessDto {
    return { status: 'ok' };
  }

  @Get('ready')
  @HealthCheck({ swaggerDocumentation: false })
  @ApiOperation({ summary: 'Readiness: 200 when every dependency answers, 503 otherwise' })
  @ApiOkResponse({ description: 'Every dependency answered' })
  @ApiServiceUnavailableResponse({ type: ErrorBodyDto, description: 'A dependency is down; `detail` names it' })
  async ready(): Promise<HealthCheckResult> {
    try {
      return await this.health.check([
        () => this.mongoose.pingCheck('mongodb', { timeout: Math.min(this.database.timeoutMs, 3_000) }),
        () => this.runtime.check('runtime'),
        ...(this.sharedState.enabled ? [() => this.sharedState.check('redis')] : []),
      ]);
    } catch (error) {
      const result = (error as { response?: HealthCheckResult }).response;
      const failing = Object.entries(result?.error ?? {}).map(([name, info]) => {
        const message = typeof info?.message === 'string' ? `: ${info.message}` : '';
        return `${name} is down${message}`;
      });
      throw new AppError(CommonError.NotReady, `Not ready: ${failing.join('; ') || 'a dependency is down'}`, {
        extra: { checks: result?.details ?? {} },
        cause: error,
      });
    }
  }
}
