/**
 * The images of the test cluster's real node (./real-node.ts), built on this machine, since no
 * image registry can be reached from it:
 *
 * 1. a Debian bookworm root file system made by images/debian-base.sh (debootstrap, from Debian's
 *    packages; about 50 s), cached as `<cache>/k8s-images/debian-base-<hash>/rootfs.tar`;
 * 2. `podman import` turns it into the base image, FROM which images/build.sh builds the
 *    environment images of the templates in {@link BUILT_TEMPLATES} (their build files'
 *    production bases are the templates' upstream images; here every one is FROM the local base),
 *    plus the pod sandbox ("pause") image: catatonit in pause mode, as podman's own pause image;
 * 3. `podman save --format docker-archive` exports them into one archive, and
 *    `ctr -n k8s.io images import` loads that into a containerd root kept in the cache, which every
 *    test cluster copies with hard links (a private root per cluster in a fraction of a second;
 *    importing and unpacking afresh takes about 10 s here, mostly waiting for the disk).
 *
 * Everything lands in `<cache>/k8s-images/<hash>/`, where <hash> covers the inputs (images/, the
 * installed containerd's version): a warm setup rebuilds nothing. Podman runs with a storage and
 * configuration of its own under a temporary directory, removed afterwards; RUN steps use the host's
 * network (no CNI network, bridge or NAT rule of podman's is ever made). Building needs root and the
 * Debian packages debootstrap, podman, buildah, containerd, runc and catatonit (`npm run setup`).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { buildOnce, devpocketCacheDir, repoRoot, runLogged, type TestbedLog } from './build.js';
import { spawnManaged, stopManaged } from './processes.js';

/** The templates whose environment images the tests build (the others' build files are built by installations). */
export const BUILT_TEMPLATES = ['debian', 'python'] as const;
export type BuiltTemplate = (typeof BUILT_TEMPLATES)[number];

/**
 * The images' names as templates and pods give them: `devpocket/env-<template>:1`. The CRI reads a
 * name without a registry as Docker Hub's, so they are built and imported as `docker.io/devpocket/…`.
 */
export const IMAGE_TAG = '1';
export const IMAGE_REGISTRY = 'docker.io/devpocket';
export function environmentImage(template: string): string {
  return `devpocket/env-${template}:${IMAGE_TAG}`;
}
/** containerd's CRI `sandbox_image`. */
export const PAUSE_IMAGE = `${IMAGE_REGISTRY}/testbed-pause:${IMAGE_TAG}`;

/** Bump when the layout of the cache or the way images are made here changes. */
const FORMAT = 'k8s-images/1';
const HASH_LENGTH = 16;

export interface TestImages {
  /** The cache directory of this set of images. */
  dir: string;
  /** Every image in one docker archive (`podman save -m --format docker-archive`). */
  archive: string;
  /** A containerd root with the archive imported and unpacked (overlayfs), for {@link copyContainerdRoot}. */
  containerdRoot: string;
  pauseImage: string;
  /** The environment images, by template, as pods name them (`devpocket/env-debian:1`). */
  environments: Record<BuiltTemplate, string>;
}

/** Debian packages for the commands the images need: command → package. */
const BUILD_COMMANDS: Record<string, string> = {
  debootstrap: 'debootstrap',
  podman: 'podman',
  buildah: 'buildah',
  containerd: 'containerd',
  ctr: 'containerd',
  runc: 'runc',
  catatonit: 'catatonit',
};

export class TestImagesUnavailableError extends Error {
  constructor(problems: readonly string[]) {
    super(`The real node's images cannot be built on this machine: ${problems.join('; ')}. Run \`npm run setup\` (as root).`);
    this.name = 'TestImagesUnavailableError';
  }
}

export function imagesCacheRoot(): string {
  return path.join(devpocketCacheDir(), 'k8s-images');
}

