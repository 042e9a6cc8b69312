import type { TemplateResources } from '../templates/template.js';

/** The fine-grained lifecycle state. */
export const PHASES = [
  'provisioning',
  'starting',
  'running',
  'stopping',
  'stopped',
  'restarting',
  'terminating',
  'terminated',
  'error',
] as const;
export type Phase = (typeof PHASES)[number];

/** The five values the mobile client understands (anything else crashes it). */
export const STATUSES = ['creating', 'running', 'stopped', 'terminated', 'error'] as const;
export type Status = (typeof STATUSES)[number];

export function statusOf(phase: Phase): Status {
  switch (phase) {
    case 'provisioning':
    case 'starting':
    case 'restarting':
      return 'creating';
    case 'running':
      return 'running';
    case 'stopping':
    case 'stopped':
      return 'stopped';
    case 'terminating':
    case 'terminated':
      return 'terminated';
    case 'error':
      return 'error';
  }
}

/** A runtime operation in flight; its heartbeat lets the reconciler take over after a crash. */
export type OperationKind = 'provision' | 'start' | 'stop' | 'restart' | 'destroy';

export interface Operation {
  id: string;
  kind: OperationKind;
  startedAt: Date;
  heartbeatAt: Date;
}

/**
 * A start or stop asked for while the opposite operation was in flight: it runs as soon as that
 * operation has finished.
 */
export const QUEUED_ACTIONS = ['start', 'stop'] as const;
export type QueuedAction = (typeof QUEUED_ACTIONS)[number];

export interface Installation {
  completed: boolean;
  failed: boolean;
  stepsDone: number;
  stepsTotal: number;
}

export interface Environment {
  id: string;
  userId: string;
  name: string;
  slug: string;
  templateId: string;
  templateName: string;
  resources: TemplateResources;
  environmentVariables: Record<string, string>;
  /** Ports its owner added for web previews (PUT `ports`), besides its template's (docs/previews.md). */
  ports: number[];
  phase: Phase;
  statusMessage: string | null;
  installation: Installation | null;
  operation: Operation | null;
  queuedAction: QueuedAction | null;
  lastAccessed: Date | null;
  startedAt: Date | null;
  terminatedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

/** A DNS-1123 label from a display name: "My Awesome Project" → "my-awesome-project". */
export function slugify(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/g, '');
  return slug || 'env';
}
