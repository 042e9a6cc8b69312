import { Injectable } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import { MetricsService } from '../common/metrics/metrics.service.js';

/** Prometheus metrics of the terminal hub. */
@Injectable()
export class TerminalMetrics {
  readonly sessions: Gauge;
  readonly clients: Gauge;
  readonly bytesIn: Counter;
  readonly bytesOut: Counter;
  readonly resumes: Counter<'result'>;
  readonly redraws: Counter;
  readonly cutovers: Counter;
  readonly upstreamErrors: Counter;
  readonly rejections: Counter<'reason'>;
  readonly owned: Gauge;
  readonly takeovers: Counter;
  readonly resyncs: Counter;
  readonly inputDuplicates: Counter;

  constructor(metrics: MetricsService) {
    const registers = [metrics.registry];
    this.sessions = new Gauge({ name: 'terminal_sessions', help: 'Terminal sessions with an upstream in this process', registers });
    this.clients = new Gauge({ name: 'terminal_clients', help: 'Connected terminal clients', registers });
    this.bytesIn = new Counter({ name: 'terminal_input_bytes_total', help: 'Bytes typed by clients, sent upstream', registers });
    this.bytesOut = new Counter({ name: 'terminal_output_bytes_total', help: 'Output bytes sent to clients (once per client)', registers });
    this.resumes = new Counter({
      name: 'terminal_resumes_total',
      help: 'Resume requests, by result',
      labelNames: ['result'] as const,
      registers,
    });
    this.redraws = new Counter({
      name: 'terminal_redraws_total',
      help: 'Screens redrawn for joining, resetting or lagging clients',
      registers,
    });
    this.cutovers = new Counter({
      name: 'terminal_slow_client_cutovers_total',
      help: 'Clients cut over to a redraw because they fell behind',
      registers,
    });
    this.upstreamErrors = new Counter({
      name: 'terminal_upstream_errors_total',
      help: 'Upstreams that failed to start or ended unexpectedly',
      registers,
    });
    this.owned = new Gauge({
      name: 'terminal_owned_sessions',
      help: 'Environments whose terminal this replica owns (runs the one tmux client of), with REDIS_URL',
      registers,
    });
    this.takeovers = new Counter({
      name: 'terminal_takeovers_total',
      help: 'Terminals this replica took over from an owner that died or left, with REDIS_URL',
      registers,
    });
    this.resyncs = new Counter({
      name: 'terminal_stream_resyncs_total',
      help: 'Sessions redrawn because their shared output stream went on past bytes this replica missed, with REDIS_URL',
      registers,
    });
    this.inputDuplicates = new Counter({
      name: 'terminal_input_duplicates_total',
      help: 'Input frames dropped because their seq was written already (a client resending after a reconnect)',
      registers,
    });
    this.rejections = new Counter({
      name: 'terminal_rejections_total',
      help: 'Connections refused or closed by the server, by reason',
      labelNames: ['reason'] as const,
      registers,
    });
  }
}
