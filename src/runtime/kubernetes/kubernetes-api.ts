import type { SecureContextOptions } from 'node:tls';
import { setTimeout as delay } from 'node:timers/promises';
import {
  ApiException,
  ApisApi,
  AppsV1Api,
  AuthenticationV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  createConfiguration,
  CustomObjectsApi,
  IsomorphicFetchHttpLibrary,
  KubeConfig,
  RbacAuthorizationV1Api,
  ServerConfiguration,
  StorageV1Api,
  VersionApi,
  Watch,
  wrapHttpLibrary,
  type Configuration,
  type Middleware,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';
import { WebSocket, type ClientOptions } from 'ws';
import type { KubernetesConfig } from '../../config/namespaces/runtime.config.js';

/**
 * The one place that talks to the Kubernetes API server (the port to an external system): typed
 * clients from @kubernetes/client-node with a timeout on every request, retries with exponential
 * backoff for what is worth retrying (5xx, 429, timeouts, dropped connections), a count of the
 * calls made (for the benchmarks), every request's outcome told to an observer (the
 * `kubernetes_api_requests_total` metric), and WebSocket connections for exec.
 */

/** Why a Kubernetes API call failed, after its retries; `status` is the HTTP status when there was one. */
export class KubernetesApiError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
  ) {
    super(message);
    this.name = 'KubernetesApiError';
  }
}

/** The HTTP status of a failed call, or null for a network failure or timeout. */
export function statusOf(error: unknown): number | null {
  if (error instanceof ApiException) return error.code;
  if (error instanceof KubernetesApiError) return error.status;
  return null;
}

/** The API server's own words for a failure (a Status object's message), else the error's. */
export function reasonOf(error: unknown): string {
  if (error instanceof ApiException) {
    const body: unknown = error.body;
    let parsed: unknown = body;
    if (typeof body === 'string') {
      try {
        parsed = JSON.parse(body);
      } catch {
        parsed = body;
      }
    }
    if (parsed && typeof parsed === 'object' && 'message' in parsed && typeof parsed.message === 'string') {
      return `${parsed.message} (HTTP ${error.code})`;
    }
    return `HTTP ${error.code}`;
  }
  if (error instanceof Error) {
    if (error.name === 'AbortError' || error.name === 'TimeoutError') return 'the request timed out';
    return error.message;
  }
  return String(error);
}

/** Worth another try: the server was unavailable, overloaded, or the connection failed. */
export function isRetryable(error: unknown): boolean {
  const status = statusOf(error);
  if (status === null) return !(error instanceof KubernetesApiError);
  return status >= 500 || status === 429;
}

/** `GET pods`, `PATCH statefulsets`, `POST pods/exec`: a call's verb and resource, names left out. */
export function describeCall(method: string, url: string): string {
  const path = new URL(url, 'http://kubernetes').pathname;
  const parts = path.split('/').filter(Boolean);
  // /api/v1/namespaces/<ns>/<resource>[/<name>[/<subresource>]] or /apis/<group>/<version>/namespaces/…
  const start = parts[0] === 'api' ? 2 : 3;
  const rest = parts.slice(start);
  const namespaced = rest[0] === 'namespaces' && rest.length > 2;
  const tail = namespaced ? rest.slice(2) : rest;
  const resource = tail[0] ?? path;
  const subresource = tail.length > 2 ? `/${tail[2]}` : '';
  return `${method.toUpperCase()} ${resource}${subresource}`;
}

/** One request to the API server as the metrics see it: its Kubernetes verb, resource, and HTTP status (`error`: no answer). */
export interface KubernetesRequest {
  verb: string;
  resource: string;
  code: string;
}

export type KubernetesRequestObserver = (request: KubernetesRequest) => void;

const VERB_OF_METHOD: Record<string, string> = { GET: 'get', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };

/**
 * A request's Kubernetes verb and resource, names and namespaces left out (bounded labels):
 * `list pods`, `watch pods`, `patch apps/statefulsets`, `get /version`. The resource is
 * `[group/]resource[/subresource]`; a path outside the resource tree (discovery, `/version`) is its
 * own resource.
 */
