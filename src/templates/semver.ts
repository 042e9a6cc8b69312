/**
 * Semantic Versioning 2.0.0 (https://semver.org): parsing and precedence, which is all the template
 * loader needs to decide whether a file is newer than what is stored.
 */

/** The official semver.org pattern (no leading `v`, no leading zeros). */
export const SEMVER_PATTERN =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

export interface SemVer {
  major: number;
  minor: number;
  patch: number;
  /** Pre-release identifiers (`1.0.0-beta.2` → ['beta', '2']); empty for a release. */
  prerelease: string[];
}

export function parseSemver(version: string): SemVer | null {
  const match = SEMVER_PATTERN.exec(version);
  if (!match) return null;
  const [, major, minor, patch, prerelease] = match;
  const [x, y, z] = [major, minor, patch].map(Number);
  if (x === undefined || y === undefined || z === undefined || ![x, y, z].every((n) => Number.isSafeInteger(n))) return null;
  return { major: x, minor: y, patch: z, prerelease: prerelease ? prerelease.split('.') : [] };
}

export function isSemver(version: unknown): version is string {
  return typeof version === 'string' && version.length <= 64 && parseSemver(version) !== null;
}

function compareIdentifiers(a: string, b: string): number {
  const aNumeric = /^\d+$/.test(a);
  const bNumeric = /^\d+$/.test(b);
  if (aNumeric && bNumeric) return Math.sign(Number(a) - Number(b));
  if (aNumeric) return -1;
  if (bNumeric) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Precedence of two versions: negative when `a` is older, 0 when equal (build metadata is
 * ignored), positive when `a` is newer. Throws on an invalid version: callers validate first.
 */
export function compareSemver(a: string, b: string): number {
  const x = parseSemver(a);
  const y = parseSemver(b);
  if (!x || !y) throw new Error(`not a semantic version: ${x ? b : a}`);
  for (const key of ['major', 'minor', 'patch'] as const) {
    if (x[key] !== y[key]) return Math.sign(x[key] - y[key]);
  }
  // A pre-release is older than the release itself.
  if (x.prerelease.length === 0 || y.prerelease.length === 0) return Math.sign(y.prerelease.length - x.prerelease.length);
  for (let i = 0; i < Math.max(x.prerelease.length, y.prerelease.length); i += 1) {
    const p = x.prerelease[i];
    const q = y.prerelease[i];
    if (p === undefined) return -1;
    if (q === undefined) return 1;
    const order = compareIdentifiers(p, q);
    if (order !== 0) return order;
  }
  return 0;
}
