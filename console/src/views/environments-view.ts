import { ApiError, describeError } from '../api/http.js';
import type { Environment, Template } from '../api/types.js';
import { h, replaceChildren, setAlert } from '../dom.js';
import { routePath } from '../router.js';
import type { AppContext, Dispose } from './context.js';

type Action = 'start' | 'stop' | 'restart' | 'delete';

/** Which actions the API accepts from a status (docs/environments.md#transitions; stop and start are queued in between). */
function allowed(environment: Environment, action: Action): boolean {
  const { status } = environment;
  switch (action) {
    case 'start':
      return status === 'stopped' || status === 'error';
    case 'stop':
      return status === 'running' || status === 'error' || status === 'creating';
    case 'restart':
      return status === 'running' || status === 'stopped' || status === 'error';
    case 'delete':
      return status !== 'terminated' && environment.phase !== 'terminating';
  }
}

function statusLabel(environment: Environment): string {
  const phase = environment.phase !== environment.status ? ` (${environment.phase})` : '';
  const queued = environment.queued_action ? `, ${environment.queued_action} queued` : '';
  return `${environment.status}${phase}${queued}`;
}

function detailLine(environment: Environment): string | null {
  const parts: string[] = [];
  if (environment.status_message) parts.push(environment.status_message);
  if (!environment.installation_completed && environment.installation_progress !== null && environment.status !== 'terminated') {
    parts.push(`setting up: ${environment.installation_progress}%`);
  }
  return parts.length > 0 ? parts.join(' · ') : null;
}

