import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { EnvironmentsModule } from '../environments/environments.module.js';
import { ClusterTerminals } from './cluster/cluster-terminals.js';
import { TerminalGateway } from './terminal.gateway.js';
import { TerminalHub } from './terminal.hub.js';
import { TerminalMetrics } from './terminal-metrics.js';

@Module({
  imports: [AuthModule, EnvironmentsModule],
  providers: [TerminalMetrics, ClusterTerminals, TerminalHub, TerminalGateway],
  exports: [TerminalHub],
})
export class TerminalModule {}
