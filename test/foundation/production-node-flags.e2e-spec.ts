import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');

/** `node <flags> dist/main.js` of `npm run start:prod`. */
function startProd(): string[] {
  const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  return scripts['start:prod'].split(' ');
}

/**
 * Production runs Node with a bounded young generation (docs/deployment.md, "Memory"): V8 sizes
 * it from the machine's memory otherwise, up to 64 MiB per semi-space, which a server holding a
 * thousand terminal sockets fills and keeps resident. The image's CMD and `npm run start:prod`
 * give the same flags, and the flag does bound it.
 */
describe('the production Node flags', () => {
  it('are the same in the image and in npm run start:prod', () => {
    const cmd = /^CMD (\[.*\])$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))?.[1];
    expect(cmd).toBeDefined();
    expect(JSON.parse(cmd ?? '[]')).toEqual(startProd());
    expect(startProd()).toEqual(['node', expect.stringMatching(/^--max-semi-space-size=\d+$/), 'dist/main.js']);
  });

  it('bound the young generation to two semi-spaces of the given size', () => {
    const flags = startProd().slice(1, -1);
    const semiSpaceMib = Number(/=(\d+)$/.exec(flags[0])?.[1]);
    // Allocates far more than the young generation holds, then reports its size.
    const script =
      "const kept = []; for (let i = 0; i < 2e6; i += 1) { kept.push({ i }); if (kept.length > 1e5) kept.length = 0; } " +
      "const space = require('node:v8').getHeapSpaceStatistics().find((s) => s.space_name === 'new_space'); " +
      'process.stdout.write(String(space.space_size));';
    const bounded = Number(execFileSync(process.execPath, [...flags, '-e', script], { encoding: 'utf8' }));
    expect(bounded).toBeGreaterThan(0);
    expect(bounded).toBeLessThanOrEqual(2 * semiSpaceMib * 2 ** 20);
  });
});
