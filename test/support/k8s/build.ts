/**
 * The binaries of the test cluster: built by tools/k8s-testbed/build.sh from the Go module proxy
 * (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kine, kwok, crictl, plus kwok's CRDs
 * and Stages)
 * into `${DEVPOCKET_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/devpocket}/k8s-testbed/<hash>/`, where
 * <hash> covers every file under tools/k8s-testbed: changing any of them rebuilds, nothing else does.
 * Concurrent callers (test workers, `npm run setup`) share one build through a lock directory.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export type TestbedLog = (line: string) => void;

/** What tools/k8s-testbed/build.sh produces. */
export interface TestbedBinaries {
  /** The cache directory holding everything below. */
  dir: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  /** The real node's kubelet (./real-node.ts). */
  kubelet: string;
  kine: string;
  kwok: string;
  /** The CRI command line, for the real node's teardown. */
  crictl: string;
  /** kwok's CustomResourceDefinitions (kustomize/crd/bases of its module). */
  kwokCrdDir: string;
  /** kwok's Stage directories, by their path under kustomize/stage (e.g. `pod/general`). */
  kwokStageDirs: Record<KwokStageSet, string>;
}

export type KwokStageSet = 'node/fast' | 'node/heartbeat-with-lease' | 'pod/general' | 'volume/fast';
const STAGE_SETS: readonly KwokStageSet[] = ['node/fast', 'node/heartbeat-with-lease', 'pod/general', 'volume/fast'];

export class GoNotFoundError extends Error {
  constructor() {
    super(
      'Go (>= 1.26) is required to build the Kubernetes test cluster (tools/k8s-testbed): install it ' +
        '(https://go.dev/dl/, or /usr/local/go/bin/go) and run `npm run setup`, or point the suites at a real cluster',
    );
    this.name = 'GoNotFoundError';
  }
}

const HASH_LENGTH = 16;
/** A build lock older than this is considered abandoned (a cold build takes about 6 minutes). */
const STALE_LOCK_MS = 30 * 60_000;
const EXTRA_GO_LOCATIONS: readonly string[] = ['/usr/local/go/bin/go'];

/** The repository root: the directory above this file that holds package.json. */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('Cannot find the repository root (package.json)');
    dir = parent;
  }
}

export function testbedSourceDir(): string {
  return path.join(repoRoot(), 'tools', 'k8s-testbed');
}

/** `${DEVPOCKET_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/devpocket}`. */
export function devpocketCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return nonEmpty(env.DEVPOCKET_CACHE_DIR) ?? path.join(nonEmpty(env.XDG_CACHE_HOME) ?? path.join(os.homedir(), '.cache'), 'devpocket');
}

export function testbedCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(devpocketCacheDir(env), 'k8s-testbed');
}

/** sha256 over the relative paths and contents of every file under tools/k8s-testbed. */
export async function hashTestbedSources(sourceDir: string = testbedSourceDir()): Promise<string> {
  const files = (await listFiles(sourceDir)).sort();
  const hash = createHash('sha256');
  for (const file of files) {
    hash.update(`${path.relative(sourceDir, file)}\0`);
    hash.update(await fs.readFile(file));
    hash.update('\0');
  }
  return hash.digest('hex').slice(0, HASH_LENGTH);
}

/** Returns the cached binaries for the current sources, building them first when missing. */
export async function ensureTestbedBinaries(log: TestbedLog = (line) => process.stderr.write(`${line}\n`)): Promise<TestbedBinaries> {
  const sourceDir = testbedSourceDir();
  const hash = await hashTestbedSources(sourceDir);
  const cacheRoot = testbedCacheRoot();
  const target = path.join(cacheRoot, hash);
  if (existsSync(target)) return binariesIn(target);

  const built = await buildOnce(target, log, 'the test cluster binaries', async (temporary) => {
    const go = await findGo();
    if (go === null) throw new GoNotFoundError();
    const buildLog = `${target}.build.log`;
    log(
      `k8s-testbed: building the test cluster binaries (${go}); about 6 minutes on two cores when Go's caches are cold. Log: ${buildLog}`,
    );
    const code = await runLogged('bash', [path.join(sourceDir, 'build.sh'), temporary], sourceDir, buildLog, { GO: go });
    if (code !== 0) {
      const tail = (await fs.readFile(buildLog, 'utf8')).split('\n').slice(-40).join('\n');
      throw new Error(`Building the test cluster (tools/k8s-testbed/build.sh) failed with exit code ${String(code)}:\n${tail}`);
    }
  });
  if (built) await pruneOtherBuilds(cacheRoot, hash);
  return binariesIn(target);
}