/** Returns the cached images for the current inputs, building them first when missing. */
export async function ensureTestImages(log: TestbedLog = (line) => process.stderr.write(`${line}\n`)): Promise<TestImages> {
  const cacheRoot = imagesCacheRoot();
  const baseHash = await debianBaseHash();
  const containerdVersion = await commandOutput('containerd', ['--version']);
  const hash = await hashInputs(
    [FORMAT, baseHash, containerdVersion ?? 'containerd missing', ...BUILT_TEMPLATES],
    ['images/build.sh', 'images/prepare.sh', ...BUILT_TEMPLATES.map((template) => `images/${template}/Containerfile`)],
  );
  const target = path.join(cacheRoot, hash);
  if (existsSync(target)) return imagesIn(target);

  const problems = await buildProblems();
  if (problems.length > 0) throw new TestImagesUnavailableError(problems);
  const baseDir = path.join(cacheRoot, `debian-base-${baseHash}`);
  const buildLog = `${target}.build.log`;
  await fs.mkdir(cacheRoot, { recursive: true });

  const builtBase = await buildOnce(baseDir, log, 'the Debian base (debootstrap)', async (temporary) => {
    log(`k8s-testbed: making a Debian bookworm root file system with debootstrap (about a minute). Log: ${buildLog}`);
    await fs.mkdir(temporary, { recursive: true });
    await run('bash', [path.join(repoRoot(), 'images', 'debian-base.sh'), path.join(temporary, 'rootfs.tar')], buildLog);
  });
  const built = await buildOnce(target, log, 'the real node images', async (temporary) => {
    log(`k8s-testbed: building the images ${[PAUSE_IMAGE, ...BUILT_TEMPLATES.map(environmentImage)].join(', ')}. Log: ${buildLog}`);
    await buildImages(temporary, path.join(baseDir, 'rootfs.tar'), baseHash, buildLog);
  });
  if (built || builtBase) await pruneOthers(cacheRoot, [hash, `debian-base-${baseHash}`]);
  return imagesIn(target);
}

/** The hash of the Debian base's inputs: its rootfs.tar is `<cache>/k8s-images/debian-base-<hash>/` once {@link ensureTestImages} ran. */
export function debianBaseHash(): Promise<string> {
  return hashInputs([FORMAT], ['images/debian-base.sh']);
}

/**
 * Gives a test cluster's containerd a root of its own with the images in it: hard links to the
 * cached root (the content and the unpacked layers are never written to in place), and real copies of
 * the two bolt databases, which are. Copies everything when hard links cannot be made (another file system).
 */
export async function copyContainerdRoot(images: TestImages, target: string): Promise<void> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  if ((await runLogged('cp', ['-al', images.containerdRoot, target], '/', null, {})) !== 0) {
    await fs.rm(target, { recursive: true, force: true });
    if ((await runLogged('cp', ['-a', images.containerdRoot, target], '/', null, {})) !== 0) {
      throw new Error(`Could not copy the containerd root ${images.containerdRoot} to ${target}`);
    }
    return;
  }
  for (const database of await findFiles(images.containerdRoot, (name) => name.endsWith('.db'))) {
    const copy = path.join(target, path.relative(images.containerdRoot, database));
    await fs.rm(copy, { force: true });
    await fs.copyFile(database, copy);
  }
}

// ---- building ------------------------------------------------------------------------------

async function buildImages(out: string, rootfs: string, baseHash: string, buildLog: string): Promise<void> {
  await fs.mkdir(out, { recursive: true });
  await withPodman(rootfs, baseHash, buildLog, async (env, base, work) => {
    // The pod sandbox image: catatonit (static) in pause mode, like podman's own pause image.
    const pauseContext = path.join(work, 'pause');
    await fs.mkdir(pauseContext);
    await fs.copyFile((await which('catatonit'))!, path.join(pauseContext, 'catatonit'));
    await fs.writeFile(
      path.join(pauseContext, 'Containerfile'),
      'FROM scratch\nCOPY catatonit /catatonit\nENTRYPOINT ["/catatonit", "-P"]\n',
    );
    await run('podman', ['build', '--network=host', '--tag', PAUSE_IMAGE, pauseContext], buildLog, env);

    await run(
      'bash',
      [
        path.join(repoRoot(), 'images', 'build.sh'),
        '--engine',
        'podman',
        '--registry',
        IMAGE_REGISTRY,
        '--tag',
        IMAGE_TAG,
        '--base',
        base,
        ...BUILT_TEMPLATES,
        '--',
        '--network=host',
      ],
      buildLog,
      env,
    );
    const archive = path.join(out, 'images.tar');
    const names = [PAUSE_IMAGE, ...BUILT_TEMPLATES.map((template) => `${IMAGE_REGISTRY}/env-${template}:${IMAGE_TAG}`)];
    await run('podman', ['save', '--multi-image-archive', '--format', 'docker-archive', '--output', archive, ...names], buildLog, env);
    await importIntoContainerd(archive, path.join(out, 'containerd-root'), work, buildLog);
  });
}

