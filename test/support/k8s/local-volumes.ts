/**
 * The test cluster's volume provisioner for the real node (./real-node.ts): a small controller in the
 * test process, with the admin kubeconfig, doing for the StorageClass {@link LOCAL_STORAGE_CLASS}
 * what an external provisioner and resizer do (no maintained one runs here without an image registry):
 *
 * - **Provision**: a claim of the class is bound on first use (`WaitForFirstConsumer`): once the
 *   scheduler picked a node for its first pod and the PV controller handed the claim to this
 *   provisioner (`volume.kubernetes.io/selected-node`, `volume.kubernetes.io/storage-provisioner`),
 *   a directory `<root>/pvc-<claim uid>` and a `local` PersistentVolume on it are made, with node
 *   affinity to that node and the claim as its claimRef; the PV controller binds them. The kubelet's
 *   `local` volume plugin mounts it into the pod and applies the pod's fsGroup to it (group, setgid,
 *   group-writable), as on any cluster with local volumes.
 * - **Delete**: a volume of this provisioner that is Released (its claim was deleted; reclaim policy
 *   Delete) has its directory removed, then is deleted.
 * - **Expand** (`allowVolumeExpansion: true`): when a bound claim asks for more than its capacity, the
 *   PersistentVolume's capacity and the claim's status are set to the new size (a directory has no
 *   size of its own to grow; capacities here are not enforced, as with any `local` volume).
 * - **Sized volumes**: a StorageClass of this provisioner with the parameter
 *   `{@link FILESYSTEM_PARAMETER}: tmpfs` gets, for each claim, a tmpfs of the claim's size mounted on
 *   the volume's directory (so `df` in the pod shows the claim's size), remounted larger when the
 *   claim is expanded (its files stay), unmounted when the volume is deleted (or the provisioner
 *   stops). `testbed-local` has no such parameter.
 *
 * Every claim of a StorageClass of this provisioner is served (the PV controller names the
 * provisioner on the claim); claims whose selected node is not one of `nodeNames` (kwok's) are left alone.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

import type { KubeConfig } from '@kubernetes/client-node';

import { KubeApiError, KubeRest, type KubeObject } from './kube-rest.js';
import { watchCollection, type WatchLoop } from './watch-loop.js';

export const LOCAL_STORAGE_CLASS = 'testbed-local';
export const LOCAL_VOLUME_PROVISIONER = 'testbed.devpocket.io/local-volume';

const ANNOTATION_SELECTED_NODE = 'volume.kubernetes.io/selected-node';
const ANNOTATION_STORAGE_PROVISIONER = 'volume.kubernetes.io/storage-provisioner';
const ANNOTATION_PROVISIONED_BY = 'pv.kubernetes.io/provisioned-by';
/** A StorageClass parameter of this provisioner: `tmpfs` makes each volume a tmpfs of the claim's size. */
export const FILESYSTEM_PARAMETER = 'testbed.devpocket.io/filesystem';
/** On a PersistentVolume of a sized class: the file system mounted on its directory. */
const ANNOTATION_FILESYSTEM = 'testbed.devpocket.io/filesystem';

const run = promisify(execFile);

export function localStorageClass(): KubeObject {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: LOCAL_STORAGE_CLASS },
    provisioner: LOCAL_VOLUME_PROVISIONER,
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'WaitForFirstConsumer',
    allowVolumeExpansion: true,
  };
}

interface Meta {
  name: string;
  namespace?: string;
  uid: string;
  deletionTimestamp?: string;
  annotations?: Record<string, string>;
}
interface Claim {
  metadata: Meta;
  spec: {
    storageClassName?: string;
    volumeName?: string;
    accessModes?: string[];
    volumeMode?: string;
    resources?: { requests?: { storage?: string } };
  };
  status?: { phase?: string; capacity?: { storage?: string } };
}
interface StorageClass {
  parameters?: Record<string, string>;
}
interface Volume {
  metadata: Meta;
  spec: { persistentVolumeReclaimPolicy?: string; local?: { path: string }; capacity?: { storage?: string } };
  status?: { phase?: string };
}

export interface LocalVolumeProvisionerOptions {
  kubeConfig: KubeConfig;
  /** The directory under which every volume's directory is made. */
  root: string;
  /** The real nodes this provisioner makes volumes on. */
  nodeNames: readonly string[];
  log: (line: string) => void;
}

