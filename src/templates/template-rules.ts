/**
 * The validation rules of a template definition, shared by the YAML files (template-file.ts) and
 * the admin API (dto/template.dto.ts), plus the Kubernetes quantity arithmetic the Environments
 * module needs to compare resources with plan limits.
 */

/** A DNS-1123 label of at most 40 characters: the template's name and its file name. */
export const TEMPLATE_NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;
export const TAG_PATTERN = /^[a-z0-9][a-z0-9.+#_-]{0,39}$/;
/** `name[:tag][@sha256:digest]` with an optional registry host (and port) and path. */
export const IMAGE_PATTERN =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]{1,5})?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;
/**
 * DevPocket's own environment images (images/<template>/Containerfile, built by images/build.sh):
 * `devpocket/env-<template>[:tag][@digest]`, also under a registry or a path
 * (`registry.example.com/devpocket/env-python:1`). They have their tools installed and run as their
 * user, so a template naming one needs no root: it must set `run_as_non_root: true` and has no
 * `startup.system` steps (see docs/templates.md, "Root in the container").
 */
export const OWN_IMAGE_PATTERN =
  /^(?:[^@]+\/)?devpocket\/env-[a-z0-9]+(?:-[a-z0-9]+)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

/** True for one of DevPocket's own environment images ({@link OWN_IMAGE_PATTERN}). */
export function isOwnEnvironmentImage(image: string): boolean {
  return OWN_IMAGE_PATTERN.test(image);
}
export const UNIX_USER_PATTERN = /^[a-z_][a-z0-9_-]{0,31}$/;
/** Kubernetes (IANA service) port names. */
export const PORT_NAME_PATTERN = /^[a-z](?:[a-z0-9-]{0,13}[a-z0-9])?$/;
export const COMMAND_NAME_PATTERN = /^[A-Za-z0-9._+-]{1,64}$/;
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
export const CPU_PATTERN = /^(?:[0-9]+m|[0-9]+(?:\.[0-9]{1,3})?)$/;
export const BYTES_PATTERN = /^[0-9]+(?:\.[0-9]+)?(?:Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)$/;

export const LIMITS = {
  displayName: 100,
  description: 2000,
  tags: 20,
  ports: 20,
  environmentVariables: 100,
  environmentValue: 4096,
  steps: 50,
  step: 8192,
  requiredCommands: 50,
  path: 255,
  url: 2048,
  maxId: 2_147_483_647,
} as const;

const SEGMENT = /^[A-Za-z0-9._+-]+$/;

function safeSegments(path: string): boolean {
  return path.split('/').every((segment) => SEGMENT.test(segment) && segment !== '.' && segment !== '..');
}

/** `/home/dev`, `/bin/bash`: absolute, no `.`/`..` segments, no empty segments, nothing but a-z A-Z 0-9 . _ + -. */
export function isAbsolutePath(value: unknown): value is string {
  return (
    typeof value === 'string' && value.length <= LIMITS.path && value.startsWith('/') && value.length > 1 && safeSegments(value.slice(1))
  );
}

/** '' (the home directory) or `projects/app`: relative to the home directory, never leaving it. */
export function isRelativePath(value: unknown): value is string {
  return typeof value === 'string' && value.length <= LIMITS.path && (value === '' || safeSegments(value));
}

/** A printable single line (no control characters). */
export function isSingleLine(value: unknown, max: number): value is string {
  // eslint-disable-next-line no-control-regex
  return typeof value === 'string' && value.trim().length > 0 && value.length <= max && !/[\u0000-\u001f\u007f]/.test(value);
}

/** Text that may span lines but holds no NUL or other control characters except tab and newline. */
export function isText(value: unknown, max: number): value is string {
  // eslint-disable-next-line no-control-regex
  return typeof value === 'string' && value.trim().length > 0 && value.length <= max && !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(value);
}

export function isCommandName(value: unknown): value is string {
  return typeof value === 'string' && COMMAND_NAME_PATTERN.test(value) && !/^\.+$/.test(value);
}

/** CPU in millicores: `500m` → 500, `1` → 1000, `0.25` → 250; null when not a CPU quantity. */
export function cpuMillicores(quantity: string): number | null {
  if (!CPU_PATTERN.test(quantity)) return null;
  return quantity.endsWith('m') ? Number(quantity.slice(0, -1)) : Math.round(Number(quantity) * 1000);
}

const BYTE_UNITS: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
};

/** A memory or storage quantity in bytes: `512Mi` → 536870912, `1G` → 1e9; null when not such a quantity. */
export function quantityBytes(quantity: string): number | null {
  if (!BYTES_PATTERN.test(quantity)) return null;
  const match = /^([0-9.]+)([A-Za-z]+)$/.exec(quantity);
  const unit = match?.[2] ? BYTE_UNITS[match[2]] : undefined;
  return match?.[1] && unit ? Math.round(Number(match[1]) * unit) : null;
}

export function isCpuQuantity(value: unknown): value is string {
  return typeof value === 'string' && (cpuMillicores(value) ?? 0) > 0;
}

export function isByteQuantity(value: unknown): value is string {
  return typeof value === 'string' && (quantityBytes(value) ?? 0) > 0;
}

/** The largest number of cores accepted as a number (so that its millicores stay an exact integer). */
export const MAX_CPU_NUMBER = Number.MAX_SAFE_INTEGER / 1000;

/**
 * A number of cores (a YAML or JSON number) as a CPU quantity string, or null when it is not one:
 * whole numbers as they are (2 → "2"), fractions to the millicore (0.5 → "500m"); at least 0.001.
 */
export function cpuNumberQuantity(value: unknown): string | null {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0.001 || value > MAX_CPU_NUMBER) return null;
  return Number.isInteger(value) ? String(value) : `${Math.round(value * 1000)}m`;
}
