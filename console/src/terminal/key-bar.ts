import { h, keepFocus } from '../dom.js';
import { applyModifiers, Arrow, arrowSequence, Modifiers } from './keys.js';

/**
 * The keys a phone keyboard lacks: Esc, Ctrl and Alt (sticky: one tap applies to the next key,
 * a second tap locks, a third releases), Tab, the arrows, and | ~ / - which hide on a second or
 * third keyboard page. Tapping a key never takes the focus from the terminal, so the on-screen
 * keyboard stays open.
 */

type ModifierName = keyof Modifiers;
type Mode = 'off' | 'once' | 'locked';

export interface KeyBarOptions {
  send(data: string): void;
  applicationCursor(): boolean;
}

export class KeyBar {
  readonly element: HTMLElement;
  private readonly modes: Record<ModifierName, Mode> = { ctrl: 'off', alt: 'off' };
  private readonly buttons = new Map<ModifierName, HTMLButtonElement>();

  constructor(private readonly options: KeyBarOptions) {
    const key = (label: string, title: string, action: () => void, attributes: Record<string, string> = {}): HTMLButtonElement => {
      const button = h('button', { type: 'button', class: 'key', title, 'aria-label': title, tabindex: -1, ...attributes }, label);
      keepFocus(button);
      button.addEventListener('click', action);
      return button;
    };
    const modifier = (name: ModifierName, label: string): HTMLButtonElement => {
      const button = key(label, label, () => this.toggle(name), { 'aria-pressed': 'false', 'data-key': name });
      this.buttons.set(name, button);
      return button;
    };
    const text = (label: string, data: string, title: string): HTMLButtonElement =>
      key(label, title, () => this.type(data), { 'data-key': title.toLowerCase() });
    const arrow = (label: string, direction: Arrow): HTMLButtonElement =>
      key(label, `Arrow ${direction}`, () => this.arrow(direction), { 'data-key': `arrow-${direction}` });
    this.element = h(
      'div',
      { class: 'key-bar', role: 'toolbar', 'aria-label': 'Extra keys' },
      key('Esc', 'Escape', () => this.raw('\x1b'), { 'data-key': 'escape' }),
      modifier('ctrl', 'Ctrl'),
      modifier('alt', 'Alt'),
      key('Tab', 'Tab', () => this.type('\t'), { 'data-key': 'tab' }),
      text('|', '|', 'Pipe'),
      text('~', '~', 'Tilde'),
      text('/', '/', 'Slash'),
      text('-', '-', 'Dash'),
      arrow('←', 'left'),
      arrow('↑', 'up'),
      arrow('↓', 'down'),
      arrow('→', 'right'),
    );
  }

  get modifiers(): Modifiers {
    return { ctrl: this.modes.ctrl !== 'off', alt: this.modes.alt !== 'off' };
  }

  /** What the keyboard typed, with the sticky modifiers applied (and one-shot ones released). */
  transform(data: string): string {
    const out = applyModifiers(data, this.modifiers);
    this.consume();
    return out;
  }

  private type(data: string): void {
    this.options.send(this.transform(data));
  }

  private raw(data: string): void {
    this.options.send(this.modes.alt !== 'off' ? `\x1b${data}` : data);
    this.consume();
  }

  private arrow(direction: Arrow): void {
    this.options.send(arrowSequence(direction, this.modifiers, this.options.applicationCursor()));
    this.consume();
  }

  private toggle(name: ModifierName): void {
    const next: Record<Mode, Mode> = { off: 'once', once: 'locked', locked: 'off' };
    this.set(name, next[this.modes[name]]);
  }

  /** One-shot modifiers apply to one key only. */
  private consume(): void {
    for (const name of ['ctrl', 'alt'] as const) if (this.modes[name] === 'once') this.set(name, 'off');
  }

  private set(name: ModifierName, mode: Mode): void {
    this.modes[name] = mode;
    const button = this.buttons.get(name);
    if (!button) return;
    button.setAttribute('aria-pressed', mode === 'off' ? 'false' : 'true');
    button.dataset.mode = mode;
  }
}