export function requestLabels(method: string, url: string): { verb: string; resource: string } {
  const parsed = new URL(url, 'http://kubernetes');
  const parts = parsed.pathname.split('/').filter(Boolean);
  const upper = method.toUpperCase();
  // /api/v1/[namespaces/<ns>/]<resource>[/<name>[/<subresource>]] or /apis/<group>/<version>/…
  const core = parts[0] === 'api' && parts.length > 2;
  const grouped = parts[0] === 'apis' && parts.length > 3;
  if (!core && !grouped) return { verb: VERB_OF_METHOD[upper] ?? upper.toLowerCase(), resource: parsed.pathname };
  const rest = parts.slice(core ? 2 : 3);
  const tail = rest[0] === 'namespaces' && rest.length > 2 ? rest.slice(2) : rest;
  const group = grouped ? `${parts[1]}/` : '';
  const resource = `${group}${tail[0] ?? ''}${tail.length > 2 ? `/${tail[2]}` : ''}`;
  const named = tail.length > 1;
  if (named) return { verb: VERB_OF_METHOD[upper] ?? upper.toLowerCase(), resource };
  const watching = ['true', '1'].includes(parsed.searchParams.get('watch') ?? '');
  const verb =
    upper === 'GET'
      ? watching
        ? 'watch'
        : 'list'
      : upper === 'DELETE'
        ? 'deletecollection'
        : (VERB_OF_METHOD[upper] ?? upper.toLowerCase());
  return { verb, resource };
}

/** Exec subprotocols, newest first (v5 adds closing stdin). */
export const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'];

export interface RetryPolicy {
  retries: number;
  /** First backoff; each retry doubles it, up to maxDelayMs, with jitter. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export class KubernetesApi {
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  /** For the metrics API (`metrics.k8s.io`). */
  readonly custom: CustomObjectsApi;
  /** RoleBindings in per-user namespaces (placement.ts). */
  readonly rbac: RbacAuthorizationV1Api;
  /** StorageClasses: whether a home volume may grow (home-volume.ts). */
  readonly storage: StorageV1Api;
  /** Who the runtime is (SelfSubjectReview) and what it may do (SelfSubjectAccessReview). */
  readonly authentication: AuthenticationV1Api;
  readonly authorization: AuthorizationV1Api;
  readonly kubeConfig: KubeConfig;
  private readonly calls = new Map<string, number>();
  private readonly retryPolicy: RetryPolicy;
  private readonly server: string;

  constructor(
    private readonly config: KubernetesConfig,
    kubeConfig?: KubeConfig,
    retryPolicy: Partial<RetryPolicy> = {},
    /** Told every request's verb, resource and outcome (the runtime's metrics). */
    private readonly observer: KubernetesRequestObserver = () => undefined,
  ) {
    this.kubeConfig = kubeConfig ?? KubernetesApi.loadKubeConfig(config);
    this.retryPolicy = { retries: config.apiRetries, baseDelayMs: 250, maxDelayMs: 4000, ...retryPolicy };
    const cluster = this.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('Kubernetes runtime: the kubeconfig has no current cluster');
    this.server = cluster.server;
    const configuration = this.configuration(this.config.requestTimeoutMs);
    this.core = new CoreV1Api(configuration);
    this.apps = new AppsV1Api(configuration);
    this.custom = new CustomObjectsApi(configuration);
    this.rbac = new RbacAuthorizationV1Api(configuration);
    this.storage = new StorageV1Api(configuration);
    this.authentication = new AuthenticationV1Api(configuration);
    this.authorization = new AuthorizationV1Api(configuration);
  }

