import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { declaredErrorCodes } from './error-code.js';

const SRC = join(import.meta.dirname, '..', '..');

/** Every `*.errors.ts` module of the application (each declares its module's codes). */
function errorModules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return errorModules(path);
    return entry.name.endsWith('.errors.ts') ? [path] : [];
  });
}

describe('error codes', () => {
  beforeAll(async () => {
    for (const path of errorModules(SRC)) await import(path);
  });

  it('every module declares its codes in a *.errors.ts file of its own folder', () => {
    const modules = errorModules(SRC).map((path) => relative(SRC, path).split('/')[0]);
    expect(new Set(modules)).toEqual(new Set(['auth', 'environments', 'runtime', 'templates', 'users']));
  });

  it('docs/api.md lists every declared code with its status', () => {
    const doc = readFileSync(join(SRC, '..', 'docs', 'api.md'), 'utf8');
    const missing = [...declaredErrorCodes()]
      .filter(([code, { status }]) => !doc.includes(`| \`${code}\` | ${status} |`))
      .map(([code, { status }]) => `${code} (${status})`);
    expect(missing).toEqual([]);
  });
});
