import { API, ApiError, describeError, requestJson } from '../api/http.js';
import { h, setAlert } from '../dom.js';
import type { AppContext, Dispose } from './context.js';

/** Disables `button` for the seconds of a 429's Retry-After, counting down on its label. */
function holdFor(button: HTMLButtonElement, seconds: number, label: string): Dispose {
  let left = seconds;
  button.disabled = true;
  const tick = (): void => {
    if (left <= 0) {
      window.clearInterval(timer);
      button.disabled = false;
      button.textContent = label;
      return;
    }
    button.textContent = `${label} (${left} s)`;
    left -= 1;
  };
  const timer = window.setInterval(tick, 1000);
  tick();
  return () => window.clearInterval(timer);
}

function field(label: string, input: HTMLInputElement): HTMLLabelElement {
  return h('label', { class: 'field' }, h('span', {}, label), input);
}

/**
 * "Sign in with Google", shown when the server has a web client (GET /auth/google/web/status): a
 * plain link to the server's browser flow (docs/auth.md#google-sign-in-in-the-browser), which comes
 * back to /sign-in with a one-time code in the fragment that main.ts collects.
 */
function googleSignIn(): HTMLElement {
  const link = h('a', { class: 'button google', href: `${API}/auth/google/web`, 'data-action': 'google-sign-in' }, 'Sign in with Google');
  const slot = h('div', { class: 'google-sign-in', 'data-slot': 'google-sign-in', hidden: true }, link);
  requestJson<{ enabled: boolean }>('GET', '/auth/google/web/status').then(
    (status) => (slot.hidden = !status.enabled),
    () => undefined,
  );
  return slot;
}

export function signInView(root: HTMLElement, context: AppContext, onSignedIn: () => void): Dispose {
  let release: Dispose = () => undefined;
  const alert = h('p', { class: 'alert', role: 'alert', hidden: true });
  const login = h('input', {
    name: 'username_or_email',
    autocomplete: 'username',
    autocapitalize: 'none',
    spellcheck: 'false',
    required: true,
  });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h(
    'form',
    { class: 'card auth', novalidate: true },
    h('h1', {}, 'Sign in'),
    alert,
    field('Username or email', login),
    field('Password', password),
    submit,
    googleSignIn(),
    h('p', { class: 'muted' }, 'No account yet? ', h('a', { href: '/register', 'data-route': true }, 'Create one')),
  );
  if (context.flash) setAlert(alert, context.flash, 'info');
  context.flash = null;
  login.addEventListener('input', () => {
    release();
    release = () => undefined;
    submit.disabled = false;
    submit.textContent = 'Sign in';
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!login.value.trim() || !password.value) {
      setAlert(alert, 'Enter your username or email and your password');
      return;
    }
    submit.disabled = true;
    setAlert(alert, null);
    context.session.signIn(login.value.trim(), password.value).then(
      () => onSignedIn(),
      (error: unknown) => {
        submit.disabled = false;
        setAlert(alert, describeError(error));
        // A 429 holds the button for its Retry-After (a 423 says until when in its message, and
        // concerns that account only). The limit may be the account's: another name frees it.
        if (error instanceof ApiError && error.status === 429 && error.retryAfter) {
          release();
          release = holdFor(submit, error.retryAfter, 'Sign in');
        }
        password.select();
      },
    );
  });
  root.replaceChildren(h('main', { class: 'page narrow' }, form));
  login.focus();
  return () => release();
}

export function registerView(root: HTMLElement, context: AppContext, onSignedIn: () => void): Dispose {
  let release: Dispose = () => undefined;
  const alert = h('p', { class: 'alert', role: 'alert', hidden: true });
  const username = h('input', { name: 'username', autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false', required: true });
  const email = h('input', { name: 'email', type: 'email', autocomplete: 'email', autocapitalize: 'none', required: true });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true });
  const fullName = h('input', { name: 'full_name', autocomplete: 'name' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Create account');
  const form = h(
    'form',
    { class: 'card auth', novalidate: true },
    h('h1', {}, 'Create an account'),
    alert,
    field('Username', username),
    field('Email', email),
    field('Password', password),
    h('p', { class: 'hint' }, '8 or more characters, with a lower-case letter, an upper-case letter and a digit.'),
    field('Full name (optional)', fullName),
    submit,
    h('p', { class: 'muted' }, 'Have an account? ', h('a', { href: '/sign-in', 'data-route': true }, 'Sign in')),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    submit.disabled = true;
    setAlert(alert, null);
    const fields = {
      username: username.value.trim(),
      email: email.value.trim(),
      password: password.value,
      full_name: fullName.value.trim() || null,
    };
    context.session.register(fields).then(
      () => onSignedIn(),
      (error: unknown) => {
        submit.disabled = false;
        const detail = describeError(error);
        const perField = error instanceof ApiError && error.body?.errors?.length ? error.body.errors.map((e) => e.message) : [];
        setAlert(alert, perField.length > 1 ? perField.join('\n') : detail);
        if (error instanceof ApiError && error.status === 429 && error.retryAfter) {
          release();
          release = holdFor(submit, error.retryAfter, 'Create account');
        }
      },
    );
  });
  root.replaceChildren(h('main', { class: 'page narrow' }, form));
  username.focus();
  return () => release();
}