export class LocalVolumeProvisioner {
  private readonly rest: KubeRest;
  private readonly watches: WatchLoop[] = [];
  /** One queue per object: events of one claim or volume are handled in order, one at a time. */
  private readonly queues = new Map<string, Promise<void>>();
  /** The tmpfs mounts this provisioner made and has not unmounted yet. */
  private readonly mounts = new Set<string>();
  private stopped = false;

  private constructor(private readonly options: LocalVolumeProvisionerOptions) {
    this.rest = new KubeRest(options.kubeConfig);
  }

  static async start(options: LocalVolumeProvisionerOptions): Promise<LocalVolumeProvisioner> {
    await fs.mkdir(options.root, { recursive: true });
    const provisioner = new LocalVolumeProvisioner(options);
    const log = (line: string): void => options.log(`local-volumes: ${line}`);
    provisioner.watches.push(
      watchCollection<Claim>(options.kubeConfig, '/api/v1/persistentvolumeclaims', (type, claim) => provisioner.onClaim(type, claim), log),
      watchCollection<Volume>(options.kubeConfig, '/api/v1/persistentvolumes', (type, volume) => provisioner.onVolume(type, volume), log),
    );
    await Promise.all(provisioner.watches.map((watch) => watch.listed));
    return provisioner;
  }