/** Asks before deleting; resolves true when the person confirms. */
function confirmDelete(host: HTMLElement, environment: Environment): Promise<boolean> {
  return new Promise((resolve) => {
    const cancel = h('button', { type: 'button', value: 'cancel' }, 'Cancel');
    const remove = h('button', { type: 'button', class: 'danger', value: 'delete' }, 'Delete');
    const dialog = h(
      'dialog',
      { class: 'confirm', 'aria-labelledby': 'confirm-title' },
      h('h2', { id: 'confirm-title' }, `Delete ${environment.name}?`),
      h('p', {}, 'Everything in it, its files included, is removed. This cannot be undone.'),
      h('div', { class: 'actions' }, cancel, remove),
    );
    const finish = (answer: boolean): void => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    cancel.addEventListener('click', () => finish(false));
    remove.addEventListener('click', () => finish(true));
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      finish(false);
    });
    host.appendChild(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

/** A preview's grant lasts minutes: a link older than this is refreshed before it opens. */
const PREVIEW_LINK_FRESH_MS = 60_000;

/**
 * "Preview :port" links of a running environment, opened in a new tab without access to this one
 * (`noopener`, `noreferrer`). The address carries a short-lived grant; the server swaps it for a
 * cookie of that preview and redirects to the clean address (docs/previews.md).
 */
function previewLinks(environment: Environment, context: AppContext): HTMLElement[] {
  const renderedAt = Date.now();
  return (environment.previews ?? []).map((preview) => {
    const label = `Preview :${preview.port}`;
    const link = h(
      'a',
      {
        class: 'button',
        href: preview.open_url,
        target: '_blank',
        rel: 'noopener noreferrer',
        'data-role': 'preview',
        'data-port': String(preview.port),
      },
      label,
    );
    link.addEventListener('click', (event) => {
      if (Date.now() - renderedAt < PREVIEW_LINK_FRESH_MS) return;
      // The grant may have expired: ask for a fresh one, then open it.
      event.preventDefault();
      void context.api.environment(environment.id).then(
        (fresh) => {
          const current = fresh.previews?.find((candidate) => candidate.port === preview.port);
          if (current) window.open(current.open_url, '_blank', 'noopener,noreferrer');
        },
        () => window.open(preview.url, '_blank', 'noopener,noreferrer'),
      );
    });
    return link;
  });
}

export function environmentsView(root: HTMLElement, context: AppContext): Dispose {
  const { api, environments: source } = context;
  let disposed = false;
  let showDeleted = false;
  let latest: Environment[] = [];

  // ---- create ---------------------------------------------------------------------------------
  const createAlert = h('p', { class: 'alert', role: 'alert', hidden: true });
  const templateSelect = h('select', { name: 'template', required: true }, h('option', { value: '' }, 'Loading templates…'));
  const nameInput = h('input', { name: 'name', placeholder: 'My project', maxlength: 64, required: true, autocomplete: 'off' });
  const createButton = h('button', { type: 'submit', class: 'primary' }, 'Create');
  const createForm = h(
    'form',
    { class: 'card create', novalidate: true },
    h('h2', {}, 'New environment'),
    createAlert,
    h('label', { class: 'field' }, h('span', {}, 'Template'), templateSelect),
    h('label', { class: 'field' }, h('span', {}, 'Name'), nameInput),
    createButton,
  );

  api.templates().then(
    (templates: Template[]) => {
      if (disposed) return;
      const usable = templates.filter((template) => template.status !== 'deprecated');
      replaceChildren(
        templateSelect,
        ...usable.map((template) =>
          h(
            'option',
            { value: template.name, title: template.description },
            `${template.display_name} (${template.name})${template.status === 'beta' ? ' · beta' : ''}`,
          ),
        ),
      );
    },
    (error: unknown) => {
      if (disposed) return;
      replaceChildren(templateSelect, h('option', { value: '' }, 'No templates'));
      setAlert(createAlert, `Could not load the templates: ${describeError(error)}`);
    },
  );

  createForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const name = nameInput.value.trim();
    const template = templateSelect.value;
    if (!name || !template) {
      setAlert(createAlert, 'Choose a template and give the environment a name');
      return;
    }
    createButton.disabled = true;
    setAlert(createAlert, null);
    api.createEnvironment(name, template).then(
      (created) => {
        createButton.disabled = false;
        nameInput.value = '';
        source.upsert(created);
        void source.refresh();
      },
      (error: unknown) => {
        createButton.disabled = false;
        // The plan's limit (403 plan_limit_reached) says which plan and how many: shown as the server words it.
        const planLimit = error instanceof ApiError && error.code === 'plan_limit_reached';
        setAlert(createAlert, planLimit ? `${describeError(error)}.` : describeError(error));
        createAlert.dataset.code = error instanceof ApiError && error.code ? error.code : '';
      },
    );
  });

  // ---- list -----------------------------------------------------------------------------------
  const updated = h('p', { class: 'muted updated', 'data-role': 'status-connection', 'data-state': 'loading' });
  const listAlert = h('p', { class: 'alert', role: 'alert', hidden: true });
  const list = h('ul', { class: 'environments' });
  const deletedToggle = h('button', { type: 'button', class: 'link', hidden: true });
  deletedToggle.addEventListener('click', () => {
    showDeleted = !showDeleted;
    renderList(latest);
  });
  const cards = new Map<string, { element: HTMLLIElement; signature: string }>();

  // Outside the cards, which a poll may redraw: the answer to the last action stays until the next one.
  const actionAlert = h('p', { class: 'alert', role: 'alert', hidden: true, 'data-role': 'action-error' });
  const act = async (environment: Environment, action: Action, card: HTMLElement): Promise<void> => {
    if (action === 'delete' && !(await confirmDelete(root, environment))) return;
    for (const button of card.querySelectorAll('button')) button.disabled = true;
    setAlert(actionAlert, null);
    try {
      const answer = action === 'delete' ? await api.deleteEnvironment(environment.id) : await api.act(environment.id, action);
      source.upsert(answer);
    } catch (error) {
      setAlert(actionAlert, `${environment.name}: ${describeError(error)}`);
    } finally {
      for (const button of card.querySelectorAll('button')) button.disabled = false;
      void source.refresh();
    }
  };

  const renderCard = (environment: Environment): HTMLLIElement => {
    const running = environment.status === 'running';
    const card = h(
      'li',
      { class: 'card environment', 'data-id': environment.id, 'data-status': environment.status },
      h(
        'div',
        { class: 'title' },
        h('h3', {}, environment.name),
        h('span', { class: `badge status-${environment.status}`, 'data-role': 'status' }, statusLabel(environment)),
      ),
      h('p', { class: 'muted' }, `${environment.template} · ${environment.resources.cpu} CPU · ${environment.resources.memory}`),
      detailLine(environment) && h('p', { class: 'detail' }, detailLine(environment)),
    );
    const actions = h('div', { class: 'actions' });
    if (environment.status !== 'terminated') {
      actions.append(
        running
          ? h('a', { class: 'button primary', href: routePath({ name: 'terminal', id: environment.id }), 'data-route': true }, 'Terminal')
          : h(
              'span',
              { class: 'button primary disabled', 'aria-disabled': 'true', title: 'Start the environment to open its terminal' },
              'Terminal',
            ),
        h('a', { class: 'button', href: routePath({ name: 'logs', id: environment.id }), 'data-route': true }, 'Logs'),
        ...(running ? previewLinks(environment, context) : []),
      );
      for (const action of ['start', 'stop', 'restart', 'delete'] as const) {
        if (!allowed(environment, action)) continue;
        const label = action[0].toUpperCase() + action.slice(1);
        const button = h('button', { type: 'button', class: action === 'delete' ? 'danger' : '', 'data-action': action }, label);
        button.addEventListener('click', () => void act(environment, action, card));
        actions.append(button);
      }
    }
    card.append(actions);
    return card;
  };

  const renderList = (environments: Environment[]): void => {
    latest = environments;
    const deleted = environments.filter((environment) => environment.status === 'terminated');
    const shown = showDeleted ? environments : environments.filter((environment) => environment.status !== 'terminated');
    deletedToggle.hidden = deleted.length === 0;
    deletedToggle.textContent = showDeleted ? 'Hide deleted' : `Show deleted (${deleted.length})`;
    const keep = new Set<string>();
    const elements: HTMLLIElement[] = [];
    for (const environment of shown) {
      // Redraw a card only when it changed, so that a poll does not steal the focus from its buttons.
      const signature = JSON.stringify([
        environment.name,
        statusLabel(environment),
        detailLine(environment),
        (environment.previews ?? []).map((preview) => preview.port),
      ]);
      let entry = cards.get(environment.id);
      if (!entry || entry.signature !== signature) {
        entry = { element: renderCard(environment), signature };
        cards.set(environment.id, entry);
      }
      keep.add(environment.id);
      elements.push(entry.element);
    }
    for (const id of [...cards.keys()]) if (!keep.has(id)) cards.delete(id);
    if (elements.length === 0) {
      list.replaceChildren(h('li', { class: 'empty muted' }, 'No environments yet: create one above.'));
    } else if (elements.some((element, i) => list.children[i] !== element) || list.children.length !== elements.length) {
      list.replaceChildren(...elements);
    }
  };

  const unsubscribe = source.subscribe((snapshot) => {
    if (snapshot.environments) renderList(snapshot.environments);
    setAlert(listAlert, snapshot.error);
    // Live while the status socket is open; otherwise when the list was last fetched (it reconnects meanwhile).
    updated.dataset.state = snapshot.live ? 'live' : snapshot.updatedAt ? 'reconnecting' : 'loading';
    updated.textContent = snapshot.live
      ? '● Live'
      : snapshot.updatedAt
        ? `Updated ${snapshot.updatedAt.toLocaleTimeString()} · reconnecting…`
        : 'Loading…';
  });

  root.replaceChildren(
    h(
      'main',
      { class: 'page' },
      createForm,
      h(
        'section',
        { class: 'list' },
        h('div', { class: 'list-head' }, h('h2', {}, 'Environments'), updated),
        listAlert,
        actionAlert,
        list,
        deletedToggle,
      ),
    ),
  );
  return () => {
    disposed = true;
    unsubscribe();
  };
}
