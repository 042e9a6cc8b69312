import type { IncomingMessage } from 'node:http';
import {
  cleanLocation,
  parsePreviewRequest,
  previewAddress,
  previewCookie,
  PreviewRequest,
  withoutPreviewCookie,
} from './preview-address.js';

const ID = '6650a1b2c3d4e5f6a7b8c9d0';

function request(url: string, host = 'devpocket.example.com'): IncomingMessage {
  return { url, headers: { host } } as IncomingMessage;
}

describe('preview addresses', () => {
  it('reads the path form, with and without its key, and leaves every other path alone', () => {
    expect(parsePreviewRequest(request(`/preview/${ID}/8000/a/b?x=1`), null)).toMatchObject({
      form: 'path',
      environmentId: ID,
      port: 8000,
      prefix: `/preview/${ID}/8000`,
      key: null,
      upstreamPath: '/a/b?x=1',
    });
    expect(parsePreviewRequest(request(`/preview/${ID}/8000/~abc.def/x`), null)).toMatchObject({
      prefix: `/preview/${ID}/8000/~abc.def`,
      key: 'abc.def',
      upstreamPath: '/x',
    });
    expect(parsePreviewRequest(request(`/preview/${ID}/8000`), null)).toMatchObject({ upstreamPath: '/' });
    for (const invalid of [
      `/preview/${ID}/0/`,
      `/preview/${ID}/65536/`,
      `/preview/${ID}/080/`,
      '/preview/xyz/80/',
      '/preview',
      '/preview/',
    ])
      expect(parsePreviewRequest(request(invalid), null)).toBe('invalid');
    for (const other of ['/', '/api/v1/environments', '/previews', '/assets/preview/x'])
      expect(parsePreviewRequest(request(other), null)).toBeNull();
  });

  it('reads the subdomain form on any path when PREVIEW_DOMAIN is set, case and port aside', () => {
    expect(parsePreviewRequest(request('/api/v1/x?y', `5173-${ID}.Preview.Example.com:8443`), 'preview.example.com')).toMatchObject({
      form: 'host',
      environmentId: ID,
      port: 5173,
      prefix: '',
      upstreamPath: '/api/v1/x?y',
    });
    expect(parsePreviewRequest(request('/', `x-${ID}.preview.example.com`), 'preview.example.com')).toBe('invalid');
    expect(parsePreviewRequest(request('/', 'preview.example.com'), 'preview.example.com')).toBeNull();
    expect(parsePreviewRequest(request('/', `5173-${ID}.preview.example.com`), null)).toBeNull();
  });

  it('builds clean addresses on the public URL, and first-use redirects without the token or grant', () => {
    const base = new URL('https://devpocket.example.com:8443/ignored');
    expect(previewAddress(base, null, ID, 8000)).toBe(`https://devpocket.example.com:8443/preview/${ID}/8000/`);
    expect(previewAddress(base, 'preview.example.com', ID, 8000)).toBe(`https://8000-${ID}.preview.example.com:8443/`);
    const path = parsePreviewRequest(request(`/preview/${ID}/8000/app?devpocket_token=t&x=1&devpocket_grant=g`), null) as PreviewRequest;
    expect(cleanLocation(path, 'k.m')).toBe(`/preview/${ID}/8000/~k.m/app?x=1`);
    const host = parsePreviewRequest(request('/app?devpocket_grant=g', `8000-${ID}.p.example.com`), 'p.example.com') as PreviewRequest;
    expect(cleanLocation(host, 'k.m')).toBe('/app');
  });

  it('finds and removes only the preview cookie', () => {
    expect(previewCookie('a=1; devpocket_preview=x.y=; b=2')).toBe('x.y=');
    expect(previewCookie('a=1')).toBeNull();
    expect(withoutPreviewCookie('a=1; devpocket_preview=x; b=2')).toBe('a=1; b=2');
    expect(withoutPreviewCookie('devpocket_preview=x')).toBeNull();
    expect(withoutPreviewCookie(undefined)).toBeNull();
  });
});
