import type { V1StatefulSet } from '@kubernetes/client-node';
import { storageBytes, storageChange } from './home-volume.js';
import { podTemplateHash } from './objects.js';
import { LABEL_INSTALLATION, Ownership, UNMARKED_SELECTOR } from './ownership.js';

const workload = (image: string): V1StatefulSet => ({
  metadata: { name: 'dp-x', labels: { 'devpocket.io/environment-id': 'x' } },
  spec: {
    serviceName: 'dp-x',
    selector: { matchLabels: { 'devpocket.io/environment-id': 'x' } },
    template: { metadata: { labels: { 'devpocket.io/environment-id': 'x' } }, spec: { containers: [{ name: 'workspace', image }] } },
  },
});

describe('the installation that owns an object', () => {
  const ownership = new Ownership('blue');

  it('selects its own objects, and DevPocket objects without any installation', () => {
    expect(ownership.selector).toBe('app.kubernetes.io/managed-by=devpocket-server,devpocket.io/installation=blue');
    expect(ownership.environmentSelector('abc')).toBe('devpocket.io/environment-id=abc,devpocket.io/installation=blue');
    expect(UNMARKED_SELECTOR).toBe('app.kubernetes.io/managed-by=devpocket-server,!devpocket.io/installation');
  });

  it('labels an object and a StatefulSet with its pod template, without changing the original', () => {
    const original = workload('debian');
    const labelled = ownership.labelWorkload(original);
    expect(labelled.metadata?.labels).toEqual({ 'devpocket.io/environment-id': 'x', [LABEL_INSTALLATION]: 'blue' });
    expect(labelled.spec?.template.metadata?.labels).toEqual({ 'devpocket.io/environment-id': 'x', [LABEL_INSTALLATION]: 'blue' });
    expect(original.metadata?.labels).toEqual({ 'devpocket.io/environment-id': 'x' });
    expect(ownership.owns(labelled.metadata)).toBe(true);
    expect(ownership.owns(original.metadata)).toBe(false);
    expect(new Ownership('green').owns(labelled.metadata)).toBe(false);
    expect(ownership.label({ metadata: { name: 'cm' } }).metadata).toEqual({ name: 'cm', labels: { [LABEL_INSTALLATION]: 'blue' } });
  });

  it("hashes a StatefulSet's pod template: the same for the same template, another for any change in it", () => {
    expect(podTemplateHash(workload('debian'))).toBe(podTemplateHash(workload('debian')));
    expect(podTemplateHash(workload('debian'))).not.toBe(podTemplateHash(workload('debian:2')));
    expect(podTemplateHash(workload('debian'))).not.toBe(podTemplateHash(ownership.labelWorkload(workload('debian'))));
    expect(podTemplateHash({ ...workload('debian'), metadata: { name: 'other' } })).toBe(podTemplateHash(workload('debian')));
  });
});

describe('the size of a home volume', () => {
  it('reads the quantities Kubernetes writes', () => {
    expect(storageBytes('5Gi')).toBe(5 * 2 ** 30);
    expect(storageBytes('1.5Gi')).toBe(1.5 * 2 ** 30);
    expect(storageBytes('500M')).toBe(500e6);
    expect(storageBytes('1073741824')).toBe(2 ** 30);
    expect(storageBytes('1e9')).toBe(1e9);
    expect(storageBytes('lots')).toBeNull();
    expect(storageBytes(undefined)).toBeNull();
  });

  it('grows, stays or shrinks, whatever the units', () => {
    expect(storageChange('1Gi', '2Gi')).toBe('grow');
    expect(storageChange('1Gi', '1024Mi')).toBe('same');
    expect(storageChange('1073741824', '1Gi')).toBe('same');
    expect(storageChange('2Gi', '1Gi')).toBe('shrink');
    expect(storageChange('1G', '1Gi')).toBe('grow');
    expect(storageChange(undefined, '1Gi')).toBe('unknown');
  });
});