/**
 * Makes the cache directory `target` once: `build(temporary)` fills a new directory beside it, which
 * is then renamed to `target`, so a half-made build is never taken for a finished one. Concurrent
 * callers (test workers, `npm run setup`) share one build through the lock directory `${target}.lock`;
 * one older than {@link STALE_LOCK_MS} is taken for abandoned. Resolves with true when this call built it.
 */
export async function buildOnce(
  target: string,
  log: TestbedLog,
  what: string,
  build: (temporary: string) => Promise<void>,
): Promise<boolean> {
  if (existsSync(target)) return false;
  await fs.mkdir(path.dirname(target), { recursive: true });
  const lock = `${target}.lock`;
  for (;;) {
    if (existsSync(target)) return false;
    try {
      await fs.mkdir(lock);
      break;
    } catch (error) {
      if (!isErrno(error, 'EEXIST')) throw error;
      const stat = await fs.stat(lock).catch(() => null);
      if (stat !== null && Date.now() - stat.mtimeMs > STALE_LOCK_MS) {
        log(`k8s-testbed: removing an abandoned build lock ${lock}`);
        await fs.rm(lock, { recursive: true, force: true });
        continue;
      }
      log(`k8s-testbed: another process is building ${what}; waiting…`);
      await delay(2_000);
    }
  }

  try {
    if (existsSync(target)) return false;
    const temporary = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    const started = Date.now();
    try {
      await build(temporary);
      await fs.rename(temporary, target);
    } finally {
      await fs.rm(temporary, { recursive: true, force: true });
    }
    log(`k8s-testbed: built ${what} (${target}) in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    return true;
  } finally {
    await fs.rm(lock, { recursive: true, force: true });
  }
}

/** Builds of older sources (about 450 MB each) are removed once a new one is in place. */
async function pruneOtherBuilds(cacheRoot: string, keep: string): Promise<void> {
  for (const entry of await fs.readdir(cacheRoot)) {
    if (entry.startsWith(keep) || entry.endsWith('.lock') || entry.includes('.tmp-')) continue;
    if (/^[0-9a-f]{16}(\.build\.log)?$/.test(entry)) await fs.rm(path.join(cacheRoot, entry), { recursive: true, force: true });
  }
}

function binariesIn(dir: string): TestbedBinaries {
  const stageDirs = Object.fromEntries(STAGE_SETS.map((set) => [set, path.join(dir, 'kwok-manifests', 'stage', set)])) as Record<
    KwokStageSet,
    string
  >;
  return {
    dir,
    kubeApiserver: path.join(dir, 'kube-apiserver'),
    kubeControllerManager: path.join(dir, 'kube-controller-manager'),
    kubeScheduler: path.join(dir, 'kube-scheduler'),
    kubelet: path.join(dir, 'kubelet'),
    kine: path.join(dir, 'kine'),
    kwok: path.join(dir, 'kwok'),
    crictl: path.join(dir, 'crictl'),
    kwokCrdDir: path.join(dir, 'kwok-manifests', 'crd', 'bases'),
    kwokStageDirs: stageDirs,
  };
}

async function listFiles(dir: string): Promise<string[]> {
  const result: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) result.push(...(await listFiles(full)));
    else if (entry.isFile()) result.push(full);
  }
  return result;
}

async function findGo(): Promise<string | null> {
  for (const command of ['go', ...EXTRA_GO_LOCATIONS]) {
    const code = await runLogged(command, ['version'], process.cwd(), null, {}).catch(() => null);
    if (code === 0) return command;
  }
  return null;
}

/** Runs a command with its output appended to `logFile` (or discarded); resolves with the exit code. */
export function runLogged(
  command: string,
  args: readonly string[],
  cwd: string,
  logFile: string | null,
  extraEnv: NodeJS.ProcessEnv,
): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: { ...process.env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    if (logFile !== null) {
      const out = createWriteStream(logFile, { flags: 'a' });
      child.stdout.pipe(out, { end: false });
      child.stderr.pipe(out, { end: false });
      child.once('close', () => out.end());
    } else {
      child.stdout.resume();
      child.stderr.resume();
    }
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
}

export function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}

export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
