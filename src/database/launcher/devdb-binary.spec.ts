import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { devdbCacheDir, devdbSourceDir, findCachedBinary, findRepoRoot, hashSources } from './devdb-binary.js';

describe('devdbCacheDir', () => {
  it('prefers DEVPOCKET_CACHE_DIR, then XDG_CACHE_HOME, then ~/.cache', () => {
    expect(devdbCacheDir({ DEVPOCKET_CACHE_DIR: '/c', XDG_CACHE_HOME: '/x' })).toBe('/c/devdb');
    expect(devdbCacheDir({ XDG_CACHE_HOME: '/x' })).toBe('/x/devpocket/devdb');
    expect(devdbCacheDir({ XDG_CACHE_HOME: '' })).toBe(path.join(os.homedir(), '.cache', 'devpocket', 'devdb'));
  });
});

describe('repository layout', () => {
  it('finds tools/devdb from this module', async () => {
    const root = findRepoRoot();
    await expect(fs.stat(path.join(root, 'package.json'))).resolves.toBeTruthy();
    await expect(fs.stat(path.join(devdbSourceDir(root), 'go.mod'))).resolves.toBeTruthy();
  });
});

describe('hashSources / findCachedBinary', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'devdb-hash-spec-'));
    await fs.writeFile(path.join(dir, 'go.mod'), 'module example\n');
    await fs.writeFile(path.join(dir, 'main.go'), 'package main\n');
    await fs.writeFile(path.join(dir, 'README.md'), 'ignored\n');
  });

  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('changes with the Go sources of the binary only', async () => {
    const before = await hashSources(dir);
    await fs.writeFile(path.join(dir, 'README.md'), 'still ignored\n');
    expect(await hashSources(dir)).toBe(before);

    await fs.writeFile(path.join(dir, 'front_test.go'), 'package main\n');
    expect(await hashSources(dir)).toBe(before);

    await fs.writeFile(path.join(dir, 'front.go'), 'package main\n');
    expect(await hashSources(dir)).not.toBe(before);
  });

  it('finds a binary built from the same sources by any Go version, ignoring partial builds', async () => {
    const hash = await hashSources(dir);
    expect(await findCachedBinary(dir, hash)).toBeNull();

    await fs.writeFile(path.join(dir, `devdb-${hash}-aaaaaaaa.tmp-1-ff`), '');
    expect(await findCachedBinary(dir, hash)).toBeNull();

    await fs.writeFile(path.join(dir, `devdb-${hash}-bbbbbbbb`), '');
    expect(await findCachedBinary(dir, hash)).toBe(path.join(dir, `devdb-${hash}-bbbbbbbb`));
    expect(await findCachedBinary(path.join(dir, 'missing'), hash)).toBeNull();
  });
});
