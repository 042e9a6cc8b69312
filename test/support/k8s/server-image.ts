/**
 * The images the server itself runs from on the test cluster's real node (test/kubernetes/in-cluster.e2e-spec.ts),
 * built on this machine like the environment images of ./images.ts, FROM the same Debian base
 * (debootstrap, images/debian-base.sh):
 *
 * - the server, `devpocket/devpocket-server:<hash>` (images/server/build.sh: the Node 24 binary of
 *   the project's `node` npm package, dist/, templates/, the production node_modules). Its hash covers
 *   dist/ and templates/, so every `npm run build` that changes them makes a new image (35–50 s here,
 *   mostly podman copying 370 MB and saving it), and an unchanged tree reuses the cached one;
 * - Redis, `devpocket/redis:<hash>` (images/redis/Containerfile: Debian's redis-server; about 11 s,
 *   downloading the package), rebuilt only when its build file or the base changes.
 *
 * Each is cached as a docker archive in `<cache>/k8s-images/{server,redis}-<hash>/image.tar`
 * (older ones are removed when a new one is in place), and loaded into a running test cluster's
 * containerd by {@link importIntoNode}. Building needs root, podman and the Debian base
 * (`npm run setup` makes all three).
 */
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';

import { buildOnce, repoRoot, type TestbedLog } from './build.js';
import { debianBaseHash, ensureTestImages, hashInputs, IMAGE_REGISTRY, imagesCacheRoot, run, withPodman } from './images.js';

/** Bump when the way these images are made or cached changes. */
const FORMAT = 'server-images/1';
const HASH_LENGTH = 16;

export interface ClusterImage {
  /** As pods name it: `devpocket/<name>:<hash>` (with imagePullPolicy Never). */
  name: string;
  /** A docker archive holding it, for `ctr images import`. */
  archive: string;
}

export interface ServerImages {
  server: ClusterImage;
  redis: ClusterImage;
}

type ImageKind = keyof ServerImages;

/** Returns the cached images of the server (for the current dist/) and of Redis, building what is missing. */
export async function ensureServerImages(log: TestbedLog = (line) => process.stderr.write(`${line}\n`)): Promise<ServerImages> {
  if (!existsSync(path.join(repoRoot(), 'dist', 'main.js'))) throw new Error('dist/main.js is missing: run `npm run build` first');
  const baseHash = await debianBaseHash();
  const rootfs = path.join(imagesCacheRoot(), `debian-base-${baseHash}`, 'rootfs.tar');
  // The Debian base comes with the real node's images (made by `npm run setup`, or here when missing).
  if (!existsSync(rootfs)) await ensureTestImages(log);
  const builtFiles = [...(await filesUnder('dist')), ...(await filesUnder('templates'))];
  const hashes: Record<ImageKind, string> = {
    redis: await hashInputs([FORMAT, 'redis', baseHash], ['images/redis/Containerfile']),
    server: await hashInputs(
      [FORMAT, 'server', baseHash],
      [
        'images/server/Containerfile',
        'images/server/build.sh',
        'package.json',
        'package-lock.json',
        'node_modules/node/package.json',
        ...builtFiles,
      ],
    ),
  };
  const images = {} as ServerImages;
  for (const kind of ['redis', 'server'] as const) {
    const hash = hashes[kind].slice(0, HASH_LENGTH);
    const target = path.join(imagesCacheRoot(), `${kind}-${hash}`);
    const image: ClusterImage = {
      name: `devpocket/${kind === 'server' ? 'devpocket-server' : 'redis'}:${hash}`,
      archive: path.join(target, 'image.tar'),
    };
    const built = await buildOnce(target, log, `the ${kind} image`, (temporary) =>
      buildImage(kind, image.name, rootfs, baseHash, temporary, `${target}.build.log`),
    );
    if (built) await pruneOthers(kind, hash);
    images[kind] = image;
  }
  return images;
}

/** Loads an image archive into a running containerd (the real node's, through its socket), for the CRI's namespace. */
export async function importIntoNode(containerdSocket: string, image: ClusterImage, logFile: string): Promise<void> {
  await run('ctr', ['--address', containerdSocket, '--namespace', 'k8s.io', 'images', 'import', image.archive], logFile);
}

async function buildImage(kind: ImageKind, name: string, rootfs: string, baseHash: string, out: string, buildLog: string): Promise<void> {
  await fs.mkdir(out, { recursive: true });
  // The CRI reads a name without a registry as Docker Hub's: built and saved under that name.
  const fullName = `${IMAGE_REGISTRY}/${name.slice('devpocket/'.length)}`;
  await withPodman(rootfs, baseHash, buildLog, async (env, base) => {
    if (kind === 'server') {
      const script = path.join(repoRoot(), 'images', 'server', 'build.sh');
      await run('bash', [script, '--engine', 'podman', '--base', base, '--tag', fullName, '--', '--network=host'], buildLog, env);
    } else {
      const file = path.join(repoRoot(), 'images', 'redis', 'Containerfile');
      const args = ['build', '--network=host', '--file', file, '--build-arg', `BASE=${base}`, '--tag', fullName, path.dirname(file)];
      await run('podman', args, buildLog, env);
    }
    await run('podman', ['save', '--format', 'docker-archive', '--output', path.join(out, 'image.tar'), fullName], buildLog, env);
  });
}

/** Older builds of the same kind (about 460 MB for the server) go once a new one is in place. */
async function pruneOthers(kind: ImageKind, keep: string): Promise<void> {
  const cacheRoot = imagesCacheRoot();
  const pattern = new RegExp(`^${kind}-[0-9a-f]{${String(HASH_LENGTH)}}(\\.build\\.log)?$`);
  for (const entry of await fs.readdir(cacheRoot)) {
    if (pattern.test(entry) && !entry.startsWith(`${kind}-${keep}`))
      await fs.rm(path.join(cacheRoot, entry), { recursive: true, force: true });
  }
}

/** Every file under a directory of the repository, relative to it, sorted. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await fs.readdir(path.join(repoRoot(), dir), { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(repoRoot(), path.join(entry.parentPath, entry.name)))
    .sort();
}
