/**
 * DevPocket Server installed into the test cluster from deploy/kubernetes/ and running on its real
 * node, from images built here (./server-image.ts): 2 replicas and a Redis, configured in-cluster
 * through the ServiceAccount, on the run's database (test/kubernetes/in-cluster.e2e-spec.ts).
 *
 * What this cluster lacks, and how the installation gets around it (docs/deployment.md, "What the
 * in-cluster test proves"):
 * - no registry: the images are imported into the node's containerd (`imagePullPolicy: Never`);
 * - no kube-proxy and no cluster DNS: ClusterIP Services do not route. The server reaches the API
 *   server as any pod does, from the KUBERNETES_SERVICE_HOST/PORT variables and its ServiceAccount's
 *   token and CA, except that those variables name `kubernetes.default.svc` (a name in the API
 *   server's certificate) on a port of a TCP forwarder on the bridge's gateway address
 *   (hostAliases resolve the name), since the API server listens on 127.0.0.1 only. The database
 *   gets a forwarder of its own, Redis is reached by its pod's IP;
 * - clients reach "the Service" through its EndpointSlices: {@link InClusterInstallation.baseUrl}
 *   picks the ready endpoints round-robin for every new connection, as kube-proxy would. The API
 *   server's service proxy (`/api/v1/namespaces/…/services/…/proxy/`) is not used: it authenticates
 *   the caller itself and drops the `Authorization` header, so the API's bearer tokens never arrive.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as path from 'node:path';

import type { TestDatabase } from '../database.js';
import { eventually } from '../eventually.js';
import { installationObjects, SERVER_NAME } from './in-cluster-manifests.js';
import { KubeRest, type KubeObject } from './kube-rest.js';
import { ensureServerImages, importIntoNode } from './server-image.js';
import { forwardTcp, type TcpForward } from './tcp-forward.js';
import { loadKubeConfig, REAL_NODE_NAME } from './testbed.js';

export interface InClusterOptions {
  adminKubeconfig: string;
  storageClass: string;
  /** The real node's containerd socket (RealNodeInfo.containerdSocket), where the images are imported. */
  containerdSocket: string;
  database: TestDatabase;
  log: (line: string) => void;
}

interface EndpointSlice {
  endpoints?: { addresses: string[]; conditions?: { ready?: boolean } }[];
  ports?: { name?: string; port?: number }[];
}
interface DeploymentStatus {
  metadata: { generation: number };
  spec: { replicas: number };
  status?: { observedGeneration?: number; updatedReplicas?: number; readyReplicas?: number; availableReplicas?: number; replicas?: number };
}
interface PodList {
  items: {
    metadata: { name: string; deletionTimestamp?: string };
    status?: { podIP?: string; conditions?: { type: string; status: string }[] };
  }[];
}

const JWT_SECRET = randomBytes(36).toString('base64');
const SUFFIX_BYTES = 3;

export class InClusterInstallation {
  private next = 0;

  private constructor(
    private readonly admin: KubeRest,
    readonly namespace: string,
    readonly environmentsNamespace: string,
    private readonly clusterScoped: KubeObject[],
    private readonly forwards: TcpForward[],
    /** Seconds each step of the start took (for the report; never asserted). */
    readonly timings: Record<string, number>,
  ) {}

  static async start(options: InClusterOptions): Promise<InClusterInstallation> {
    const timings: Record<string, number> = {};
    const timed = async <T>(step: string, work: () => Promise<T>): Promise<T> => {
      const started = Date.now();
      const result = await work();
      timings[step] = (Date.now() - started) / 1000;
      options.log(`in-cluster: ${step} in ${timings[step].toFixed(1)} s`);
      return result;
    };
    const admin = new KubeRest(loadKubeConfig(options.adminKubeconfig));
    const images = await timed('images built or found', () => ensureServerImages(options.log));
    const socket = options.containerdSocket;
    if (!existsSync(socket)) throw new Error(`No containerd socket of the real node at ${socket}`);
    const importLog = path.join(path.dirname(options.adminKubeconfig), 'in-cluster-images.log');
    await timed('images imported into the node', async () => {
      for (const image of [images.server, images.redis]) await importIntoNode(socket, image, importLog);
    });

    // The pods reach this host at the bridge's gateway, the node's InternalIP.
    const node = await admin.call<{ status: { addresses: { type: string; address: string }[] } }>('GET', `/api/v1/nodes/${REAL_NODE_NAME}`);
    const gateway = node.status.addresses.find((address) => address.type === 'InternalIP')?.address;
    if (gateway === undefined) throw new Error(`${REAL_NODE_NAME} has no InternalIP`);
    const apiServer = new URL(loadKubeConfig(options.adminKubeconfig).getCurrentCluster()!.server);
    const database = new URL(options.database.serverUri);
    const forwards = [
      await forwardTcp(gateway, { host: apiServer.hostname, port: Number(apiServer.port) }),
      await forwardTcp(gateway, { host: database.hostname, port: Number(database.port) }),
    ];
    database.host = `${gateway}:${String(forwards[1].port)}`;

    const suffix = randomBytes(SUFFIX_BYTES).toString('hex');
    const overrides = {
      suffix,
      config: { KUBERNETES_STORAGE_CLASS: options.storageClass, PUBLIC_URL: 'http://devpocket.test', LOG_LEVEL: 'info' },
      secret: { MONGODB_URI: database.toString(), MONGODB_DB_NAME: options.database.name, JWT_SECRET, REDIS_URL: '' },
      extraEnv: { KUBERNETES_SERVICE_HOST: 'kubernetes.default.svc', KUBERNETES_SERVICE_PORT: String(forwards[0].port) },
      hostAliases: [{ ip: gateway, hostnames: ['kubernetes.default.svc'] }],
      serverImage: images.server.name,
      redisImage: images.redis.name,
    };
    const first = installationObjects(overrides);
    const [namespace, environmentsNamespace] = first.namespaces;
    const installation = new InClusterInstallation(
      admin,
      namespace,
      environmentsNamespace,
      first.objects.filter((object) => object.metadata?.namespace === undefined && object.kind !== 'Namespace'),
      forwards,
      timings,
    );
    try {
      await timed('Redis ready', async () => {
        for (const object of first.objects.filter((each) => each.kind === 'Namespace')) await admin.apply(object);
        for (const object of first.redis) await admin.apply(object);
        overrides.secret.REDIS_URL = `redis://${await installation.readyPodIp('redis')}:6379/0`;
      });
      await timed('2 server replicas ready', async () => {
        for (const object of installationObjects(overrides).objects) await admin.apply(object);
        await installation.waitForRollout();
      });
      return installation;
    } catch (error) {
      await installation.stop();
      throw error;
    }
  }

