/**
 * The test cluster's PKI, made with the openssl CLI: one CA signs every serving and client
 * certificate (P-256 keys), plus the service-account token signing key pair.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface CertificatePair {
  cert: string;
  key: string;
}

export interface ClusterPki {
  dir: string;
  ca: CertificatePair;
  /** kube-apiserver's serving certificate (127.0.0.1, localhost, kubernetes.default.svc…). */
  apiserver: CertificatePair;
  /** kube-apiserver's client certificate towards the kubelets (kwok). */
  apiserverKubeletClient: CertificatePair;
  /** kwok's serving certificate (its kubelet API on 127.0.0.1). */
  kwokServing: CertificatePair;
  /** system:masters. */
  admin: CertificatePair;
  controllerManager: CertificatePair;
  scheduler: CertificatePair;
  /** Service-account token signing key (PKCS#8) and its public key (SPKI). */
  serviceAccountKey: string;
  serviceAccountPublicKey: string;
}

const DAYS = '3650';

export async function generateClusterPki(dir: string, serviceClusterIp: string): Promise<ClusterPki> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const file = (name: string): string => path.join(dir, name);

  const ca = { cert: file('ca.crt'), key: file('ca.key') };
  await openssl([
    'req',
    '-x509',
    ...newKey(ca.key),
    '-out',
    ca.cert,
    '-days',
    DAYS,
    '-subj',
    '/CN=devpocket-testbed-ca',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);

  const leaf = (name: string, subject: string, usage: CertificateUsage, sans: readonly string[] = []): Promise<CertificatePair> =>
    signLeaf(dir, ca, name, subject, usage, sans);

  const [apiserver, apiserverKubeletClient, kwokServing, admin, controllerManager, scheduler] = await Promise.all([
    leaf('apiserver', '/CN=kube-apiserver', 'serverAuth', [
      'IP:127.0.0.1',
      `IP:${serviceClusterIp}`,
      'DNS:localhost',
      'DNS:kubernetes',
      'DNS:kubernetes.default',
      'DNS:kubernetes.default.svc',
      'DNS:kubernetes.default.svc.cluster.local',
    ]),
    leaf('apiserver-kubelet-client', '/O=system:masters/CN=kube-apiserver-kubelet-client', 'clientAuth'),
    leaf('kwok-serving', '/CN=kwok', 'serverAuth', ['IP:127.0.0.1', 'DNS:localhost']),
    leaf('admin', '/O=system:masters/CN=devpocket-testbed-admin', 'clientAuth'),
    leaf('controller-manager', '/CN=system:kube-controller-manager', 'clientAuth'),
    leaf('scheduler', '/CN=system:kube-scheduler', 'clientAuth'),
  ]);

  const serviceAccountKey = file('sa.key');
  const serviceAccountPublicKey = file('sa.pub');
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await fs.writeFile(serviceAccountKey, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  await fs.writeFile(serviceAccountPublicKey, publicKey.export({ type: 'spki', format: 'pem' }));

  return {
    dir,
    ca,
    apiserver,
    apiserverKubeletClient,
    kwokServing,
    admin,
    controllerManager,
    scheduler,
    serviceAccountKey,
    serviceAccountPublicKey,
  };
}

export type CertificateUsage = 'serverAuth' | 'clientAuth';

/**
 * One more certificate signed by the cluster's CA, in the PKI's directory (`<name>.crt`, `<name>.key`):
 * e.g. a kubelet's client certificate (`/O=system:nodes/CN=system:node:<node>`) or its serving one.
 */
export function issueCertificate(
  pki: Pick<ClusterPki, 'dir' | 'ca'>,
  name: string,
  subject: string,
  usage: CertificateUsage,
  sans: readonly string[] = [],
): Promise<CertificatePair> {
  return signLeaf(pki.dir, pki.ca, name, subject, usage, sans);
}

async function signLeaf(
  dir: string,
  ca: CertificatePair,
  name: string,
  subject: string,
  usage: CertificateUsage,
  sans: readonly string[],
): Promise<CertificatePair> {
  const pair = { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
  const extensions = [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage=${usage}`,
  ];
  if (sans.length > 0) extensions.push(`subjectAltName=${sans.join(',')}`);
  await openssl([
    'req',
    '-x509',
    ...newKey(pair.key),
    '-out',
    pair.cert,
    '-days',
    DAYS,
    '-subj',
    subject,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    ...extensions.flatMap((extension) => ['-addext', extension]),
  ]);
  return pair;
}

function newKey(keyFile: string): string[] {
  return ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-noenc', '-keyout', keyFile];
}

async function openssl(args: readonly string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args);
  } catch (error) {
    if (error instanceof Error && (error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error('The test cluster needs the openssl CLI to make its certificates (Debian package `openssl`)', { cause: error });
    }
    throw error;
  }
}
