import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { guardChildStdio } from '../../common/process/child-stdio.js';

/** Receives human-readable progress messages. */
export type LauncherLog = (message: string) => void;

/** Thrown when no Go toolchain can be found to build tools/devdb. */
export class GoNotFoundError extends Error {
  constructor() {
    super('Go is required to build the embedded database (tools/devdb); ' + 'install Go ≥ 1.24 or set MONGODB_URI to an existing MongoDB');
    this.name = 'GoNotFoundError';
  }
}

interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface GoToolchain {
  command: string;
  version: string;
}

/** Where `go` is looked for after PATH (the official tarball's default location). */
const EXTRA_GO_LOCATIONS: readonly string[] = ['/usr/local/go/bin/go'];

const SOURCE_HASH_LENGTH = 16;
const TOOLCHAIN_HASH_LENGTH = 8;

/** Directory of this module (src/database/launcher when run from sources, dist/… when compiled). */
function moduleDir(): string {
  return path.dirname(fileURLToPath(import.meta.url));
}

/** Walks up from `startDir` to the directory that contains package.json (the repository root). */
export function findRepoRoot(startDir: string = moduleDir()): string {
  let dir = path.resolve(startDir);
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) {
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new Error(`Cannot find the repository root (package.json) above ${startDir}`);
    }
    dir = parent;
  }
}

/** Directory holding the Go sources of the embedded database. */
export function devdbSourceDir(repoRoot: string = findRepoRoot()): string {
  return path.join(repoRoot, 'tools', 'devdb');
}

/** `${DEVPOCKET_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/devpocket}/devdb`. */
export function devdbCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base =
    nonEmpty(env.DEVPOCKET_CACHE_DIR) ?? path.join(nonEmpty(env.XDG_CACHE_HOME) ?? path.join(os.homedir(), '.cache'), 'devpocket');
  return path.join(base, 'devdb');
}

/**
 * Returns the path of the devdb binary for the current sources and Go toolchain,
 * building it into the cache directory first when it is missing.
 *
 * When Go is unavailable, a binary previously built from the same sources (by any
 * Go version) is returned; without one, a {@link GoNotFoundError} is thrown.
 */
export async function ensureDevdbBinary(log: LauncherLog = defaultLog): Promise<string> {
  const sourceDir = devdbSourceDir();
  const cacheDir = devdbCacheDir();
  const sourceHash = await hashSources(sourceDir);

  const go = await findGo();
  if (go === null) {
    const cached = await findCachedBinary(cacheDir, sourceHash);
    if (cached === null) {
      throw new GoNotFoundError();
    }
    log(`Go not found; using the cached embedded database binary ${cached}`);
    return cached;
  }

  const binary = path.join(cacheDir, binaryName(sourceHash, go.version));
  if (await isFile(binary)) {
    return binary;
  }

  await buildBinary(go, sourceDir, binary, log);
  return binary;
}

/** A cached binary built from the given sources by any Go version, or null. */
export async function findCachedBinary(cacheDir: string, sourceHash: string): Promise<string | null> {
  let entries: string[];
  try {
    entries = await fs.readdir(cacheDir);
  } catch {
    return null;
  }

  const prefix = `devdb-${sourceHash}-`;
  const candidates = entries.filter((name) => name.startsWith(prefix) && !name.includes('.tmp-'));
  for (const name of candidates.sort()) {
    const file = path.join(cacheDir, name);
    if (await isFile(file)) {
      return file;
    }
  }
  return null;
}

/** sha256 over go.mod, go.sum and the non-test *.go files of tools/devdb (names and contents), truncated. */
export async function hashSources(sourceDir: string): Promise<string> {
  const entries = await fs.readdir(sourceDir);
  const files = entries.filter(isBinarySource).sort();
  if (!files.includes('go.mod')) {
    throw new Error(`${sourceDir} does not contain go.mod`);
  }

  const hash = createHash('sha256');
  for (const name of files) {
    hash.update(`${name}\0`);
    hash.update(await fs.readFile(path.join(sourceDir, name)));
    hash.update('\0');
  }
  return hash.digest('hex').slice(0, SOURCE_HASH_LENGTH);
}

/** Files that go into the binary: tests do not. */
function isBinarySource(name: string): boolean {
  return name === 'go.mod' || name === 'go.sum' || (name.endsWith('.go') && !name.endsWith('_test.go'));
}

function binaryName(sourceHash: string, goVersion: string): string {
  const toolchainHash = createHash('sha256').update(goVersion).digest('hex').slice(0, TOOLCHAIN_HASH_LENGTH);
  const extension = process.platform === 'win32' ? '.exe' : '';
  return `devdb-${sourceHash}-${toolchainHash}${extension}`;
}

/** Finds a working `go` on PATH or in a well-known location; null when there is none. */
async function findGo(): Promise<GoToolchain | null> {
  for (const command of ['go', ...EXTRA_GO_LOCATIONS]) {
    const version = await goVersion(command);
    if (version !== null) {
      return { command, version };
    }
  }
  return null;
}

async function goVersion(command: string): Promise<string | null> {
  try {
    const result = await runCommand(command, ['version'], process.cwd());
    return result.code === 0 ? result.stdout.trim() : null;
  } catch {
    return null;
  }
}

async function buildBinary(go: GoToolchain, sourceDir: string, binary: string, log: LauncherLog): Promise<void> {
  await fs.mkdir(path.dirname(binary), { recursive: true });
  const temporary = `${binary}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;

  log(`Building the embedded database (tools/devdb) with ${go.version}; about a minute when Go's build cache is cold…`);
  const started = Date.now();
  try {
    const result = await runCommand(go.command, ['build', '-trimpath', '-buildvcs=false', '-o', temporary, '.'], sourceDir, {
      CGO_ENABLED: '0',
    });
    if (result.code !== 0) {
      throw new Error(`Building tools/devdb failed (go build exit code ${String(result.code)}):\n${result.stderr.trim()}`);
    }
    // Atomic: concurrent builders each rename their own complete file.
    await fs.rename(temporary, binary);
  } finally {
    await fs.rm(temporary, { force: true });
  }
  log(`Built ${binary} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

function runCommand(command: string, args: readonly string[], cwd: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: { ...process.env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    guardChildStdio(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await fs.stat(file)).isFile();
  } catch {
    return false;
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function defaultLog(message: string): void {
  console.error(message);
}
