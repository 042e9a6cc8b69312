import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { HealthController } from './health.controller.js';
import { ReadinessPolicy, RuntimeHealthIndicator } from './runtime-health.js';
import { SharedStateHealthIndicator } from './shared-state-health.js';

@Module({
  imports: [TerminusModule.forRoot({ logger: false })],
  controllers: [HealthController],
  providers: [{ provide: ReadinessPolicy, useValue: new ReadinessPolicy() }, RuntimeHealthIndicator, SharedStateHealthIndicator],
})
export class HealthModule {}
