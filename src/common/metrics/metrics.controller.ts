import { timingSafeEqual } from 'node:crypto';
import { Controller, Get, Header, Headers, Inject } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { ApiExcludeController } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import { Public } from '../http/route-access.js';
import { observabilityConfig } from '../../config/namespaces/observability.config.js';
import { AppError } from '../errors/app-error.js';
import { CommonError } from '../errors/error-code.js';
import { MetricsService } from './metrics.service.js';

function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** Prometheus scrape endpoint, outside the API prefix. Protected by METRICS_TOKEN when it is set. */
@Public()
@ApiExcludeController()
@SkipThrottle()
@Controller('metrics')
export class MetricsController {
  constructor(
    private readonly metrics: MetricsService,
    @Inject(observabilityConfig.KEY) private readonly config: ConfigType<typeof observabilityConfig>,
  ) {}

  @Get()
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  @Header('Cache-Control', 'no-store')
  async scrape(@Headers('authorization') authorization?: string): Promise<string> {
    const token = this.config.metricsToken;
    if (token !== null && !sameSecret(authorization ?? '', `Bearer ${token}`)) {
      throw new AppError(CommonError.MetricsTokenRequired, 'A valid metrics token is required', {
        headers: { 'WWW-Authenticate': 'Bearer realm="metrics"' },
      });
    }
    return this.metrics.render();
  }
}
