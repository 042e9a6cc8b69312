import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import { describeError } from '../api/http.js';
import type { Environment } from '../api/types.js';
import { h, keepFocus, setAlert } from '../dom.js';
import { TerminalConnection, type ConnectionState } from '../terminal/connection.js';
import { KeyBar } from '../terminal/key-bar.js';
import { OutputSink } from '../terminal/output-sink.js';
import { Predictor } from '../terminal/prediction/predictor.js';
import { copyText, readClipboard } from '../ui/clipboard.js';
import { trackVisualViewport } from '../ui/viewport.js';
import type { AppContext, Dispose } from './context.js';

const FONT_SIZE_KEY = 'devpocket.terminal.font_size';
const MIN_FONT = 8;
const MAX_FONT = 32;

function savedFontSize(): number {
  const fallback = window.matchMedia('(max-width: 600px)').matches ? 13 : 15;
  try {
    const saved = Number(localStorage.getItem(FONT_SIZE_KEY));
    return saved >= MIN_FONT && saved <= MAX_FONT ? saved : fallback;
  } catch {
    return fallback;
  }
}

function saveFontSize(size: number): void {
  try {
    localStorage.setItem(FONT_SIZE_KEY, String(size));
  } catch {
    // preferences are optional
  }
}

/** The whole buffer (scrollback and screen) as text, wrapped lines joined. */
function terminalText(term: Terminal): string {
  const buffer = term.buffer.active;
  const lines: string[] = [];
  for (let i = 0; i < buffer.length; i += 1) {
    const line = buffer.getLine(i);
    if (!line) continue;
    const text = line.translateToString(true);
    if (line.isWrapped && lines.length > 0) lines[lines.length - 1] += text;
    else lines.push(text);
  }
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.join('\n');
}

function stateText(state: ConnectionState): string {
  switch (state.kind) {
    case 'connecting':
      return state.attempt > 0 ? 'Reconnecting…' : 'Connecting…';
    case 'connected':
      return 'Connected';
    case 'reconnecting': {
      const seconds = Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
      return `Reconnecting in ${seconds} s: ${state.reason}`;
    }
    case 'waiting':
      return 'Waiting for the environment to run';
    case 'disconnected':
      return `Disconnected: ${state.reason}`;
  }
}

