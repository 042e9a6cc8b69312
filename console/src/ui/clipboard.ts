/**
 * Copy and paste on phones. The Clipboard API exists only in secure contexts (https, or
 * localhost), asks for permission on Android and shows a "Paste" bubble on iOS; when it is missing
 * or refused, the console falls back to a text field the person copies from or pastes into with
 * the system's own long-press menu.
 */

/** True when the text reached the clipboard. */
export async function copyText(text: string): Promise<boolean> {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // refused (no user gesture, permission): try the old way
    }
  }
  return copyWithSelection(text);
}

/** The clipboard's text, or null when the browser will not give it (the caller offers a field). */
export async function readClipboard(): Promise<string | null> {
  if (!navigator.clipboard?.readText || !window.isSecureContext) return null;
  try {
    return await navigator.clipboard.readText();
  } catch {
    return null;
  }
}

/** `document.execCommand('copy')` on a temporary field: deprecated, but still the only way on plain http. */
function copyWithSelection(text: string): boolean {
  const field = document.createElement('textarea');
  field.value = text;
  field.setAttribute('readonly', '');
  field.className = 'offscreen';
  document.body.appendChild(field);
  field.select();
  field.setSelectionRange(0, text.length);
  let copied: boolean;
  try {
    copied = document.execCommand('copy');
  } catch {
    copied = false;
  }
  field.remove();
  return copied;
}
