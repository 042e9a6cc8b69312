import { randomBytes } from 'node:crypto';

const MIN = 3;
const MAX = 30;

/**
 * Usernames to try, in order, for an account created from an email address: the local part
 * without its `+tag`, dots and other characters outside [A-Za-z0-9_-] turned into `_`, padded or
 * cut to 3-30 characters; then the same with `-2` … `-9`; then with random suffixes.
 */
export function usernameCandidates(email: string): string[] {
  const local = email.split('@')[0] ?? '';
  const untagged = local.split('+')[0] ?? '';
  let base = untagged
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '_')
    .replace(/_+/g, '_')
    .replace(/^[_-]+|[_-]+$/g, '');
  if (base.length < MIN) base = `${base}${base ? '_' : ''}user`.slice(0, MAX);
  base = base.slice(0, MAX);
  const withSuffix = (suffix: string): string => `${base.slice(0, MAX - suffix.length)}${suffix}`;
  const candidates = [base];
  for (let n = 2; n <= 9; n += 1) candidates.push(withSuffix(`-${n}`));
  for (let i = 0; i < 5; i += 1) candidates.push(withSuffix(`-${randomBytes(3).toString('hex')}`));
  return candidates;
}
