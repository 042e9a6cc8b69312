import { createSecretKey, type KeyObject } from 'node:crypto';

const keys = new Map<string, KeyObject>();

/**
 * The HS256 key for a secret, made once per secret. Given a string or a Buffer, jsonwebtoken
 * first tries to read it as a PEM public key on every verify (which throws), and only then makes
 * a secret key of it: about 7.5 % of a server's CPU in a profile of the load bench. A KeyObject
 * skips both; the signatures are the same (HMAC-SHA256 of the secret's UTF-8 bytes).
 */
export function jwtKey(secret: string): KeyObject {
  let key = keys.get(secret);
  if (!key) {
    key = createSecretKey(Buffer.from(secret, 'utf8'));
    keys.set(secret, key);
  }
  return key;
}