export function terminalView(root: HTMLElement, context: AppContext, environmentId: string): Dispose {
  const cleanups: Dispose[] = [];
  let environment: Environment | null = null;

  // ---- layout ---------------------------------------------------------------------------------
  const title = h('h1', {}, 'Terminal');
  const state = h('span', { class: 'pill', role: 'status', 'data-role': 'connection-state', 'data-state': 'connecting' }, 'Connecting…');
  const reconnect = h('button', { type: 'button', hidden: true, 'data-action': 'reconnect' }, 'Reconnect');
  const start = h('button', { type: 'button', class: 'primary', hidden: true, 'data-action': 'start' }, 'Start');
  const notice = h('p', { class: 'alert', role: 'alert', hidden: true });
  const host = h('div', { class: 'terminal-host' });
  const fontLabel = h('span', { class: 'font-size', 'data-role': 'font-size' });
  const tool = (label: string, name: string, action: () => void): HTMLButtonElement => {
    const button = h('button', { type: 'button', class: 'tool', 'data-action': name, tabindex: -1 }, label);
    keepFocus(button);
    button.addEventListener('click', action);
    return button;
  };
  const sheetTitle = h('h2', {}, '');
  const sheetHint = h('p', { class: 'hint' }, '');
  const sheetText = h('textarea', { class: 'sheet-text', spellcheck: 'false', autocapitalize: 'none', autocomplete: 'off' });
  const sheetPrimary = h('button', { type: 'button', class: 'primary' }, '');
  const sheetClose = h('button', { type: 'button', 'data-action': 'close-sheet' }, 'Close');
  const sheet = h(
    'section',
    { class: 'sheet', hidden: true, 'aria-modal': 'true', role: 'dialog', 'aria-label': 'Text' },
    sheetTitle,
    sheetHint,
    sheetText,
    h('div', { class: 'actions' }, sheetPrimary, sheetClose),
  );

  // ---- xterm.js ---------------------------------------------------------------------------------
  const term = new Terminal({
    fontSize: savedFontSize(),
    fontFamily: 'ui-monospace, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace',
    cursorBlink: true,
    scrollback: 5000,
    macOptionIsMeta: true,
    theme: { background: '#0d1117', foreground: '#e6edf3', cursor: '#e6edf3', selectionBackground: '#3b5070' },
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  cleanups.push(() => term.dispose());

  // Predicted echo (docs/console.md#predicted-echo): drawn over the terminal, never into it. It
  // learns what xterm.js has drawn through the sink, and from the connection the keystrokes' seqs,
  // the acks, the modes and the round trips (a server without them gets nothing drawn).
  const predictor = new Predictor(term);
  cleanups.push(() => predictor.dispose());

  const sink = new OutputSink(
    predictor.wrap({
      write: (data, parsed) => term.write(data, parsed),
      reset: () => term.reset(),
    }),
    () => connection.redraw(),
  );

  const connection: TerminalConnection = new TerminalConnection({
    environmentId,
    sink,
    accessToken: () => context.session.accessToken(),
    refresh: () => context.session.refresh(),
    untilRunning: (signal) => context.environments.untilRunning(environmentId, signal),
    size: () => ({ cols: term.cols, rows: term.rows }),
    onState: (next) => showState(next),
    onStatus: (message) => {
      if (message.status !== 'running')
        setAlert(notice, `The environment is ${message.phase}${message.message ? `: ${message.message}` : ''}`, 'info');
      void context.environments.refresh();
    },
    onWelcome: (message) => {
      if (message.environment?.name) title.textContent = message.environment.name;
      setAlert(notice, null);
    },
    onNotice: (text) => setAlert(notice, text),
    onOutput: (data, _offset, ack) => predictor.output(data, ack),
    onModes: (modes) => predictor.modes(modes),
    // An `ack` frame (input written, nothing echoed it within 50 ms) is an empty output frame to the
    // predictor: applied once the output received before it is drawn.
    onAck: (seq) => predictor.output('', seq),
    onRoundTrip: (ms) => predictor.rtt(ms),
  });
  cleanups.push(() => connection.stop());

  /** Sends input, and tells the predictor which `seq` carries it. */
  const sendInput = (data: string): void => {
    const seq = connection.send(data);
    if (seq !== null) predictor.keystroke(data, seq);
  };

  const keyBar = new KeyBar({
    send: (data) => sendInput(data),
    applicationCursor: () => term.modes.applicationCursorKeysMode,
  });

  let pasting = false;
  const paste = (text: string): void => {
    if (!text) return;
    pasting = true;
    try {
      term.paste(text); // bracketed when the program asked for it; arrives through onData
    } finally {
      pasting = false;
    }
    term.focus();
  };
  term.onData((data) => sendInput(pasting ? data : keyBar.transform(data)));

  let resizeTimer: number | null = null;
  term.onResize(({ cols, rows }) => {
    if (resizeTimer !== null) window.clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(() => connection.sendResize(cols, rows), 80);
  });

  // ---- state ----------------------------------------------------------------------------------
  let countdown: number | null = null;
  function showState(next: ConnectionState): void {
    // A new attempt after a drop is still "reconnecting" (it starts at once, before any back-off).
    state.dataset.state = next.kind === 'connecting' && next.attempt > 0 ? 'reconnecting' : next.kind;
    state.textContent = stateText(next);
    state.title = 'reason' in next ? next.reason : '';
    reconnect.hidden = next.kind !== 'disconnected' && next.kind !== 'reconnecting';
    showWaiting();
    if (next.kind === 'disconnected') setAlert(notice, next.reason);
    if (countdown !== null) window.clearInterval(countdown);
    countdown = null;
    if (next.kind === 'reconnecting') {
      countdown = window.setInterval(() => {
        if (connection.state === next) state.textContent = stateText(next);
      }, 1000);
    }
  }
  cleanups.push(() => {
    if (countdown !== null) window.clearInterval(countdown);
  });
  reconnect.addEventListener('click', () => connection.retryNow());
  start.addEventListener('click', () => {
    start.disabled = true;
    context.api.act(environmentId, 'start').then(
      (answer) => {
        start.disabled = false;
        context.environments.upsert(answer);
        void context.environments.refresh();
      },
      (error: unknown) => {
        start.disabled = false;
        setAlert(notice, describeError(error));
      },
    );
  });

  /** While waiting (after 4009): where the environment is, and that the terminal comes back by itself. */
  function showWaiting(): void {
    const waiting = connection.state.kind === 'waiting';
    const startable = environment !== null && (environment.status === 'stopped' || environment.status === 'error');
    start.hidden = !(waiting && startable);
    if (!waiting) return;
    const where = environment
      ? `The environment is ${environment.phase}${environment.status_message ? ` (${environment.status_message})` : ''}`
      : 'The environment is not running';
    setAlert(notice, `${where}. The terminal reconnects once it runs again${startable ? ': start it' : ''}.`, 'info');
  }

  const unsubscribe = context.environments.subscribe((snapshot) => {
    environment = snapshot.environments?.find((candidate) => candidate.id === environmentId) ?? null;
    if (environment) title.textContent = environment.name;
    showWaiting();
  });
  cleanups.push(unsubscribe);

  // ---- copy, paste, font size -----------------------------------------------------------------
  let sheetAction: (() => void) | null = null;
  const openSheet = (options: {
    title: string;
    hint: string;
    text: string;
    readonly: boolean;
    primary: string;
    action: () => void;
  }): void => {
    sheetTitle.textContent = options.title;
    sheetHint.textContent = options.hint;
    sheetText.value = options.text;
    sheetText.readOnly = options.readonly;
    sheetText.placeholder = options.readonly ? '' : 'Long-press here and choose Paste';
    sheetPrimary.textContent = options.primary;
    sheetAction = options.action;
    sheet.hidden = false;
    if (options.readonly) {
      sheetText.scrollTop = sheetText.scrollHeight;
    } else {
      sheetText.focus();
    }
  };
  const closeSheet = (): void => {
    sheet.hidden = true;
    sheetAction = null;
    sheetText.value = '';
    term.focus();
  };
  sheetPrimary.addEventListener('click', () => sheetAction?.());
  sheetClose.addEventListener('click', closeSheet);

  const flash = (text: string): void => setAlert(notice, text, 'info');
  const selectText = (): void =>
    openSheet({
      title: 'Select text',
      hint: 'Select with the usual long-press, then copy; or copy everything.',
      text: terminalText(term),
      readonly: true,
      primary: 'Copy all',
      action: () => {
        const selected = sheetText.value.slice(sheetText.selectionStart, sheetText.selectionEnd);
        void copyText(selected || sheetText.value).then((copied) =>
          flash(copied ? 'Copied' : 'Select the text and use the system menu to copy it'),
        );
      },
    });
  const copy = (): void => {
    if (!term.hasSelection()) {
      selectText();
      return;
    }
    void copyText(term.getSelection()).then((copied) => {
      if (copied) flash('Copied');
      else selectText();
    });
  };
  const pasteFromClipboard = (): void => {
    void readClipboard().then((text) => {
      if (text !== null) {
        paste(text);
        return;
      }
      openSheet({
        title: 'Paste',
        hint: 'This browser does not let the page read the clipboard: paste into the field, then send.',
        text: '',
        readonly: false,
        primary: 'Send',
        action: () => {
          const text = sheetText.value;
          closeSheet();
          paste(text);
        },
      });
    });
  };
  const setFontSize = (size: number): void => {
    const clamped = Math.min(MAX_FONT, Math.max(MIN_FONT, size));
    term.options.fontSize = clamped;
    fontLabel.textContent = `${clamped}px`;
    saveFontSize(clamped);
    refit();
  };

  const toolbar = h(
    'div',
    { class: 'tool-bar', role: 'toolbar', 'aria-label': 'Terminal tools' },
    tool('Copy', 'copy', copy),
    tool('Paste', 'paste', pasteFromClipboard),
    tool('Select', 'select', selectText),
    tool('A−', 'font-smaller', () => setFontSize((term.options.fontSize ?? 14) - 1)),
    fontLabel,
    tool('A+', 'font-larger', () => setFontSize((term.options.fontSize ?? 14) + 1)),
  );

  root.replaceChildren(
    h(
      'div',
      { class: 'fullscreen terminal-page' },
      h(
        'header',
        { class: 'bar' },
        h('a', { href: '/', 'data-route': true, class: 'button back', 'aria-label': 'Back to environments' }, '←'),
        title,
        state,
        reconnect,
        start,
      ),
      notice,
      host,
      keyBar.element,
      toolbar,
      sheet,
    ),
  );

  // ---- size -----------------------------------------------------------------------------------
  let fitFrame: number | null = null;
  function refit(): void {
    if (fitFrame !== null) return;
    fitFrame = window.requestAnimationFrame(() => {
      fitFrame = null;
      if (host.clientWidth === 0 || host.clientHeight === 0) return;
      fit.fit();
    });
  }
  term.open(host);
  fontLabel.textContent = `${term.options.fontSize}px`;
  fit.fit();
  const observer = new ResizeObserver(() => refit());
  observer.observe(host);
  cleanups.push(() => observer.disconnect());
  cleanups.push(
    trackVisualViewport(() => {
      refit();
      term.scrollToBottom();
    }),
  );

  // ---- network --------------------------------------------------------------------------------
  const online = (): void => connection.nudge();
  const visible = (): void => {
    if (document.visibilityState === 'visible') connection.nudge();
  };
  window.addEventListener('online', online);
  document.addEventListener('visibilitychange', visible);
  cleanups.push(() => {
    window.removeEventListener('online', online);
    document.removeEventListener('visibilitychange', visible);
  });

  connection.start();
  term.focus();
  return () => {
    if (resizeTimer !== null) window.clearTimeout(resizeTimer);
    if (fitFrame !== null) window.cancelAnimationFrame(fitFrame);
    for (const cleanup of cleanups.reverse()) cleanup();
  };
}
