/**
 * The objects the test cluster creates through the API (./testbed.ts): manifests of a directory,
 * kwok's Stages and ours (./stages/), kwok's nodes; and the checks it waits on.
 */
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { parseAllDocuments } from 'yaml';

import { repoRoot, type TestbedBinaries, type TestbedLog } from './build.js';
import { KWOK_NODE_ANNOTATION } from './control-plane-flags.js';
import type { KubeObject, KubeRest } from './kube-rest.js';
import { NODE_KIND_LABEL, nodeKindAnnotations, type NodeKind } from './real-node.js';

export const NODE_ALLOCATABLE = { cpu: '32', memory: '64Gi', pods: '110' } as const;
/** The Stages of kwok's pod/general that ./stages/ replaces. */
const REPLACED_KWOK_STAGES = new Set(['pod-ready', 'pod-delete']);
/** Delay of kwok's pod stages here (upstream: 1 s + up to 5 s jitter); their per-pod annotations still apply. */
const POD_STAGE_DELAY_MS = 100;

async function readManifests(file: string): Promise<KubeObject[]> {
  const text = await fs.readFile(file, 'utf8');
  const objects: KubeObject[] = [];
  for (const document of parseAllDocuments(text)) {
    if (document.errors.length > 0) throw new Error(`${file}: ${document.errors.map((error) => error.message).join('; ')}`);
    const value: unknown = document.toJS();
    if (value !== null && typeof value === 'object') objects.push(value as KubeObject);
  }
  return objects;
}

async function yamlFiles(dir: string): Promise<string[]> {
  const names = (await fs.readdir(dir)).filter((name) => /\.ya?ml$/.test(name) && name !== 'kustomization.yaml').sort();
  return names.map((name) => path.join(dir, name));
}

export async function applyDirectory(admin: KubeRest, dir: string): Promise<void> {
  for (const file of await yamlFiles(dir)) {
    for (const object of await readManifests(file)) await admin.apply(object);
  }
}

/**
 * kwok's node/fast, node/heartbeat-with-lease, volume/fast (with StorageClass kwok-volume) and
 * pod/general Stages, the last with shorter delays and with pod-ready and pod-delete replaced by
 * ./stages/ (Running only once the emulator started the pod; pods it started are deleted by it), plus
 * the failure Stages of ./stages/.
 */
export async function applyStages(admin: KubeRest, binaries: TestbedBinaries): Promise<void> {
  const kwokSets = ['node/fast', 'node/heartbeat-with-lease', 'volume/fast', 'pod/general'] as const;
  for (const set of kwokSets) {
    for (const file of await yamlFiles(binaries.kwokStageDirs[set])) {
      for (const object of await readManifests(file)) {
        if (object.kind === 'Stage' && REPLACED_KWOK_STAGES.has(object.metadata?.name ?? '')) continue;
        if (object.kind === 'Stage' && set === 'pod/general') shortenDelay(object);
        await admin.apply(object);
      }
    }
  }
  const ours = path.join(path.dirname(fileURLToPath(import.meta.url)), 'stages');
  await applyDirectory(admin, ours);
}

function shortenDelay(stage: KubeObject): void {
  const spec = stage.spec as { delay?: Record<string, unknown> } | undefined;
  if (spec?.delay === undefined) return;
  spec.delay.durationMilliseconds = POD_STAGE_DELAY_MS;
  delete spec.delay.jitterDurationMilliseconds;
}

/**
 * Applies every manifest of `dir` in file-name order; returns the namespaces it created. The
 * namespaces of `nodeKinds` get the annotation of their node kind (the test cluster's choice, not
 * the manifests').
 */
export async function applyManifests(
  admin: KubeRest,
  dir: string,
  log: TestbedLog,
  nodeKinds: Record<string, NodeKind>,
): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const namespaces: string[] = [];
  for (const file of await yamlFiles(dir)) {
    for (const object of await readManifests(file)) {
      const kind = object.kind === 'Namespace' ? nodeKinds[object.metadata?.name ?? ''] : undefined;
      if (kind !== undefined) {
        const annotations = object.metadata?.annotations as Record<string, string> | undefined;
        object.metadata = { ...object.metadata, annotations: { ...annotations, ...nodeKindAnnotations(kind) } };
      }
      const what = `${object.kind ?? '?'} ${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? '?'}`;
      try {
        await admin.apply(object, {
          onWarning: (warning) => log(`API server warning for ${what} of ${path.relative(repoRoot(), file)}: ${warning}`),
        });
      } catch (error) {
        throw new Error(
          `The API server refused ${what} of ${path.relative(repoRoot(), file)}: ${error instanceof Error ? error.message : String(error)}`,
          {
            cause: error,
          },
        );
      }
      if (object.kind === 'Namespace' && object.metadata?.name !== undefined) namespaces.push(object.metadata.name);
    }
  }
  return namespaces;
}

export async function createNode(admin: KubeRest, name: string): Promise<void> {
  const response = await admin.request('POST', '/api/v1/nodes', {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { [KWOK_NODE_ANNOTATION]: 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'node-role.kubernetes.io/agent': '',
        type: 'kwok',
        [NODE_KIND_LABEL]: 'kwok',
      },
    },
    status: { allocatable: { ...NODE_ALLOCATABLE }, capacity: { ...NODE_ALLOCATABLE } },
  });
  if (response.status !== 201 && response.status !== 409)
    throw new Error(`Creating node ${name}: HTTP ${String(response.status)}: ${response.text}`);
}

export async function nodesReady(admin: KubeRest, names: readonly string[]): Promise<boolean> {
  for (const name of names) {
    const node = await admin.getOrNull<{
      spec?: { taints?: { key: string }[] };
      status?: { conditions?: { type: string; status: string }[] };
    }>(`/api/v1/nodes/${name}`);
    if (node === null) return false;
    const ready = node.status?.conditions?.some((condition) => condition.type === 'Ready' && condition.status === 'True') === true;
    const tainted = (node.spec?.taints ?? []).some((taint) => taint.key.startsWith('node.kubernetes.io/'));
    if (!ready || tainted) return false;
  }
  return true;
}

export async function servesResources(admin: KubeRest, path: string, resources: readonly string[]): Promise<boolean> {
  const list = await admin.getOrNull<{ resources?: { name: string }[] }>(path).catch(() => null);
  const served = new Set((list?.resources ?? []).map((resource) => resource.name));
  return resources.every((resource) => served.has(resource));
}
