import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { KubernetesConfig } from '../../config/namespaces/runtime.config.js';
import type { EnvironmentSpec, StorageRefusal } from '../runtime.provider.js';
import { KubernetesApiError, reasonOf, statusOf, type KubernetesApi } from './kubernetes-api.js';
import { namesFor, volumeClaimFor } from './manifests.js';
import type { Ownership } from './ownership.js';
import type { Located } from './placement.js';

const UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** A storage quantity as Kubernetes writes it (`5Gi`, `500M`, `1073741824`, `1e9`) in bytes; null when it is none. */
export function storageBytes(quantity: string | undefined): number | null {
  const match = /^([0-9]+(?:\.[0-9]+)?)(?:[eE]([0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?)$/.exec(quantity?.trim() ?? '');
  if (!match?.[1]) return null;
  const exponent = match[2] === undefined ? 1 : 10 ** Number(match[2]);
  return Number(match[1]) * exponent * (UNITS[match[3] ?? ''] ?? 1);
}

/** What a new storage size means for a claim of `current`: nothing, growing it, or shrinking it (impossible). */
export function storageChange(current: string | undefined, wanted: string): 'same' | 'grow' | 'shrink' | 'unknown' {
  const from = storageBytes(current);
  const to = storageBytes(wanted);
  if (from === null || to === null) return 'unknown';
  return to === from ? 'same' : to > from ? 'grow' : 'shrink';
}

function shrinkMessage(name: string, current: string, wanted: string): string {
  return `the home volume ${name} holds ${current} and cannot shrink to ${wanted} (Kubernetes cannot shrink a PersistentVolumeClaim); ask for ${current} or more`;
}

function className(claim: V1PersistentVolumeClaim): string | null {
  return claim.spec?.storageClassName || null;
}

/**
 * The home volume (PersistentVolumeClaim `dp-<id>-home`) of an environment: created at the first
 * start, and at a later start brought to the environment's `storage`. A larger size is asked of
 * the claim (the StorageClass's resizer grows the volume; the files stay); the API server refuses
 * it unless the claim's StorageClass has `allowVolumeExpansion: true`, and the start then fails
 * naming the class. A smaller size is always refused: Kubernetes cannot shrink a claim.
 */
export class HomeVolume {
  constructor(
    private readonly config: KubernetesConfig,
    private readonly api: KubernetesApi,
    private readonly ownership: Ownership,
  ) {}

  read(at: Located): Promise<V1PersistentVolumeClaim | null> {
    const { volume } = namesFor(at.id);
    return this.api.find(`read PersistentVolumeClaim ${volume}`, () =>
      this.api.core.readNamespacedPersistentVolumeClaim({ name: volume, namespace: at.namespace }),
    );
  }

  /**
   * Creates the claim, or brings an existing one to the spec's size (and labels it as this
   * installation's). Throws, changing nothing, when the size cannot be given: a smaller one, or a
   * larger one the claim's StorageClass cannot expand.
   */
  async apply(spec: EnvironmentSpec, at: Located): Promise<void> {
    const name = namesFor(spec.id).volume;
    const claim = await this.read(at);
    if (!claim) {
      const body = this.ownership.label(volumeClaimFor(spec, this.config, at.namespace));
      await this.api.ensure(`create PersistentVolumeClaim ${name}`, () =>
        this.api.core.createNamespacedPersistentVolumeClaim({ namespace: at.namespace, body }),
      );
      return;
    }
    const current = claim.spec?.resources?.requests?.storage ?? '?';
    const wanted = spec.resources.storage;
    const change = storageChange(current, wanted);
    if (change === 'shrink') throw new KubernetesApiError(shrinkMessage(name, current, wanted), null);
    const grow = change === 'grow';
    if (!grow && this.ownership.owns(claim.metadata)) return;
    const body = {
      ...(this.ownership.owns(claim.metadata) ? {} : { metadata: { labels: this.ownership.labels } }),
      ...(grow ? { spec: { resources: { requests: { storage: wanted } } } } : {}),
    };
    try {
      await this.api.call(`${grow ? 'expand' : 'label'} PersistentVolumeClaim ${name}`, () =>
        this.api.core.patchNamespacedPersistentVolumeClaim({ name, namespace: at.namespace, body }),
      );
    } catch (error) {
      const status = statusOf(error);
      if (!grow || (status !== 403 && status !== 422)) throw error;
      const storageClass = className(claim);
      const said = reasonOf(error);
      const why = /\bbound\b/i.test(said)
        ? 'it is not bound to a volume yet'
        : storageClass
          ? `its StorageClass "${storageClass}" does not allow volume expansion`
          : 'it has no StorageClass (a volume made by hand cannot be expanded)';
      throw new KubernetesApiError(
        `the home volume ${name} cannot grow from ${current} to ${wanted}: ${why} (the API server said: ${said}); ` +
          `set the environment's storage back to ${current} to start it`,
        status,
      );
    }
  }

  /**
   * Why the environment's home volume cannot take `storage` at its next start, when that can be told
   * now: smaller than the claim, or larger while the claim's StorageClass does not allow expansion
   * (which needs `get` on StorageClasses; without it, or without a claim, nothing can be told and the
   * start decides). Never throws.
   */
  async check(at: Located, storage: string): Promise<StorageRefusal | null> {
    try {
      const claim = await this.read(at);
      if (!claim) return null;
      const name = namesFor(at.id).volume;
      const current = claim.spec?.resources?.requests?.storage ?? '?';
      const change = storageChange(current, storage);
      if (change === 'shrink') return { code: 'storage_cannot_shrink', message: shrinkMessage(name, current, storage) };
      if (change !== 'grow') return null;
      const storageClassName = className(claim);
      if (!storageClassName) {
        return {
          code: 'storage_not_expandable',
          message: `the home volume ${name} has no StorageClass (a volume made by hand) and cannot grow from ${current} to ${storage}`,
        };
      }
      const storageClass = await this.api.find(`read StorageClass ${storageClassName}`, () =>
        this.api.storage.readStorageClass({ name: storageClassName }),
      );
      if (!storageClass || storageClass.allowVolumeExpansion === true) return null;
      return {
        code: 'storage_not_expandable',
        message: `the home volume ${name} cannot grow from ${current} to ${storage}: its StorageClass "${storageClassName}" does not allow volume expansion`,
      };
    } catch {
      return null;
    }
  }
}