/**
 * Runs `build` with a podman of its own ({@link podmanEnvironment}: `env`) in a new directory `work`,
 * with the Debian base `rootfs` imported as the image `base`; then removes everything podman made.
 */
export async function withPodman<T>(
  rootfs: string,
  baseHash: string,
  buildLog: string,
  build: (env: NodeJS.ProcessEnv, base: string, work: string) => Promise<T>,
): Promise<T> {
  // Podman's storage and run state, containerd's state and socket: short paths, removed at the end.
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'dpk-images-'));
  // containers/image keeps a blob cache under /var/lib/containers for root whatever the storage, and
  // buildah runs RUN steps with runc's default state directory /run/runc: removed when they are new.
  const hostDirs = ['/var/lib/containers', '/run/runc'].filter((dir) => !existsSync(dir));
  const env = await podmanEnvironment(work);
  try {
    const base = `localhost/devpocket/debian-base:${baseHash}`;
    await run('podman', ['import', '--change', 'CMD ["/bin/bash"]', rootfs, base], buildLog, env);
    return await build(env, base, work);
  } finally {
    await removeTree(work);
    for (const dir of hostDirs) await fs.rm(dir, { recursive: true, force: true });
  }
}

/** Podman with a storage, run directory and configuration of its own (the settings this host needs). */
async function podmanEnvironment(work: string): Promise<NodeJS.ProcessEnv> {
  const storageConf = path.join(work, 'storage.conf');
  const containersConf = path.join(work, 'containers.conf');
  await fs.writeFile(
    storageConf,
    ['[storage]', 'driver = "overlay"', `runroot = "${work}/run"`, `graphroot = "${work}/storage"`, ''].join('\n'),
  );
  await fs.writeFile(
    containersConf,
    [
      '[containers]',
      // Root here lacks CAP_SYS_RESOURCE: podman's default rlimits cannot be had.
      'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
      '[engine]',
      // crun refuses this host's hybrid cgroups; no systemd.
      'runtime = "runc"',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `tmp_dir = "${work}/tmp"`,
      '',
    ].join('\n'),
  );
  return { CONTAINERS_STORAGE_CONF: storageConf, CONTAINERS_CONF: containersConf, TMPDIR: work };
}

