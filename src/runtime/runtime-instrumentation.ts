import { Injectable } from '@nestjs/common';
import { Counter, Histogram } from 'prom-client';
import { AppError } from '../common/errors/app-error.js';
import { MetricsService } from '../common/metrics/metrics.service.js';
import type { KubernetesRequestObserver } from './kubernetes/kubernetes-api.js';

/** How a runtime operation ended: `ok`, `refused` (the runtime's own answer, e.g. 409 not running), or `error`. */
export type OperationOutcome = 'ok' | 'refused' | 'error';

export function outcomeOf(error: unknown): OperationOutcome {
  return error instanceof AppError ? 'refused' : 'error';
}

/**
 * The runtime's Prometheus series, on the application's registry (docs/operations.md#metrics):
 *
 * - `devpocket_runtime_operation_duration_seconds{runtime,operation,outcome}`: how long each port
 *   operation took (for exec and attach: until the session was open), and how it ended;
 * - `kubernetes_api_requests_total{verb,resource,code}`: every request of the Kubernetes runtime to
 *   the API server (registered only with that runtime).
 */
@Injectable()
export class RuntimeInstrumentation {
  readonly operations: Histogram<'runtime' | 'operation' | 'outcome'>;
  private kubernetesRequests: Counter<'verb' | 'resource' | 'code'> | null = null;

  constructor(private readonly metrics: MetricsService) {
    this.operations = new Histogram({
      name: 'devpocket_runtime_operation_duration_seconds',
      help: 'Runtime operations (provision, start, stop, destroy, status, exec, attach, logs, metrics) by runtime and outcome',
      labelNames: ['runtime', 'operation', 'outcome'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: [metrics.registry],
    });
  }

  /** The observer of the Kubernetes runtime's API client (its counter is registered on first use). */
  kubernetesObserver(): KubernetesRequestObserver {
    this.kubernetesRequests ??= new Counter({
      name: 'kubernetes_api_requests_total',
      help: 'Requests of the Kubernetes runtime to the API server, by verb, resource and HTTP status ("error": no answer)',
      labelNames: ['verb', 'resource', 'code'] as const,
      registers: [this.metrics.registry],
    });
    const counter = this.kubernetesRequests;
    return ({ verb, resource, code }) => counter.inc({ verb, resource, code });
  }
}
