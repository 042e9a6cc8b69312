import { h } from '../dom.js';
import { LogsFollower, LogsState } from '../logs/logs-follower.js';
import type { AppContext, Dispose } from './context.js';

/** Lines kept on the page; older ones are dropped from the top. */
const MAX_LINES = 5000;
const BACKLOG_LINES = 200;

function stateText(state: LogsState): string {
  switch (state.kind) {
    case 'connecting':
      return 'Connecting…';
    case 'following':
      return 'Following';
    case 'reconnecting':
      return `Reconnecting: ${state.reason}`;
    case 'closed':
      return `Stopped: ${state.reason}`;
  }
}

export function logsView(root: HTMLElement, context: AppContext, environmentId: string): Dispose {
  const title = h('h1', {}, 'Logs');
  const state = h('span', { class: 'pill', 'data-role': 'logs-state' }, 'Connecting…');
  const output = h('pre', { class: 'logs', 'aria-live': 'off', tabindex: 0 });
  const follow = h('input', { type: 'checkbox', checked: true });
  let count = 0;

  const follower = new LogsFollower({
    environmentId,
    lines: BACKLOG_LINES,
    accessToken: () => context.session.accessToken(),
    refresh: () => context.session.refresh(),
    onLine: (line) => {
      output.append(`${line}\n`);
      count += 1;
      if (count > MAX_LINES) {
        output.firstChild?.remove();
        count -= 1;
      }
      if (follow.checked) output.scrollTop = output.scrollHeight;
    },
    onState: (next) => {
      state.textContent = stateText(next);
      state.dataset.state = next.kind;
    },
  });

  const unsubscribe = context.environments.subscribe((snapshot) => {
    const environment = snapshot.environments?.find((candidate) => candidate.id === environmentId);
    if (environment) title.textContent = `Logs: ${environment.name}`;
  });

  root.replaceChildren(
    h(
      'div',
      { class: 'fullscreen logs-page' },
      h(
        'header',
        { class: 'bar' },
        h('a', { href: '/', 'data-route': true, class: 'button back', 'aria-label': 'Back to environments' }, '←'),
        title,
        state,
      ),
      output,
      h('footer', { class: 'bar' }, h('label', { class: 'inline' }, follow, ' Follow new lines')),
    ),
  );
  follower.start();
  return () => {
    follower.stop();
    unsubscribe();
  };
}
