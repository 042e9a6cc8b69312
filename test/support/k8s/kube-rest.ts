/**
 * A small untyped Kubernetes REST client on top of a client-node KubeConfig (its TLS material and
 * credentials): raw requests, discovery by apiVersion/kind, and server-side apply with strict field
 * validation, which the typed clients of @kubernetes/client-node 1.4 do not expose.
 */
import * as https from 'node:https';

import type { KubeConfig } from '@kubernetes/client-node';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string; [key: string]: unknown };
  [key: string]: unknown;
}

export interface KubeResponse {
  status: number;
  body: unknown;
  text: string;
  /** The API server's `Warning` headers (deprecations, unknown fields in Warn mode…). */
  warnings: string[];
}

export class KubeApiError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly text: string,
  ) {
    super(`${method} ${path}: HTTP ${String(status)}: ${text.slice(0, 2000)}`);
    this.name = 'KubeApiError';
  }
}

interface ApiResource {
  name: string;
  namespaced: boolean;
}

export class KubeRest {
  private readonly server: string;
  private readonly discovery = new Map<string, Map<string, ApiResource>>();

  constructor(private readonly kubeConfig: KubeConfig) {
    const cluster = kubeConfig.getCurrentCluster();
    if (cluster === null) throw new Error('The kubeconfig has no current cluster');
    this.server = cluster.server.replace(/\/+$/, '');
  }

  /** One request; never throws on HTTP status (see {@link KubeRest.call} for that). */
  async request(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<KubeResponse> {
    const options: https.RequestOptions = { method, headers: { Accept: 'application/json' } };
    await this.kubeConfig.applyToHTTPSOptions(options);
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    if (payload !== undefined) {
      options.headers = { ...options.headers, 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(payload) };
    }
    return new Promise<KubeResponse>((resolve, reject) => {
      const request = https.request(`${this.server}${path}`, options, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.once('error', reject);
        response.once('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text === '' ? null : JSON.parse(text);
          } catch {
            // not JSON (e.g. /readyz): keep the text
          }
          const header = response.headers.warning;
          const warnings = header === undefined ? [] : Array.isArray(header) ? header : [header];
          resolve({ status: response.statusCode ?? 0, body: parsed, text, warnings });
        });
      });
      request.once('error', reject);
      request.setTimeout(30_000, () => request.destroy(new Error(`${method} ${path}: timed out`)));
      request.end(payload);
    });
  }

  /** A request that must succeed (2xx): returns the parsed body, or throws {@link KubeApiError}. */
  async call<T = unknown>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    const response = await this.request(method, path, body, contentType);
    if (response.status < 200 || response.status >= 300) throw new KubeApiError(method, path, response.status, response.text);
    return response.body as T;
  }

  /** GET that returns null on 404. */
  async getOrNull<T = unknown>(path: string): Promise<T | null> {
    const response = await this.request('GET', path);
    if (response.status === 404) return null;
    if (response.status < 200 || response.status >= 300) throw new KubeApiError('GET', path, response.status, response.text);
    return response.body as T;
  }

  /** The REST path of an object (or of its collection when it has no name), found through discovery. */
  async objectPath(object: KubeObject): Promise<string> {
    const apiVersion = object.apiVersion ?? 'v1';
    const kind = object.kind;
    if (kind === undefined) throw new Error('Object without kind');
    const resource = await this.resource(apiVersion, kind);
    const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const namespace = object.metadata?.namespace;
    if (resource.namespaced && (namespace === undefined || namespace === '')) {
      throw new Error(`${kind} ${object.metadata?.name ?? ''} is namespaced but has no namespace`);
    }
    const parts = [base];
    if (resource.namespaced) parts.push('namespaces', encodeURIComponent(namespace!));
    parts.push(resource.name);
    if (object.metadata?.name !== undefined) parts.push(encodeURIComponent(object.metadata.name));
    return parts.join('/');
  }

  /**
   * Create-or-update by server-side apply (force, strict field validation: unknown or duplicate
   * fields are errors, as `kubectl apply --server-side --validate=strict`).
   */
  async apply<T extends KubeObject>(object: T, options: { fieldManager?: string; onWarning?: (warning: string) => void } = {}): Promise<T> {
    const path = await this.objectPath(object);
    const query = `fieldManager=${encodeURIComponent(options.fieldManager ?? 'devpocket-testbed')}&force=true&fieldValidation=Strict`;
    const response = await this.request('PATCH', `${path}?${query}`, object, 'application/apply-patch+yaml');
    if (response.status < 200 || response.status >= 300) throw new KubeApiError('PATCH', path, response.status, response.text);
    for (const warning of response.warnings) options.onWarning?.(warning);
    return response.body as T;
  }

  /** Deletes an object (only that exact object with the uid/resourceVersion preconditions); true when it was deleted. */
  async delete(
    object: KubeObject,
    options: { gracePeriodSeconds?: number; uid?: string; resourceVersion?: string } = {},
  ): Promise<boolean> {
    const path = await this.objectPath(object);
    const body: Record<string, unknown> = { apiVersion: 'v1', kind: 'DeleteOptions' };
    if (options.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = options.gracePeriodSeconds;
    if (options.uid !== undefined || options.resourceVersion !== undefined) {
      body.preconditions = { uid: options.uid, resourceVersion: options.resourceVersion };
    }
    const response = await this.request('DELETE', path, body);
    if (response.status === 404 || response.status === 409) return false;
    if (response.status < 200 || response.status >= 300) throw new KubeApiError('DELETE', path, response.status, response.text);
    return true;
  }

  private async resource(apiVersion: string, kind: string): Promise<ApiResource> {
    const cached = this.discovery.get(apiVersion)?.get(kind);
    if (cached !== undefined) return cached;
    const path = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const list = await this.call<{ resources?: { name: string; kind: string; namespaced: boolean }[] }>('GET', path);
    const byKind = new Map<string, ApiResource>();
    for (const resource of list.resources ?? []) {
      if (!resource.name.includes('/')) byKind.set(resource.kind, { name: resource.name, namespaced: resource.namespaced });
    }
    this.discovery.set(apiVersion, byKind);
    const found = byKind.get(kind);
    if (found === undefined) throw new Error(`The API server does not serve ${kind} in ${apiVersion}`);
    return found;
  }
}
