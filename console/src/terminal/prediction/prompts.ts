import type { TerminalModes } from './types.js';

/**
 * Prompts where typing was seen to echo (docs/console.md#predicted-echo): the text left of the
 * cursor where an epoch began, with the pane's modes then, for the epochs the server's echo
 * confirmed. A new epoch that begins at the same prompt, in the same modes, on the normal screen
 * (the shell's next prompt after Enter), is drawn at once instead of waiting for a confirmation:
 * the same line editor is reading the same kind of line. A prompt that was never seen to echo (a
 * password prompt, even one a remote host prints, where the pane's modes cannot tell) is never
 * taken; one whose epoch turns out wrong is forgotten.
 */
export class PromptMemory {
  private readonly keys: string[] = [];
  /** The prompt where the latest epoch began. */
  private current: { epoch: number; key: string } | null = null;

  constructor(private readonly size = 16) {}

  /**
   * An epoch begins with a character typed at the end of a line, after `text` (blank when it is
   * not a prompt that can be trusted: a full-screen program's). Whether typing at that prompt, in
   * these modes, was seen to echo.
   */
  begin(epoch: number, text: string, modes: TerminalModes | null): boolean {
    this.current = null;
    if (!modes || text.trim() === '') return false;
    const { echo, canonical, alt_screen, cursor_keys, copy_mode } = modes;
    const key = `${JSON.stringify([echo, canonical, alt_screen, cursor_keys, copy_mode])}\n${text}`;
    this.current = { epoch, key };
    return this.keys.includes(key);
  }

  /** The server's echo confirmed a character typed in `epoch`. */
  confirmed(epoch: number): void {
    if (this.current?.epoch !== epoch) return;
    this.forget(this.current.key);
    this.keys.push(this.current.key);
    if (this.keys.length > this.size) this.keys.shift();
  }

  /** Predictions of `epochs` turned out wrong: a prompt they began at is no longer trusted. */
  wrong(epochs: number[]): void {
    if (this.current && epochs.includes(this.current.epoch)) this.forget(this.current.key);
  }

  private forget(key: string): void {
    const index = this.keys.indexOf(key);
    if (index >= 0) this.keys.splice(index, 1);
  }
}
