/**
 * The fault-injecting Kubernetes API proxy (test/support/k8s/fault-proxy.ts) driven by
 * @kubernetes/client-node (KubeConfig/makeApiClient, Watch, Exec) through kubeconfigThrough(), against
 * the stand-in apiserver of test/support/k8s/fault-proxy-upstream.ts, so the runtime provider's tests
 * can rely on that path.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';

import {
  ApiException,
  CoreV1Api,
  Exec,
  KubeConfig,
  Observable,
  Watch,
  type ConfigurationOptions,
  type RequestContext,
  type ResponseContext,
  type V1Pod,
  type V1Status,
} from '@kubernetes/client-node';

import { eventually } from '../support/eventually.js';
import { kubeconfigThrough, startFaultProxy, upstreamFromKubeConfig, type FaultProxy } from '../support/k8s/fault-proxy.js';
import { hasOpenssl, PODS, startUpstream, TOKEN, type Upstream } from '../support/k8s/fault-proxy-upstream.js';

describe.skipIf(!hasOpenssl)('fault proxy with @kubernetes/client-node over http://', () => {
  let dir: string;
  let upstream: Upstream;
  let source: KubeConfig;
  let kc: KubeConfig;
  let viaKubeconfig: FaultProxy;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fault-proxy-'));
    upstream = await startUpstream(dir);
    source = new KubeConfig();
    source.loadFromOptions({
      clusters: [{ name: 'up', server: upstream.url, caData: upstream.ca.toString('base64'), skipTLSVerify: false }],
      users: [{ name: 'me', token: TOKEN }],
      contexts: [{ name: 'ctx', cluster: 'up', user: 'me', namespace: 'default' }],
      currentContext: 'ctx',
    });
    viaKubeconfig = await startFaultProxy(upstreamFromKubeConfig(source));
    kc = kubeconfigThrough(viaKubeconfig, source);
  });

  afterAll(async () => {
    await viaKubeconfig?.close();
    await upstream?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    viaKubeconfig.clear();
    viaKubeconfig.dropStreams();
    viaKubeconfig.resetLog();
    upstream.hits = [];
  });

  /** Per-call options that abort a request after `ms` (client-node has no timeout setting of its own). */
  function timeout(ms: number): ConfigurationOptions {
    return {
      middleware: [
        {
          pre: (context: RequestContext) => {
            context.setSignal(AbortSignal.timeout(ms));
            return new Observable(Promise.resolve(context));
          },
          post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
        },
      ],
      middlewareMergeStrategy: 'append',
    };
  }

  it('kubeconfigThrough() points the current cluster at the proxy and keeps the token; the source is untouched', () => {
    expect(kc.getCurrentCluster()).toEqual({ name: 'up', server: viaKubeconfig.url, skipTLSVerify: true });
    expect(kc.getCurrentUser()).toEqual({ name: 'me', token: TOKEN });
    expect(kc.getCurrentContext()).toBe('ctx');
    expect(kc.getContextObject('ctx')?.namespace).toBe('default');
    expect(source.getCurrentCluster()?.server).toBe(upstream.url);

    const file = join(dir, 'kubeconfig.json');
    writeFileSync(file, source.exportConfig());
    expect(kubeconfigThrough(viaKubeconfig, file).getCurrentCluster()?.server).toBe(viaKubeconfig.url);
    expect(upstreamFromKubeConfig(file)).toMatchObject({ upstream: upstream.url, rejectUnauthorized: true });
  });

  it('client-node refuses an http:// server unless skipTLSVerify is set (which kubeconfigThrough does)', async () => {
    const strict = new KubeConfig();
    strict.loadFromOptions({
      clusters: [{ name: 'p', server: viaKubeconfig.url, skipTLSVerify: false }],
      users: [{ name: 'me', token: TOKEN }],
      contexts: [{ name: 'c', cluster: 'p', user: 'me' }],
      currentContext: 'c',
    });
    await expect(strict.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: 'default' })).rejects.toThrow(
      'HTTP protocol is not allowed when skipTLSVerify is not set or false',
    );
    expect(viaKubeconfig.requests()).toEqual([]);
  });

  it('makeApiClient: calls pass through, injected 503s surface as ApiException, a hang needs a client-side timeout', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const list = await core.listNamespacedPod({ namespace: 'default' });
    expect(list.items.map((p) => p.metadata?.name)).toEqual(['pod-a']);
    expect(viaKubeconfig.requests()).toMatchObject([{ method: 'GET', path: PODS, status: 200 }]);

    viaKubeconfig.fail({ path: /\/pods$/ }, { status: 503, times: 1 });
    const failure = await core.listNamespacedPod({ namespace: 'default' }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ApiException);
    expect((failure as ApiException<unknown>).code).toBe(503);
    expect((failure as ApiException<unknown>).body).toContain('"reason":"ServiceUnavailable"');

    viaKubeconfig.hang({ path: /\/pods$/ }, { times: 1 });
    const started = Date.now();
    await expect(core.listNamespacedPod({ namespace: 'default' }, timeout(300))).rejects.toThrow(/abort/i);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(viaKubeconfig.requests({ path: /\/pods$/ }).map((r) => r.status)).toEqual([200, 503, null]);
  });

  it('Watch: events stream through; a dropped watch calls done with an error', async () => {
    const names: string[] = [];
    let resolveDone: (error: unknown) => void = () => undefined;
    const done = new Promise<unknown>((resolve) => (resolveDone = resolve));
    await new Watch(kc).watch(
      PODS,
      {},
      (type: string, pod: V1Pod) => names.push(`${type} ${pod.metadata?.name}`),
      (error: unknown) => resolveDone(error),
    );
    await eventually(() => expect(names.length).toBeGreaterThanOrEqual(2));
    expect(names.slice(0, 2)).toEqual(['ADDED pod-1', 'ADDED pod-2']);
    expect(viaKubeconfig.streams()).toMatchObject([{ kind: 'watch', path: `${PODS}?watch=true` }]);
    expect(upstream.hits.at(-1)?.headers.authorization).toBe(`Bearer ${TOKEN}`);

    expect(viaKubeconfig.dropStreams({ path: /watch=true/ })).toBe(1);
    const error = await done;
    expect(error).toBeInstanceOf(Error);
    // client-node 2 reads watches with undici's fetch, which reports a cut body as "terminated"
    // (client-node 1's node-fetch said "Premature close").
    expect(String(error)).toMatch(/terminated|premature close/i);
    await eventually(() => expect(upstream.openStreams).toBe(0));
  });

  it('Exec: stdin/stdout and the status go through the WebSocket; a dropped exec closes it', async () => {
    const exec = new Exec(kc);
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    let output = '';
    stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    let status: V1Status | null = null;
    const conn = await exec.exec('default', 'pod-a', 'main', ['cat'], stdout, null, stdin, false, (s) => (status = s));
    expect(conn.protocol).toBe('v5.channel.k8s.io');
    stdin.write('hello\n');
    await eventually(() => expect(output).toBe('hello\n'));
    stdin.end();
    await eventually(() => expect(status).toMatchObject({ status: 'Success' }));
    expect(viaKubeconfig.requests({ path: /\/exec\?/ })).toMatchObject([{ status: 101, upgrade: true }]);

    const second = await exec.exec('default', 'pod-a', 'main', ['cat'], new PassThrough(), null, new PassThrough(), false);
    const closed = new Promise<number>((resolve) => second.on('close', (code: number) => resolve(code)));
    await eventually(() => expect(viaKubeconfig.streams({ path: /\/exec\?/ })).toHaveLength(1));
    expect(viaKubeconfig.dropStreams({ path: /\/exec\?/ })).toBe(1);
    expect(await closed).toBe(1006);
  });
});
