import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');

/** `npm run start:prod`: `VAR=value … node <flags> dist/main.js`, as its variables and its command. */
function startProd(): { env: Record<string, string>; command: string[] } {
  const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const words = scripts['start:prod'].split(' ');
  const node = words.indexOf('node');
  const env: Record<string, string> = Object.fromEntries(
    words.slice(0, node).map((word): [string, string] => [word.slice(0, word.indexOf('=')), word.slice(word.indexOf('=') + 1)]),
  );
  return { env, command: words.slice(node) };
}

/** A Containerfile's CMD and the variables its ENV lines set. */
function image(file: string): { env: Record<string, string>; command: string[] } {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const cmd = /^CMD (\[.*\])$/m.exec(text)?.[1];
  const env: Record<string, string> = Object.fromEntries(
    [...text.matchAll(/^ENV (\w+)=(\S+)$/gm)].map((match): [string, string] => [match[1], match[2]]),
  );
  return { env, command: JSON.parse(cmd ?? '[]') as string[] };
}

/**
 * Production runs Node with a bounded young generation and glibc with a fixed mmap threshold
 * (docs/deployment.md, "Memory"). V8 sizes the young generation from the machine's memory
 * otherwise, up to 64 MiB per semi-space, which a server holding a thousand terminal sockets fills
 * and keeps resident; and glibc, whose threshold otherwise rises with the large blocks it frees,
 * would keep each libuv thread's 19 MiB of argon2 memory after a sign-in. The images and
 * `npm run start:prod` set the same, and each setting does what it is there for.
 */
describe('the production Node flags and malloc settings', () => {
  it('are the same in both images and in npm run start:prod', () => {
    const prod = startProd();
    expect(prod.command).toEqual(['node', expect.stringMatching(/^--max-semi-space-size=\d+$/), 'dist/main.js']);
    expect(Object.keys(prod.env)).toEqual(['GLIBC_TUNABLES']);
    expect(prod.env.GLIBC_TUNABLES).toMatch(/^glibc\.malloc\.mmap_threshold=\d+$/);
    for (const file of ['Dockerfile', 'images/server/Containerfile']) {
      const built = image(file);
      expect(built.command, file).toEqual(prod.command);
      expect(built.env, file).toMatchObject({ NODE_ENV: 'production', ...prod.env });
    }
  });

  it('bound the young generation to two semi-spaces of the given size', () => {
    const flags = startProd().command.slice(1, -1);
    const semiSpaceMib = Number(/=(\d+)$/.exec(flags[0])?.[1]);
    // Allocates far more than the young generation holds, then reports its size.
    const script =
      'const kept = []; for (let i = 0; i < 2e6; i += 1) { kept.push({ i }); if (kept.length > 1e5) kept.length = 0; } ' +
      "const space = require('node:v8').getHeapSpaceStatistics().find((s) => s.space_name === 'new_space'); " +
      'process.stdout.write(String(space.space_size));';
    const bounded = Number(execFileSync(process.execPath, [...flags, '-e', script], { encoding: 'utf8' }));
    expect(bounded).toBeGreaterThan(0);
    expect(bounded).toBeLessThanOrEqual(2 * semiSpaceMib * 2 ** 20);
  });

  it("give argon2's memory back after sign-ins, which glibc's own threshold keeps (about 19 MiB per thread)", () => {
    // One larger hash first (a large block freed, as a running server frees many): glibc's dynamic
    // threshold rises past 19 MiB, and the password hashes that follow are served from the threads'
    // arenas, which keep it. 24 hashes on libuv's 4 threads; the growth of the RSS in MiB.
    const script = `
      const argon2 = require(${JSON.stringify(join(ROOT, 'node_modules', 'argon2', 'argon2.cjs'))});
      const rss = () => process.memoryUsage().rss / 2 ** 20;
      const options = (memoryCost) => ({ type: argon2.argon2id, memoryCost, timeCost: 1, parallelism: 1 });
      (async () => {
        const start = rss();
        await argon2.hash('warm', options(21000));
        for (let round = 0; round < 3; round += 1)
          await Promise.all(Array.from({ length: 8 }, (_, i) => argon2.hash('password' + round + i, options(19456))));
        process.stdout.write(String(Math.round(rss() - start)));
      })();`;
    const growth = (env: Record<string, string>): number =>
      Number(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env } }));
    expect(growth({})).toBeGreaterThanOrEqual(19);
    expect(growth(startProd().env)).toBeLessThan(19);
  });
});