  /** `http://<pod IP>:<port>` of a ready endpoint of the Service, the next one each call. */
  async baseUrl(): Promise<string> {
    const slices = await this.admin.call<{ items: EndpointSlice[] }>(
      'GET',
      `/apis/discovery.k8s.io/v1/namespaces/${this.namespace}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3D${SERVER_NAME}`,
    );
    const urls = slices.items.flatMap((slice) => {
      const port = slice.ports?.find((each) => each.name === 'http')?.port;
      return (slice.endpoints ?? [])
        .filter((endpoint) => endpoint.conditions?.ready === true)
        .map((endpoint) => `http://${endpoint.addresses[0]}:${String(port)}`);
    });
    if (urls.length === 0) throw new Error(`The Service ${this.namespace}/${SERVER_NAME} has no ready endpoint`);
    return urls[this.next++ % urls.length];
  }

  /** `kubectl rollout restart`: a new annotation on the pod template. */
  async rolloutRestart(): Promise<void> {
    await this.admin.call(
      'PATCH',
      `/apis/apps/v1/namespaces/${this.namespace}/deployments/${SERVER_NAME}`,
      { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': new Date().toISOString() } } } } },
      'application/strategic-merge-patch+json',
    );
  }

  /** The names of the server's pods, terminating ones included. */
  async serverPods(): Promise<string[]> {
    const pods = await this.admin.call<PodList>(
      'GET',
      `/api/v1/namespaces/${this.namespace}/pods?labelSelector=app.kubernetes.io%2Fname%3D${SERVER_NAME}`,
    );
    return pods.items.map((pod) => pod.metadata.name);
  }

  /** Until every replica runs the Deployment's current template, ready, and no other pod is left. */
  async waitForRollout(timeoutMs = 240_000): Promise<void> {
    await eventually(
      async () => {
        const deployment = await this.admin.call<DeploymentStatus>(
          'GET',
          `/apis/apps/v1/namespaces/${this.namespace}/deployments/${SERVER_NAME}`,
        );
        const { status } = deployment;
        const replicas = deployment.spec.replicas;
        const done =
          (status?.observedGeneration ?? 0) >= deployment.metadata.generation &&
          status?.updatedReplicas === replicas &&
          status.readyReplicas === replicas &&
          status.availableReplicas === replicas &&
          status.replicas === replicas;
        if (!done) throw new Error(`the rollout is not done: ${JSON.stringify(status)}`);
        const pods = await this.serverPods();
        if (pods.length !== replicas) throw new Error(`${String(pods.length)} server pods, ${String(replicas)} wanted: ${pods.join(', ')}`);
      },
      timeoutMs,
      500,
    );
  }

  /** Deletes the namespaces (with the environments' pods and volumes) and the cluster-scoped objects; closes the forwarders. */
  async stop(): Promise<void> {
    for (const name of [this.namespace, this.environmentsNamespace]) {
      await this.admin.delete({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }).catch(() => false);
    }
    for (const object of this.clusterScoped) await this.admin.delete(object).catch(() => false);
    await eventually(
      async () => {
        for (const name of [this.namespace, this.environmentsNamespace]) {
          if ((await this.admin.getOrNull(`/api/v1/namespaces/${name}`)) !== null) throw new Error(`namespace ${name} is still there`);
        }
      },
      120_000,
      1_000,
    ).catch(() => undefined);
    for (const forward of this.forwards) await forward.close();
  }

  private async readyPodIp(name: string): Promise<string> {
    return eventually(
      async () => {
        const pods = await this.admin.call<PodList>(
          'GET',
          `/api/v1/namespaces/${this.namespace}/pods?labelSelector=app.kubernetes.io%2Fname%3D${name}`,
        );
        const ready = pods.items.find(
          (pod) =>
            pod.metadata.deletionTimestamp === undefined && pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        );
        if (ready?.status?.podIP === undefined) throw new Error(`no ready ${name} pod yet`);
        return ready.status.podIP;
      },
      120_000,
      250,
    );
  }
}
