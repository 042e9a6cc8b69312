import { randomBytes } from 'node:crypto';
import type { V1ObjectMeta, V1StatefulSet } from '@kubernetes/client-node';
import { LABEL_ENVIRONMENT_ID, MANAGED_SELECTOR } from './manifests.js';

/**
 * Which installation of DevPocket an object belongs to (src/settings/installation.ts): a label on
 * every object the runtime creates, the pods included (through the StatefulSet's pod template).
 * Not to be confused with the StatefulSet's *annotation* of the same name (ANNOTATION_INSTALLATION
 * in manifests.ts: the startup script's progress).
 */
export const LABEL_INSTALLATION = 'devpocket.io/installation';

/**
 * The installation of a runtime built by hand without one (tests, benchmarks): one per process, so
 * that such runtimes in different processes (test files run in parallel on one cluster) never list,
 * watch or clean up each other's objects. Servers always pass theirs.
 */
export const DEFAULT_INSTALLATION_ID = `process-${randomBytes(4).toString('hex')}`;

/** DevPocket's objects that carry no installation label: made before installations were told apart. */
export const UNMARKED_SELECTOR = `${MANAGED_SELECTOR},!${LABEL_INSTALLATION}`;

/**
 * One installation's claim on the objects it creates: the label it puts on them, and the label
 * selectors with which it lists and watches only its own (never another installation's on the same
 * cluster, or namespace).
 */
export class Ownership {
  constructor(readonly installationId: string) {}

  /** Selects this installation's objects. */
  get selector(): string {
    return `${MANAGED_SELECTOR},${LABEL_INSTALLATION}=${this.installationId}`;
  }

  /** Selects this installation's objects of one environment. */
  environmentSelector(id: string): string {
    return `${LABEL_ENVIRONMENT_ID}=${id},${LABEL_INSTALLATION}=${this.installationId}`;
  }

  get labels(): Record<string, string> {
    return { [LABEL_INSTALLATION]: this.installationId };
  }

  /** Whether an object's labels say it is this installation's. */
  owns(metadata: V1ObjectMeta | undefined): boolean {
    return metadata?.labels?.[LABEL_INSTALLATION] === this.installationId;
  }

  /** A copy of `object` labelled as this installation's. */
  label<T extends { metadata?: V1ObjectMeta }>(object: T): T {
    return { ...object, metadata: { ...object.metadata, labels: { ...object.metadata?.labels, ...this.labels } } };
  }

  /** A copy of a StatefulSet labelled as this installation's, its pod template (so its pods) included. */
  labelWorkload(workload: V1StatefulSet): V1StatefulSet {
    const labelled = this.label(workload);
    const spec = workload.spec;
    if (!spec) return labelled;
    return { ...labelled, spec: { ...spec, template: this.label(spec.template) } };
  }
}