  /** The typed clients' configuration: each request gives up after `timeoutMs`, is counted, and its outcome observed. */
  private configuration(timeoutMs: number): Configuration {
    const middleware: Middleware = {
      pre: async (context: RequestContext) => {
        context.setSignal(AbortSignal.timeout(timeoutMs));
        // Every patch this runtime sends is a JSON merge patch.
        if (context.getHttpMethod().toString() === 'PATCH') context.setHeaderParam('Content-Type', 'application/merge-patch+json');
        this.count(describeCall(context.getHttpMethod().toString(), context.getUrl()));
        return Promise.resolve(context);
      },
      post: (context: ResponseContext) => Promise.resolve(context),
    };
    const fetchLibrary = new IsomorphicFetchHttpLibrary();
    const observed = wrapHttpLibrary({
      send: async (request: RequestContext): Promise<ResponseContext> => {
        const labels = requestLabels(request.getHttpMethod().toString(), request.getUrl());
        try {
          const response = await fetchLibrary.send(request).toPromise();
          this.observe({ ...labels, code: String(response.httpStatusCode) });
          return response;
        } catch (error) {
          this.observe({ ...labels, code: 'error' });
          throw error;
        }
      },
    });
    return createConfiguration({
      baseServer: new ServerConfiguration(this.server, {}),
      authMethods: { default: this.kubeConfig },
      httpApi: observed,
      promiseMiddleware: [middleware],
    });
  }

  private observe(request: KubernetesRequest): void {
    try {
      this.observer(request);
    } catch {
      // Metrics never break a call.
    }
  }

  /**
   * The API server's version (`GET /version`): one attempt, no retries, within `timeoutMs`. A
   * request with this runtime's credentials: it proves the API server reachable and the
   * credentials accepted (401 otherwise). The readiness check.
   */
  async serverVersion(timeoutMs: number): Promise<string> {
    const info = await new VersionApi(this.configuration(timeoutMs)).getCode();
    return info.gitVersion;
  }

  /** Whether the API server serves an API group (discovery, `GET /apis`), e.g. `metrics.k8s.io`. */
  async servesGroup(group: string): Promise<boolean> {
    const groups = await this.call('list API groups', () => new ApisApi(this.configuration(this.config.requestTimeoutMs)).getAPIVersions());
    return groups.groups.some((each) => each.name === group);
  }

  /** KUBECONFIG when configured, otherwise the pod's service account (in-cluster). */
  static loadKubeConfig(config: KubernetesConfig): KubeConfig {
    const kubeConfig = new KubeConfig();
    if (config.kubeconfig) kubeConfig.loadFromFile(config.kubeconfig);
    else kubeConfig.loadFromCluster();
    return kubeConfig;
  }

  /**
   * Runs one API call with retries: `what` names it in the final error ("create StatefulSet
   * dp-…"). Errors that retrying cannot fix (4xx) are thrown at once, unchanged, so callers can
   * look at 404 and 409.
   */
  async call<T>(what: string, request: () => Promise<T>): Promise<T> {
    let attempt = 0;
    for (;;) {
      try {
        return await request();
      } catch (error) {
        if (!isRetryable(error)) throw error;
        if (attempt >= this.retryPolicy.retries) {
          throw new KubernetesApiError(
            `Kubernetes API: ${what} failed after ${attempt + 1} attempt(s): ${reasonOf(error)}`,
            statusOf(error),
          );
        }
        const backoff = Math.min(this.retryPolicy.maxDelayMs, this.retryPolicy.baseDelayMs * 2 ** attempt);
        await delay(backoff / 2 + Math.random() * (backoff / 2));
        attempt += 1;
      }
    }
  }

  /** Like call(), but a 404 is null. */
  async find<T>(what: string, request: () => Promise<T>): Promise<T | null> {
    try {
      return await this.call(what, request);
    } catch (error) {
      if (statusOf(error) === 404) return null;
      throw error;
    }
  }

  /** Like call(), but 404 (already gone) is success. */
  async remove(what: string, request: () => Promise<unknown>): Promise<void> {
    await this.find(what, request);
  }

  /** Like call(), but 409 (it exists already) is success. */
  async ensure(what: string, request: () => Promise<unknown>): Promise<'created' | 'existed'> {
    try {
      await this.call(what, request);
      return 'created';
    } catch (error) {
      if (statusOf(error) === 409) return 'existed';
      throw error;
    }
  }

