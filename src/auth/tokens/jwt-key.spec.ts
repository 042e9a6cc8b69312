import jwt from 'jsonwebtoken';
import { jwtKey } from './jwt-key.js';

describe('jwtKey', () => {
  const secret = 'a-secret-of-at-least-thirty-two-characters-é';

  it('is one KeyObject per secret', () => {
    expect(jwtKey(secret)).toBe(jwtKey(secret));
    expect(jwtKey(secret)).not.toBe(jwtKey(`${secret}!`));
    expect(jwtKey(secret).type).toBe('secret');
  });

  it('signs and verifies exactly as the secret string does, both ways', () => {
    const payload = { sub: 'user', iss: 'devpocket-server' };
    const byString = jwt.sign(payload, secret, { algorithm: 'HS256' });
    const byKey = jwt.sign(payload, jwtKey(secret), { algorithm: 'HS256' });
    expect(byKey).toBe(byString);
    expect(jwt.verify(byString, jwtKey(secret), { algorithms: ['HS256'] })).toMatchObject(payload);
    expect(() => jwt.verify(byString, jwtKey(`${secret}!`), { algorithms: ['HS256'] })).toThrow(/invalid signature/);
  });
});
