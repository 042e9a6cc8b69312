import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Metafile } from 'esbuild';

/**
 * Builds the browser console (console/) into dist/console/ (docs/console.md#how-it-is-built):
 *
 * - `assets/console-<hash>.js` and `assets/console-<hash>.css`: esbuild bundles of
 *   console/src/main.ts (xterm.js included) and console/src/styles.css (xterm.js's stylesheet
 *   included), minified, with linked source maps;
 * - `assets/icon-<hash>.svg`;
 * - `index.html` with those names filled in.
 *
 * The folder is built next to its final place and swapped in, so a server reading it never sees
 * half a build. Run by `npm run build` (after `nest build`, which empties dist/) and by the
 * development runner (scripts/console-dev.ts).
 */

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const CONSOLE_SOURCE = join(ROOT, 'console');
export const CONSOLE_OUT = join(ROOT, 'dist', 'console');

/** Browsers the bundle is written for: what phones have had since 2022. */
const TARGETS = ['es2022', 'chrome100', 'firefox100', 'safari15.4', 'edge100'];

function hashed(name: string, content: Buffer | string): string {
  const hash = createHash('sha256').update(content).digest('base64url').slice(0, 10);
  return `${basename(name, extname(name))}-${hash}${extname(name)}`;
}

function outputFor(metafile: Metafile, entryPoint: string, extension: string, outDir: string): string {
  for (const [path, output] of Object.entries(metafile.outputs)) {
    if (output.entryPoint === entryPoint && path.endsWith(extension))
      return `/assets/${relative(join(outDir, 'assets'), resolve(ROOT, path))}`;
  }
  throw new Error(`esbuild produced no ${extension} for ${entryPoint}`);
}

export interface ConsoleBuild {
  outDir: string;
  /** The URLs of the script, the stylesheet and the icon, as index.html names them. */
  assets: string[];
}

export async function buildConsole(options: { outDir?: string; minify?: boolean } = {}): Promise<ConsoleBuild> {
  const outDir = options.outDir ?? CONSOLE_OUT;
  const staging = `${outDir}.staging-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(join(staging, 'assets'), { recursive: true });
  try {
    const entries = { console: join(CONSOLE_SOURCE, 'src', 'main.ts'), styles: join(CONSOLE_SOURCE, 'src', 'styles.css') };
    const result = await build({
      absWorkingDir: ROOT,
      entryPoints: [
        { in: entries.console, out: 'console' },
        { in: entries.styles, out: 'console' },
      ],
      outdir: join(staging, 'assets'),
      entryNames: '[name]-[hash]',
      assetNames: '[name]-[hash]',
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: TARGETS,
      minify: options.minify ?? true,
      sourcemap: 'linked',
      metafile: true,
      legalComments: 'linked',
      logLevel: 'silent',
      tsconfig: join(CONSOLE_SOURCE, 'tsconfig.json'),
    });
    const js = outputFor(result.metafile, relative(ROOT, entries.console), '.js', staging);
    const css = outputFor(result.metafile, relative(ROOT, entries.styles), '.css', staging);
    const iconSource = readFileSync(join(CONSOLE_SOURCE, 'src', 'icon.svg'));
    const iconName = hashed('icon.svg', iconSource);
    writeFileSync(join(staging, 'assets', iconName), iconSource);

    const template = readFileSync(join(CONSOLE_SOURCE, 'index.html'), 'utf8');
    const html = template
      .replace(/\s*<!--[\s\S]*?-->/g, '')
      .replace('%JS%', js)
      .replace('%CSS%', css)
      .replace('%ICON%', `/assets/${iconName}`);
    if (/%(JS|CSS|ICON)%/.test(html)) throw new Error('console/index.html: a placeholder was left unfilled');
    writeFileSync(join(staging, 'index.html'), html);

    mkdirSync(dirname(outDir), { recursive: true });
    rmSync(outDir, { recursive: true, force: true });
    renameSync(staging, outDir);
    return { outDir, assets: [js, css, `/assets/${iconName}`] };
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
}

/** `tsx scripts/build-console.ts`: one build, then a line saying where it went. */
async function main(): Promise<void> {
  const started = Date.now();
  const { outDir, assets } = await buildConsole();
  const sizes = assets.map((url) => `${basename(url)} ${Math.round(statSync(join(outDir, url)).size / 1024)} KiB`);
  process.stdout.write(`Console built into ${relative(ROOT, outDir)}/ in ${Date.now() - started} ms: ${sizes.join(', ')}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    process.stderr.write(`Console build failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
