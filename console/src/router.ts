/**
 * Client-side routes, with the History API. The server answers index.html for each of these paths
 * (CONSOLE_PAGES in src/web-console/web-console.ts: keep the two lists equal), and for other
 * paths a browser navigates to it answers the same page with status 404, shown as "not found".
 */

export type Route =
  | { name: 'environments' }
  | { name: 'sign-in' }
  | { name: 'register' }
  | { name: 'terminal'; id: string }
  | { name: 'logs'; id: string }
  | { name: 'not-found'; path: string };

export function parseRoute(pathname: string): Route {
  const path = pathname.replace(/\/+$/, '') || '/';
  if (path === '/' || path === '/environments') return { name: 'environments' };
  if (path === '/sign-in') return { name: 'sign-in' };
  if (path === '/register') return { name: 'register' };
  const match = /^\/environments\/([^/]+)\/(terminal|logs)$/.exec(path);
  if (match) {
    const id = decodeURIComponent(match[1]);
    return match[2] === 'terminal' ? { name: 'terminal', id } : { name: 'logs', id };
  }
  return { name: 'not-found', path };
}

export function routePath(route: Route): string {
  switch (route.name) {
    case 'environments':
      return '/';
    case 'sign-in':
      return '/sign-in';
    case 'register':
      return '/register';
    case 'terminal':
      return `/environments/${encodeURIComponent(route.id)}/terminal`;
    case 'logs':
      return `/environments/${encodeURIComponent(route.id)}/logs`;
    case 'not-found':
      return route.path;
  }
}

export class Router {
  private readonly listeners = new Set<(route: Route) => void>();

  constructor() {
    window.addEventListener('popstate', () => this.emit());
    // Same-origin links marked data-route navigate without reloading the page.
    document.addEventListener('click', (event) => {
      const link = (event.target as Element | null)?.closest?.('a[data-route]');
      if (!(link instanceof HTMLAnchorElement) || event.defaultPrevented || event.button !== 0) return;
      if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      this.go(link.pathname);
    });
  }

  get current(): Route {
    return parseRoute(location.pathname);
  }

  onChange(listener: (route: Route) => void): void {
    this.listeners.add(listener);
  }

  go(path: string, replace = false): void {
    if (path !== location.pathname) {
      if (replace) history.replaceState(null, '', path);
      else history.pushState(null, '', path);
    }
    this.emit();
  }

  private emit(): void {
    const route = this.current;
    for (const listener of [...this.listeners]) listener(route);
  }
}
