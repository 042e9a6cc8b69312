import type { EnvironmentSpec } from '../runtime/runtime.provider.js';

/**
 * A minimal spec for runtime resources whose environment record no longer exists: runtimes find
 * everything they created from the id alone, which is all `destroy` needs.
 */
export function specForOrphan(id: string): EnvironmentSpec {
  return {
    id,
    slug: 'orphan',
    userId: 'unknown',
    resources: { cpu: '100m', memory: '128Mi', storage: '1Gi' },
    environmentVariables: {},
    template: {
      id: 'orphan',
      name: 'orphan',
      displayName: 'orphan',
      description: '',
      category: 'operating_system',
      tags: [],
      status: 'deprecated',
      version: '0.0.0',
      defaultPort: null,
      documentationUrl: null,
      iconUrl: null,
      usageCount: 0,
      createdAt: new Date(0),
      updatedAt: new Date(0),
      deletedAt: null,
      image: 'scratch',
      user: { name: 'devpocket', uid: 1000, gid: 1000, home: '/home/devpocket' },
      shell: '/bin/sh',
      workingDirectory: '',
      ports: [],
      environmentVariables: {},
      startup: { system: [], user: [] },
      requiredCommands: [],
      defaultResources: { cpu: '100m', memory: '128Mi', storage: '1Gi' },
      runAsNonRoot: true,
    },
  };
}