/** A containerd of its own (no CRI) loads the archive into `root`, then stops. */
async function importIntoContainerd(archive: string, root: string, work: string, buildLog: string): Promise<void> {
  const socket = path.join(work, 'containerd.sock');
  const config = path.join(work, 'containerd.toml');
  await fs.writeFile(
    config,
    [
      'version = 2',
      `root = "${root}"`,
      `state = "${work}/containerd-state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${socket}"`,
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = "${work}/containerd-opt"`,
      '',
    ].join('\n'),
  );
  const containerd = spawnManaged({
    name: 'containerd',
    command: 'containerd',
    args: ['--config', config],
    logFile: buildLog,
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
    cwd: work,
  });
  try {
    const deadline = Date.now() + 30_000;
    while ((await runLogged('ctr', ['--address', socket, 'version'], work, null, {})) !== 0) {
      if (containerd.exitCode !== undefined) throw new Error(`containerd exited while importing the images (log: ${buildLog})`);
      if (Date.now() > deadline) throw new Error(`containerd did not answer within 30 s (log: ${buildLog})`);
      await delay(100);
    }
    await run('ctr', ['--address', socket, '--namespace', 'k8s.io', 'images', 'import', '--snapshotter', 'overlayfs', archive], buildLog);
  } finally {
    await stopManaged(containerd);
  }
}

async function buildProblems(): Promise<string[]> {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push('building them needs root');
  const missing = new Set<string>();
  for (const [command, pkg] of Object.entries(BUILD_COMMANDS)) if ((await which(command)) === null) missing.add(pkg);
  if (missing.size > 0) problems.push(`missing Debian packages: ${[...missing].join(', ')}`);
  return problems;
}

function imagesIn(dir: string): TestImages {
  const environments = Object.fromEntries(BUILT_TEMPLATES.map((template) => [template, environmentImage(template)])) as Record<
    BuiltTemplate,
    string
  >;
  return {
    dir,
    archive: path.join(dir, 'images.tar'),
    containerdRoot: path.join(dir, 'containerd-root'),
    pauseImage: PAUSE_IMAGE,
    environments,
  };
}

/** Sets of older inputs (about 1.4 GB each, with their base) are removed once a new one is in place. */
async function pruneOthers(cacheRoot: string, keep: readonly string[]): Promise<void> {
  for (const entry of await fs.readdir(cacheRoot)) {
    if (keep.some((name) => entry.startsWith(name)) || entry.endsWith('.lock') || entry.includes('.tmp-')) continue;
    if (/^(debian-base-)?[0-9a-f]{16}(\.build\.log)?$/.test(entry))
      await fs.rm(path.join(cacheRoot, entry), { recursive: true, force: true });
  }
}

export async function hashInputs(values: readonly string[], files: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const value of values) hash.update(`${value}\0`);
  for (const file of files) {
    hash.update(`${file}\0`);
    hash.update(await fs.readFile(path.join(repoRoot(), file)));
    hash.update('\0');
  }
  return hash.digest('hex').slice(0, HASH_LENGTH);
}

// ---- helpers -------------------------------------------------------------------------------

/** Runs a command with its output appended to `logFile`; throws with the log's tail when it fails. */
export async function run(command: string, args: readonly string[], logFile: string, env: NodeJS.ProcessEnv = {}): Promise<void> {
  await fs.appendFile(logFile, `$ ${command} ${args.join(' ')}\n`);
  const code = await runLogged(command, args, repoRoot(), logFile, env);
  if (code !== 0) {
    const tail = (await fs.readFile(logFile, 'utf8')).split('\n').slice(-30).join('\n');
    throw new Error(`${command} ${args.join(' ')} failed with exit code ${String(code)} (log: ${logFile}):\n${tail}`);
  }
}

/** The first line a command prints, or null when it cannot be run. */
async function commandOutput(command: string, args: readonly string[]): Promise<string | null> {
  const file = await which(command);
  if (file === null) return null;
  return new Promise((resolve) => {
    execFile(file, args, (error, stdout) => resolve(error === null ? stdout.split('\n')[0].trim() : null));
  });
}

/** The path of a command on PATH (plus the sbin directories root has), or null. */
export async function which(command: string): Promise<string | null> {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin'].filter((dir) => dir !== '');
  for (const dir of dirs) {
    const file = path.join(dir, command);
    try {
      await fs.access(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

async function findFiles(dir: string, match: (name: string) => boolean): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await findFiles(full, match)));
    else if (entry.isFile() && match(entry.name)) found.push(full);
  }
  return found;
}

/** Unmounts whatever is still mounted under `dir` (podman's overlay storage), then removes it. */
export async function removeTree(dir: string): Promise<void> {
  for (const mountpoint of await mountsUnder(dir)) {
    if ((await runLogged('umount', [mountpoint], '/', null, {})) !== 0) await runLogged('umount', ['-l', mountpoint], '/', null, {});
  }
  await fs.rm(dir, { recursive: true, force: true });
}

/** Mount points at or under `dir`, deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const text = await fs.readFile('/proc/self/mountinfo', 'utf8');
  const points = text
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined && (point === dir || point.startsWith(`${dir}/`)));
  return [...new Set(points)].sort().reverse();
}
