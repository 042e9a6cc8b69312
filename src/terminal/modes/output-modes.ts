/**
 * The terminal modes that show in tmux's own output to its client: what tmux tells the client's
 * terminal to do for the pane it shows. tmux 3.3a forwards **bracketed paste** (`ESC [ ? 2004 h`
 * / `l`) as the active pane's program sets it (on at a bash prompt, off while a command runs, off
 * in copy mode). It does not forward the pane's cursor-key mode (`ESC [ ? 1 h` is sent once at
 * attach and stays: tmux reads application-mode keys from its client and translates them to the
 * pane's mode), nor its alternate screen (tmux's own screen is always the alternate one): those
 * come from the pane-modes probe (src/runtime/pane-modes.ts). See docs/runtime.md, "Pane modes".
 */

/** The modes tracked from the output. */
export interface OutputModes {
  /** The client wraps pastes in `ESC [ 200 ~` … `ESC [ 201 ~`. */
  bracketedPaste: boolean;
}

const ESC = 0x1b;
const LEFT_BRACKET = 0x5b;
const QUESTION = 0x3f;
const SEMICOLON = 0x3b;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const FINAL_SET = 0x68; // h
const FINAL_RESET = 0x6c; // l
const FULL_RESET = 0x63; // c, after ESC
const BRACKETED_PASTE = 2004;
/** Parameters are not counted past this (a mode number is at most 5 digits). */
const PARAMETER_CAP = 100_000;

enum State {
  Ground,
  Escape,
  /** After `ESC [`: a private marker `?` must follow for the modes tracked here. */
  CsiEntry,
  /** In `ESC [ ?` parameters. */
  CsiPrivate,
  /** In a control sequence that is not ours: skipped to its final byte. */
  CsiIgnore,
}

/**
 * Tracks bracketed paste over tmux's output, fed in order with chunks as they come (a sequence may
 * be split across chunks). A byte-at-a-time state machine with no allocation per chunk: it is fed
 * every byte a terminal outputs. `feed` reports a change only: the new modes when they differ from
 * those before the chunk (toggles within one chunk that cancel out report nothing).
 */
export class OutputModeTracker {
  private state = State.Ground;
  private parameter = 0;
  /** The current parameter list names bracketed paste. */
  private namesPaste = false;
  private bracketedPaste = false;

  /** The modes now (a terminal starts with bracketed paste off). */
  get modes(): OutputModes {
    return { bracketedPaste: this.bracketedPaste };
  }

  /** Feeds the next chunk of output; returns the new modes when they changed, else null. */
  feed(chunk: Uint8Array): OutputModes | null {
    const before = this.bracketedPaste;
    for (let i = 0; i < chunk.length; i += 1) this.step(chunk[i]);
    return this.bracketedPaste === before ? null : this.modes;
  }

  private step(byte: number): void {
    if (byte === ESC) {
      this.state = State.Escape;
      return;
    }
    switch (this.state) {
      case State.Ground:
        return;
      case State.Escape:
        if (byte === LEFT_BRACKET) this.state = State.CsiEntry;
        else {
          if (byte === FULL_RESET) this.bracketedPaste = false;
          this.state = State.Ground;
        }
        return;
      case State.CsiEntry:
        if (byte === QUESTION) {
          this.state = State.CsiPrivate;
          this.parameter = 0;
          this.namesPaste = false;
        } else this.skip(byte);
        return;
      case State.CsiPrivate:
        this.privateMode(byte);
        return;
      case State.CsiIgnore:
        this.skip(byte);
        return;
    }
  }

  private privateMode(byte: number): void {
    if (byte >= DIGIT_0 && byte <= DIGIT_9) {
      if (this.parameter < PARAMETER_CAP) this.parameter = this.parameter * 10 + (byte - DIGIT_0);
      return;
    }
    if (byte === SEMICOLON) {
      this.endParameter();
      return;
    }
    if (byte === FINAL_SET || byte === FINAL_RESET) {
      this.endParameter();
      if (this.namesPaste) this.bracketedPaste = byte === FINAL_SET;
      this.state = State.Ground;
      return;
    }
    this.skip(byte);
  }

  private endParameter(): void {
    if (this.parameter === BRACKETED_PASTE) this.namesPaste = true;
    this.parameter = 0;
  }

  /** Skips a sequence that is not ours up to its final byte (0x40–0x7e); a control character aborts it. */
  private skip(byte: number): void {
    if (byte >= 0x40 && byte <= 0x7e) this.state = State.Ground;
    else if (byte < 0x20) this.state = State.Ground;
    else this.state = State.CsiIgnore;
  }
}
