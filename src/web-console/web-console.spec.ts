import { consoleContentSecurityPolicy } from './web-console.js';

describe('the web console Content-Security-Policy', () => {
  it('allows this origin only, with the nonce for style elements', () => {
    const policy = consoleContentSecurityPolicy('bm9uY2U=', 'devpocket.example.com');
    expect(policy.split('; ')).toEqual([
      "default-src 'none'",
      "script-src 'self'",
      "style-src 'self' 'nonce-bm9uY2U='",
      "style-src-attr 'unsafe-inline'",
      "img-src 'self'",
      "font-src 'self'",
      "connect-src 'self' ws://devpocket.example.com wss://devpocket.example.com",
      "manifest-src 'self'",
      "base-uri 'none'",
      "form-action 'self'",
      "frame-ancestors 'none'",
      "object-src 'none'",
    ]);
  });

  it.each(['127.0.0.1:8000', 'localhost', '[::1]:8000', 'my-host.local:443'])('names the WebSocket origins of host %s', (host) => {
    expect(consoleContentSecurityPolicy('n', host)).toContain(`connect-src 'self' ws://${host} wss://${host};`);
  });

  it.each([undefined, '', "evil.com; script-src 'unsafe-inline'", 'a b', 'host:99999999', 'x"y'])(
    'leaves a Host header it cannot trust out of the policy (%s)',
    (host) => {
      const policy = consoleContentSecurityPolicy('n', host);
      expect(policy).toContain("connect-src 'self';");
      expect(policy).not.toContain('evil');
      expect(policy.match(/script-src/g)).toHaveLength(1);
    },
  );
});
