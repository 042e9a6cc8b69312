/**
 * The console's Content-Security-Policy allows `<style>` elements only with the nonce of the
 * response that served the page (src/web-console/web-console.ts). xterm.js's DOM renderer
 * creates such elements and has no option for a nonce, so every `<style>` this document creates
 * gets the nonce at creation, before it is inserted (a nonce set later does not count).
 *
 * The page carries its nonce as `<meta property="csp-nonce" nonce="…">`; browsers hide the
 * attribute from CSS and from `getAttribute` once parsed, but not from the `nonce` property.
 */
export function installStyleNonce(doc: Document = document): void {
  const meta = doc.querySelector<HTMLMetaElement>('meta[property="csp-nonce"]');
  const nonce = meta?.nonce || meta?.getAttribute('nonce') || '';
  if (!nonce || nonce.startsWith('__')) return; // not served by the server (e.g. opened as a file)
  const create = doc.createElement.bind(doc);
  const patched = (tagName: string, options?: ElementCreationOptions): HTMLElement => {
    const element = create(tagName, options);
    if (tagName.toLowerCase() === 'style') element.setAttribute('nonce', nonce);
    return element;
  };
  doc.createElement = patched;
}