  /** The directory of a volume this provisioner made. */
  volumeDir(volumeName: string): string {
    return path.join(this.options.root, volumeName);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.watches.map((watch) => watch.stop()));
    await Promise.allSettled(this.queues.values());
    for (const dir of this.mounts) await run('umount', ['-l', dir]).catch(() => undefined);
    this.mounts.clear();
  }

  private enqueue(key: string, work: () => Promise<void>): void {
    const previous = this.queues.get(key) ?? Promise.resolve();
    const next = previous
      .then(() => (this.stopped ? undefined : work()))
      .catch((error: unknown) => this.options.log(`local-volumes: ${key}: ${error instanceof Error ? error.message : String(error)}`));
    this.queues.set(key, next);
    void next.finally(() => {
      if (this.queues.get(key) === next) this.queues.delete(key);
    });
  }

  private onClaim(type: string, claim: Claim): void {
    if (type === 'DELETED' || claim.metadata.deletionTimestamp !== undefined) return;
    if (claim.metadata.annotations?.[ANNOTATION_STORAGE_PROVISIONER] !== LOCAL_VOLUME_PROVISIONER) return;
    const key = `claim ${claim.metadata.namespace ?? ''}/${claim.metadata.name}`;
    if (claim.spec.volumeName === undefined || claim.spec.volumeName === '') {
      const annotations = claim.metadata.annotations ?? {};
      const node = annotations[ANNOTATION_SELECTED_NODE];
      if (annotations[ANNOTATION_STORAGE_PROVISIONER] !== LOCAL_VOLUME_PROVISIONER || node === undefined) return;
      if (!this.options.nodeNames.includes(node)) return;
      this.enqueue(key, () => this.provision(claim, node));
    } else if (claim.status?.phase === 'Bound') {
      const requested = claim.spec.resources?.requests?.storage;
      const capacity = claim.status.capacity?.storage;
      if (requested !== undefined && capacity !== undefined && quantityBytes(requested) > quantityBytes(capacity)) {
        this.enqueue(key, () => this.expand(claim, requested));
      }
    }
  }

  private onVolume(type: string, volume: Volume): void {
    if (type === 'DELETED' || volume.metadata.annotations?.[ANNOTATION_PROVISIONED_BY] !== LOCAL_VOLUME_PROVISIONER) return;
    if (volume.status?.phase !== 'Released' || volume.spec.persistentVolumeReclaimPolicy !== 'Delete') return;
    if (volume.metadata.deletionTimestamp !== undefined) return;
    this.enqueue(`volume ${volume.metadata.name}`, () => this.delete(volume));
  }

  private async provision(claim: Claim, node: string): Promise<void> {
    if (claim.spec.volumeMode === 'Block') {
      this.options.log(`local-volumes: ${claim.metadata.namespace ?? ''}/${claim.metadata.name}: block volumes are not provisioned`);
      return;
    }
    const name = `pvc-${claim.metadata.uid}`;
    const dir = this.volumeDir(name);
    const size = claim.spec.resources?.requests?.storage ?? '1Gi';
    const storageClassName = claim.spec.storageClassName ?? LOCAL_STORAGE_CLASS;
    const storageClass = await this.rest.getOrNull<StorageClass>(`/apis/storage.k8s.io/v1/storageclasses/${storageClassName}`);
    const tmpfs = storageClass?.parameters?.[FILESYSTEM_PARAMETER] === 'tmpfs';
    await fs.mkdir(dir, { recursive: true });
    if (tmpfs && !this.mounts.has(dir)) {
      await run('mount', ['-t', 'tmpfs', '-o', `size=${String(quantityBytes(size))},mode=0755`, 'tmpfs', dir]);
      this.mounts.add(dir);
    }
    // root's, like a directory an administrator made: the kubelet gives it to the pod's fsGroup.
    await fs.chmod(dir, 0o755);
    const annotations: Record<string, string> = { [ANNOTATION_PROVISIONED_BY]: LOCAL_VOLUME_PROVISIONER };
    if (tmpfs) annotations[ANNOTATION_FILESYSTEM] = 'tmpfs';
    const volume = {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name, annotations },
      spec: {
        capacity: { storage: size },
        accessModes: claim.spec.accessModes ?? ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Delete',
        storageClassName,
        volumeMode: 'Filesystem',
        local: { path: dir },
        nodeAffinity: {
          required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node] }] }] },
        },
        claimRef: {
          apiVersion: 'v1',
          kind: 'PersistentVolumeClaim',
          namespace: claim.metadata.namespace,
          name: claim.metadata.name,
          uid: claim.metadata.uid,
        },
      },
    };
    const response = await this.rest.request('POST', '/api/v1/persistentvolumes', volume);
    if (response.status !== 201 && response.status !== 409)
      throw new KubeApiError('POST', '/api/v1/persistentvolumes', response.status, response.text);
  }

  private async delete(volume: Volume): Promise<void> {
    const dir = volume.spec.local?.path;
    // Only ever a directory this provisioner made.
    if (dir !== undefined && path.dirname(dir) === this.options.root && path.basename(dir) === volume.metadata.name) {
      if (volume.metadata.annotations?.[ANNOTATION_FILESYSTEM] === 'tmpfs') {
        await run('umount', [dir]).catch(() => run('umount', ['-l', dir]));
        this.mounts.delete(dir);
      }
      await fs.rm(dir, { recursive: true, force: true });
    }
    await this.rest.delete(
      { apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: volume.metadata.name } },
      { uid: volume.metadata.uid },
    );
  }

  private async expand(claim: Claim, size: string): Promise<void> {
    const volumeName = claim.spec.volumeName!;
    const volume = await this.rest.getOrNull<Volume>(`/api/v1/persistentvolumes/${volumeName}`);
    if (volume?.metadata.annotations?.[ANNOTATION_PROVISIONED_BY] !== LOCAL_VOLUME_PROVISIONER) return;
    const merge = 'application/merge-patch+json';
    const dir = volume.spec.local?.path;
    if (volume.metadata.annotations?.[ANNOTATION_FILESYSTEM] === 'tmpfs' && dir !== undefined) {
      // A tmpfs grows in place: the pod's mount (a bind of this one) sees the new size, its files stay.
      await run('mount', ['-o', `remount,size=${String(quantityBytes(size))}`, dir]);
    }
    await this.rest.call('PATCH', `/api/v1/persistentvolumes/${volumeName}`, { spec: { capacity: { storage: size } } }, merge);
    const claimPath = `/api/v1/namespaces/${claim.metadata.namespace ?? ''}/persistentvolumeclaims/${claim.metadata.name}/status`;
    await this.rest.call(
      'PATCH',
      claimPath,
      { status: { capacity: { storage: size }, allocatedResources: { storage: size }, allocatedResourceStatuses: null, conditions: null } },
      merge,
    );
    this.options.log(`local-volumes: expanded ${claim.metadata.namespace ?? ''}/${claim.metadata.name} to ${size}`);
  }
}

const SUFFIXES: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
};

/** A storage quantity (`1Gi`, `500M`, `1e9`) in bytes. */
export function quantityBytes(quantity: string): number {
  const match = /^([0-9.]+(?:e[0-9]+)?)([a-zA-Z]*)$/.exec(quantity.trim());
  const multiplier = match === null ? undefined : SUFFIXES[match[2]];
  if (match === null || multiplier === undefined) throw new Error(`Not a storage quantity: ${quantity}`);
  return Number(match[1]) * multiplier;
}
