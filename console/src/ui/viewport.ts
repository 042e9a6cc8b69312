/**
 * Keeps full-screen views above the on-screen keyboard. Phone browsers show the keyboard over the
 * page (iOS never shrinks the layout viewport; Android does only with `interactive-widget`), but
 * the visual viewport always is the part a person sees: its height and offset become the CSS
 * variables `--viewport-height` and `--viewport-top`, which `.fullscreen` views use.
 */
export function trackVisualViewport(onChange: () => void = () => undefined): () => void {
  const viewport = window.visualViewport;
  const root = document.documentElement;
  const update = (): void => {
    const height = viewport ? viewport.height : window.innerHeight;
    const top = viewport ? viewport.offsetTop : 0;
    root.style.setProperty('--viewport-height', `${Math.round(height)}px`);
    root.style.setProperty('--viewport-top', `${Math.round(top)}px`);
    onChange();
  };
  update();
  const target: EventTarget = viewport ?? window;
  target.addEventListener('resize', update);
  target.addEventListener('scroll', update);
  window.addEventListener('orientationchange', update);
  return () => {
    target.removeEventListener('resize', update);
    target.removeEventListener('scroll', update);
    window.removeEventListener('orientationchange', update);
  };
}
