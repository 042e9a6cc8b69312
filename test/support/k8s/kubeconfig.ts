/** Kubeconfig files of the test cluster: one cluster, one user, one context. */
import { promises as fs } from 'node:fs';

import { stringify } from 'yaml';

export async function writeKubeconfig(
  file: string,
  server: string,
  caFile: string,
  user: string,
  credentials: { cert: string; key: string } | { token: string },
  namespace?: string,
): Promise<void> {
  const base64 = async (certificate: string): Promise<string> => (await fs.readFile(certificate)).toString('base64');
  const userEntry =
    'token' in credentials
      ? { token: credentials.token }
      : { 'client-certificate-data': await base64(credentials.cert), 'client-key-data': await base64(credentials.key) };
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'devpocket-testbed', cluster: { server, 'certificate-authority-data': await base64(caFile) } }],
    users: [{ name: user, user: userEntry }],
    contexts: [{ name: user, context: { cluster: 'devpocket-testbed', user, ...(namespace === undefined ? {} : { namespace }) } }],
    'current-context': user,
  };
  await fs.writeFile(file, stringify(config), { mode: 0o600 });
}
