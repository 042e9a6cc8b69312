import { installStyleNonce } from './csp-nonce.js';
import { ApiClient } from './api/client.js';
import { describeError } from './api/http.js';
import { Session, takeGoogleReturn } from './auth/session.js';
import { h } from './dom.js';
import { LiveEnvironmentsSource } from './environments/live-source.js';
import { Route, Router, routePath } from './router.js';
import { registerView, signInView } from './views/auth-views.js';
import type { AppContext, Dispose } from './views/context.js';
import { environmentsView } from './views/environments-view.js';
import { logsView } from './views/logs-view.js';
import { terminalView } from './views/terminal-view.js';

/**
 * The DevPocket console (docs/console.md): sign-in, environments, logs and the terminal, in one
 * page served by the server itself. Views render into #app; the header shows who is signed in.
 */

function notFoundView(root: HTMLElement, path: string): Dispose {
  root.replaceChildren(
    h(
      'main',
      { class: 'page narrow' },
      h(
        'div',
        { class: 'card' },
        h('h1', {}, 'Page not found'),
        h('p', {}, `Nothing lives at ${path}.`),
        h('a', { href: '/', 'data-route': true, class: 'button primary' }, 'Your environments'),
      ),
    ),
  );
  return () => undefined;
}

function start(): void {
  installStyleNonce();
  const app = document.getElementById('app');
  if (!app) throw new Error('index.html has no #app');

  const session = new Session();
  const api = new ApiClient(session);
  const router = new Router();
  const context: AppContext = { session, api, environments: new LiveEnvironmentsSource(api, session), router, flash: null };

  const userLabel = h('span', { class: 'user', 'data-role': 'user' });
  const signOut = h('button', { type: 'button', class: 'link', 'data-action': 'sign-out' }, 'Sign out');
  const header = h('header', { class: 'top' }, h('a', { href: '/', 'data-route': true, class: 'brand' }, 'DevPocket'), userLabel, signOut);
  const outlet = h('div', { class: 'outlet' });
  app.replaceChildren(header, outlet);

  let dispose: Dispose = () => undefined;
  /** Where to go after signing in (the page asked for before). */
  let returnTo: string | null = null;

  const show = (route: Route): void => {
    dispose();
    const signedIn = session.signedIn;
    const fullscreen = signedIn && (route.name === 'terminal' || route.name === 'logs');
    header.hidden = fullscreen;
    document.body.classList.toggle('has-fullscreen', fullscreen);
    userLabel.textContent = session.user ? `${session.user.username} · ${session.user.subscription_plan}` : '';
    signOut.hidden = !signedIn;
    const afterSignIn = (): void => {
      const target = returnTo ?? '/';
      returnTo = null;
      router.go(target, true);
    };
    if (route.name === 'not-found') {
      document.title = 'Not found · DevPocket';
      dispose = notFoundView(outlet, route.path);
      return;
    }
    if (!signedIn) {
      if (route.name === 'register') {
        document.title = 'Create an account · DevPocket';
        dispose = registerView(outlet, context, afterSignIn);
        return;
      }
      if (route.name !== 'sign-in') {
        returnTo = routePath(route);
        history.replaceState(null, '', '/sign-in');
      }
      document.title = 'Sign in · DevPocket';
      dispose = signInView(outlet, context, afterSignIn);
      return;
    }
    switch (route.name) {
      case 'sign-in':
      case 'register':
        router.go('/', true);
        return;
      case 'environments':
        document.title = 'Environments · DevPocket';
        dispose = environmentsView(outlet, context);
        return;
      case 'terminal':
        document.title = 'Terminal · DevPocket';
        dispose = terminalView(outlet, context, route.id);
        return;
      case 'logs':
        document.title = 'Logs · DevPocket';
        dispose = logsView(outlet, context, route.id);
        return;
    }
  };

  router.onChange(show);
  // Signing in navigates from the sign-in views; signing out (asked for, or a refused refresh) lands here.
  session.onChange((change) => {
    if (change.user !== null) return;
    context.flash = change.reason;
    router.go('/sign-in');
  });
  signOut.addEventListener('click', () => void session.signOut());

  outlet.replaceChildren(h('p', { class: 'page muted' }, 'Loading…'));
  const google = takeGoogleReturn();
  if (google && 'error' in google) context.flash = google.error;
  const ready =
    google && 'code' in google
      ? session.signInWithGoogleCode(google.code).then(
          () => 'refreshed' as const,
          (error: unknown) => {
            context.flash = describeError(error);
            return 'none' as const;
          },
        )
      : session.restore();
  void ready.then((outcome) => {
    if (outcome === 'unreachable') context.flash = 'Cannot reach the server; sign in again when it is back';
    show(router.current);
  });
}

start();