  /** A watch of pods in a namespace, or in every namespace (null); `done` is called once when it ends. */
  watchPods(
    namespace: string | null,
    query: { labelSelector: string; resourceVersion?: string },
    onEvent: (type: string, object: unknown) => void,
    done: (error: unknown) => void,
  ): Promise<AbortController> {
    this.count('WATCH pods');
    const watching = new Watch(this.kubeConfig).watch(
      namespace === null ? '/api/v1/pods' : `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`,
      { labelSelector: query.labelSelector, resourceVersion: query.resourceVersion, allowWatchBookmarks: true },
      onEvent,
      done,
    );
    watching.then(
      () => this.observe({ verb: 'watch', resource: 'pods', code: '200' }),
      (error: unknown) => {
        const status = (error as { statusCode?: unknown } | null)?.statusCode;
        this.observe({ verb: 'watch', resource: 'pods', code: typeof status === 'number' ? String(status) : 'error' });
      },
    );
    return watching;
  }

  /**
   * Opens an exec WebSocket to a pod's container, offering `v5.channel.k8s.io` first (it can close
   * stdin) and the older channel protocols after it. Credentials and TLS come from the
   * kubeconfig (client-node's applyToHTTPSOptions). `onMessage` gets each binary frame split into
   * its channel and payload; it is wired before the socket opens, so no frame is missed.
   */
  async openExec(
    namespace: string,
    pod: string,
    container: string,
    argv: string[],
    tty: boolean,
    onMessage: (channel: number, data: Buffer) => void,
  ): Promise<WebSocket> {
    const cluster = this.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('Kubernetes runtime: the kubeconfig has no current cluster');
    const query = new URLSearchParams({ container, stdin: 'true', stdout: 'true', stderr: tty ? 'false' : 'true', tty: String(tty) });
    for (const arg of argv) query.append('command', arg);
    const url = new URL(
      `${cluster.server.replace(/\/+$/, '')}/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/exec`,
    );
    url.search = query.toString();
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const options: ClientOptions & SecureContextOptions & { headers?: Record<string, string> } = {};
    await this.kubeConfig.applyToHTTPSOptions(options);
    this.count('POST pods/exec');
    // A WebSocket exec is a GET upgrade that RBAC authorises as `create` on pods/exec.
    let told = false;
    const observe = (code: string): void => {
      if (told) return;
      told = true;
      this.observe({ verb: 'create', resource: 'pods/exec', code });
    };
    return new Promise<WebSocket>((resolve, reject) => {
      const socket = new WebSocket(url, EXEC_PROTOCOLS, { ...options, handshakeTimeout: this.config.requestTimeoutMs });
      socket.binaryType = 'nodebuffer';
      socket.on('message', (data: Buffer, isBinary: boolean) => {
        const frame = isBinary ? data : Buffer.from(data);
        if (frame.length > 0) onMessage(frame[0] ?? 0, frame.subarray(1));
      });
      socket.once('open', () => {
        observe('101');
        resolve(socket);
      });
      // Refused (403, 404, 5xx…): the answer's Status says why. The socket is ended only once the
      // body is read (ending it at once would lose the body and report a generic close instead).
      let refused = false;
      socket.once('unexpected-response', (_request, response) => {
        refused = true;
        observe(String(response.statusCode ?? 'error'));
        const chunks: Buffer[] = [];
        let settled = false;
        const settle = (): void => {
          if (settled) return;
          settled = true;
          const body = Buffer.concat(chunks).toString('utf8');
          let message = body.trim() || `HTTP ${response.statusCode}`;
          try {
            const status = JSON.parse(body) as { message?: string };
            if (status.message) message = `${status.message} (HTTP ${response.statusCode})`;
          } catch {
            // not a Status object: keep the text
          }
          reject(new KubernetesApiError(message, response.statusCode ?? null));
          socket.terminate();
        };
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.once('end', settle);
        response.once('close', settle);
        response.once('error', settle);
      });
      socket.on('error', (error) => {
        if (refused) return;
        observe('error');
        reject(error);
      });
    });
  }

  /** Calls per `VERB resource` since the last reset (for benchmarks and tests). */
  callCounts(): Record<string, number> {
    return Object.fromEntries([...this.calls.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }

  resetCallCounts(): void {
    this.calls.clear();
  }

  private count(key: string): void {
    this.calls.set(key, (this.calls.get(key) ?? 0) + 1);
  }
}
