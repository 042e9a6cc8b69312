import type { PodSecurityLevel } from '../../config/environment.schema.js';
import type { Template } from '../../templates/template.js';

/**
 * Pod Security of the environments' namespaces (docs/kubernetes.md, "Pod Security"). The pods the
 * runtime builds for templates that run as their user pass `restricted` (manifests.ts: runAsNonRoot
 * with a non-zero uid, RuntimeDefault seccomp, every capability dropped, no privilege escalation,
 * only ConfigMap, emptyDir and PVC volumes); a root template (`run_as_non_root: false`, the opt-in of
 * templates with an image of their own and `startup.system` steps) needs `baseline`.
 */

/**
 * The Kubernetes version whose definition of the level is enforced: pinned, so that upgrading the
 * cluster never starts refusing environments by itself (the pods are tested against this one);
 * `audit` and `warn` follow `latest`, so a newer definition that would refuse them is seen (audit
 * log, API warnings) before anyone moves the pin.
 */
export const POD_SECURITY_VERSION = 'v1.36';

/** The Pod Security Admission labels of an environments namespace (deploy/kubernetes/00-namespaces.yaml has the same). */
export function podSecurityLabels(level: PodSecurityLevel): Record<string, string> {
  return {
    'pod-security.kubernetes.io/enforce': level,
    'pod-security.kubernetes.io/enforce-version': POD_SECURITY_VERSION,
    'pod-security.kubernetes.io/audit': level,
    'pod-security.kubernetes.io/audit-version': 'latest',
    'pod-security.kubernetes.io/warn': level,
    'pod-security.kubernetes.io/warn-version': 'latest',
  };
}

/** Whether the template's container runs as its user from the start (runAsNonRoot); otherwise it starts as root. */
export function runsAsUser(template: Pick<Template, 'runAsNonRoot' | 'user'>): boolean {
  return template.runAsNonRoot && template.user.uid !== 0;
}

/**
 * Why environments of `template` cannot run under the namespaces' Pod Security `level`, or null when
 * they can: a root template under `restricted`, whose pod the API server would refuse (the
 * StatefulSet would then wait for a pod forever).
 */
export function podSecurityRefusal(template: Pick<Template, 'name' | 'runAsNonRoot' | 'user'>, level: PodSecurityLevel): string | null {
  if (level !== 'restricted' || runsAsUser(template)) return null;
  return (
    `template "${template.name}" runs as root in its container (run_as_non_root: false), which this installation does not allow: ` +
    'its environment namespaces enforce the Pod Security level "restricted" (KUBERNETES_POD_SECURITY_LEVEL)'
  );
}
