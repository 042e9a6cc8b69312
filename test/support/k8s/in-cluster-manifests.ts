/**
 * deploy/kubernetes/ (and its redis/) as one installation of the in-cluster suite applies it: the
 * files as they are, with the overrides an operator's kustomization would make (kustomize's
 * `namespace`/`nameSuffix`, `images` and patches), done here in code:
 *
 * - every namespace gets a suffix of the run's own (`devpocket` → `devpocket-<id>`,
 *   `devpocket-environments` → `devpocket-<id>-env`), and so do the cluster-scoped objects' names,
 *   so the installation shares nothing with the test cluster's own copy of deploy/kubernetes/ or with
 *   another suite;
 * - the ConfigMap's and the Secret's values are merged with the run's (database, Redis, StorageClass…);
 * - the server's and Redis's images are the ones built here, never pulled;
 * - the server's pods get `extraEnv` and `hostAliases` (how they reach the API server: see the suite),
 *   and a smaller CPU request.
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

import { parseAllDocuments } from 'yaml';

import { repoRoot } from './build.js';
import type { KubeObject } from './kube-rest.js';

export const SERVER_NAMESPACE = 'devpocket';
export const ENVIRONMENTS_NAMESPACE = 'devpocket-environments';
export const SERVER_NAME = 'devpocket-server';
/** Instead of 30-server.yaml's 250m: three pods at the peak of a rollout must fit beside the other suites' pods. */
const SERVER_CPU_REQUEST = '50m';

export interface InstallationOverrides {
  /** Lower-case letters and digits: appended to namespaces and cluster-scoped names. */
  suffix: string;
  serverImage: string;
  redisImage: string;
  config: Record<string, string>;
  secret: Record<string, string>;
  extraEnv: Record<string, string>;
  hostAliases: { ip: string; hostnames: string[] }[];
}

interface Container {
  name: string;
  image: string;
  imagePullPolicy?: string;
  env?: { name: string; value: string }[];
  resources?: { requests?: Record<string, string> };
}
interface PodSpec {
  containers: Container[];
  hostAliases?: { ip: string; hostnames: string[] }[];
}
interface Deployment extends KubeObject {
  spec: { template: { spec: PodSpec } };
}

/** The objects of deploy/kubernetes/*.yaml (in file order) and of deploy/kubernetes/redis/, renamed and overridden. */
export function installationObjects(overrides: InstallationOverrides): {
  namespaces: string[];
  objects: KubeObject[];
  redis: KubeObject[];
} {
  const renames: Record<string, string> = {
    [SERVER_NAMESPACE]: `${SERVER_NAMESPACE}-${overrides.suffix}`,
    [ENVIRONMENTS_NAMESPACE]: `${SERVER_NAMESPACE}-${overrides.suffix}-env`,
  };
  const deploy = path.join(repoRoot(), 'deploy', 'kubernetes');
  const rename = (object: KubeObject): KubeObject => renamed(object, renames, overrides.suffix);
  const objects = manifestsIn(deploy).map(rename);
  const redis = manifestsIn(path.join(deploy, 'redis')).map(rename);
  for (const object of objects) {
    if (object.kind === 'ConfigMap' && object.metadata?.name === SERVER_NAME) {
      object.data = {
        ...(object.data as Record<string, string>),
        ...overrides.config,
        KUBERNETES_NAMESPACE: renames[ENVIRONMENTS_NAMESPACE],
      };
    }
    if (object.kind === 'Secret' && object.metadata?.name === SERVER_NAME) {
      object.stringData = { ...(object.stringData as Record<string, string>), ...overrides.secret };
    }
    if (object.kind === 'Deployment' && object.metadata?.name === SERVER_NAME) {
      const pod = (object as Deployment).spec.template.spec;
      const container = pod.containers[0];
      container.image = overrides.serverImage;
      container.imagePullPolicy = 'Never';
      container.env = [...(container.env ?? []), ...Object.entries(overrides.extraEnv).map(([name, value]) => ({ name, value }))];
      // The test cluster's one real node (2 cores) is shared with the other suites' environments.
      container.resources = { ...container.resources, requests: { ...container.resources?.requests, cpu: SERVER_CPU_REQUEST } };
      pod.hostAliases = overrides.hostAliases;
    }
  }
  for (const object of redis) {
    if (object.kind !== 'Deployment') continue;
    const container = (object as Deployment).spec.template.spec.containers[0];
    container.image = overrides.redisImage;
    container.imagePullPolicy = 'Never';
  }
  return { namespaces: Object.values(renames), objects, redis };
}

function manifestsIn(dir: string): KubeObject[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.yaml'))
    .sort()
    .flatMap((file) => parseAllDocuments(readFileSync(path.join(dir, file), 'utf8')).map((document) => document.toJS() as KubeObject));
}

/** Namespaces renamed wherever they are named (metadata, subjects); cluster-scoped names suffixed, with the roleRefs to them. */
function renamed(object: KubeObject, namespaces: Record<string, string>, suffix: string): KubeObject {
  const copy = structuredClone(object);
  const metadata = copy.metadata ?? {};
  const namespace = metadata.namespace;
  if (copy.kind === 'Namespace' && metadata.name !== undefined) metadata.name = namespaces[metadata.name] ?? metadata.name;
  else if (namespace !== undefined) metadata.namespace = namespaces[namespace] ?? namespace;
  else if (metadata.name !== undefined) metadata.name = `${metadata.name}-${suffix}`;
  const subjects = copy.subjects as { namespace?: string }[] | undefined;
  for (const subject of subjects ?? [])
    if (subject.namespace !== undefined) subject.namespace = namespaces[subject.namespace] ?? subject.namespace;
  const roleRef = copy.roleRef as { kind: string; name: string } | undefined;
  if (roleRef?.kind === 'ClusterRole') roleRef.name = `${roleRef.name}-${suffix}`;
  return copy;
}
