import type { TerminalAttachment } from '../../runtime/runtime.provider.js';
import { InputLedger, InputWriter, isClientId, SequencedInput } from '../input/input-writer.js';
import type { UpstreamHints } from '../low-latency.js';
import { ModeWatch } from '../mode-hints.js';
import { ACKS_FIELD, decodeModes, encodeAcks, encodeModes, hintsOf, MODES_FIELD, StreamHints } from './stream-hints.js';
import type { EntryHints } from './terminal-scripts.js';

/** Acks and modes that no output entry carried this long after they came are written in an entry of their own. */
export const HINTS_ALONE_MS = 10;
/** The owner reads the modes while its own clients use the additions, or for this long after sequenced input from any replica. */
export const MODES_WANTED_MS = 10 * 60 * 1000;

/** The hints an output-stream entry carries (its extra fields, and what the write script records of them). */
export interface TakenHints {
  fields: string[];
  hints: EntryHints;
}

export interface OwnerInputParts {
  /** The owner's tmux client. */
  attachment: TerminalAttachment;
  /** What the seqs hash held when this replica became the owner. */
  ledger: InputLedger;
  /** The offset after the last byte the owner read (and wrote to the stream). */
  end: () => number;
  /** This replica's session, told of acks and modes at once. */
  session: () => UpstreamHints | null;
  /** Writes an entry of hints only, with id `id` (`<ms>-*`). */
  writeAlone: (id: string, taken: TakenHints) => void;
  /** The first offset of the stream's last output entry (hints-only entries sort after it), or null. */
  lastStart: number | null;
  duplicate?: () => void;
}

/**
 * The owner replica's side of exactly-once input and mode hints (docs/terminal.md, "Several
 * replicas"): every replica's sequenced input is written here once and in order (InputWriter, its
 * ledger loaded from the seqs hash), the pane's modes are watched here, and both reach the other
 * replicas in the output stream, with the next output entry or, after HINTS_ALONE_MS, in an entry
 * of their own (whose write also records the client_ids' seqs in the seqs hash: no round trip of
 * their own per keystroke).
 */
export class OwnerInput {
  private readonly writer: InputWriter;
  private readonly watch: ModeWatch | null;
  private readonly acks = new Map<string, number>();
  private modes: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastStart: number | null;
  /** When input of a client that uses the additions (a seq, a client_id) was last submitted. */
  private sequencedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly parts: OwnerInputParts) {
    this.lastStart = parts.lastStart;
    const { attachment } = parts;
    this.writer = new InputWriter(
      {
        write: (data) => {
          attachment.stream.write(data);
          this.watch?.input();
        },
        written: (writer, seq, duplicate) => {
          if (duplicate) parts.duplicate?.();
          parts.session()?.written(writer, seq, parts.end());
          this.acks.set(writer, Math.max(seq, this.acks.get(writer) ?? 0));
          this.schedule();
        },
      },
      parts.ledger,
    );
    const probe = attachment.probeModes?.bind(attachment);
    this.watch = probe
      ? new ModeWatch(
          probe,
          parts.end,
          (modes, offset) => {
            parts.session()?.modes(modes, offset);
            this.modes = encodeModes(modes, offset);
            this.schedule();
          },
          () => parts.session()?.wanted() === true || Date.now() - this.sequencedAt < MODES_WANTED_MS,
        )
      : null;
    this.watch?.refresh();
  }

  get ledger(): InputLedger {
    return this.writer.ledger;
  }

  submit(input: SequencedInput): void {
    if (input.seq !== null || isClientId(input.writer)) {
      const idle = Date.now() - this.sequencedAt >= MODES_WANTED_MS;
      this.sequencedAt = Date.now();
      if (idle) this.watch?.refresh();
    }
    this.writer.submit(input);
  }

  /** A client that uses the additions joined (here or on another replica): the modes are read and told again. */
  refresh(): void {
    this.sequencedAt = Date.now();
    this.watch?.refresh();
  }

  /** An output entry starting at `start` is about to be written: the hints it carries. Then its bytes are watched. */
  published(start: number, bytes: Buffer): TakenHints {
    const taken = this.take();
    this.lastStart = start;
    this.watch?.output(bytes);
    return taken;
  }

  close(): void {
    this.writer.close();
    this.watch?.close();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => {
      this.timer = null;
      // Before this owner's first output (and with nothing of its predecessor's to follow), they go with that output.
      if (this.lastStart === null || (this.acks.size === 0 && this.modes === null)) return;
      this.parts.writeAlone(`${this.lastStart}-*`, this.take());
    }, HINTS_ALONE_MS);
  }

  private take(): TakenHints {
    const fields: string[] = [];
    const hints: EntryHints = {};
    if (this.acks.size > 0) {
      fields.push(ACKS_FIELD, encodeAcks(this.acks));
      hints.seqs = [...this.acks].filter(([writer]) => isClientId(writer));
      this.acks.clear();
    }
    if (this.modes !== null) {
      fields.push(MODES_FIELD, this.modes);
      hints.modes = this.modes;
      this.modes = null;
    }
    return { fields, hints };
  }
}

/**
 * A replica's side of the low-latency additions over a shared terminal: as owner, an OwnerInput;
 * as follower, the acks and modes read from the stream, told to the session at their offsets.
 */
export class ClusterInput {
  private owner: OwnerInput | null = null;
  private hinted: UpstreamHints | null = null;
  private modes: StreamHints['modes'] = null;
  /** This replica's input while it becomes the owner (see submit). */
  private readonly pending: SequencedInput[] = [];
  private draining = true;

  constructor(private readonly parts: Pick<OwnerInputParts, 'end' | 'writeAlone' | 'duplicate'>) {}

  /** Becomes the owner's: `stored` is the seqs hash (HGETALL), `lastId` the stream's last entry read. */
  own(attachment: TerminalAttachment, stored: unknown, lastId: string): void {
    this.draining = true;
    const ledger = new InputLedger();
    if (stored && typeof stored === 'object') ledger.merge(Object.entries(stored).map(([id, seq]): [string, number] => [id, Number(seq)]));
    this.owner?.close();
    this.owner = new OwnerInput({
      ...this.parts,
      attachment,
      ledger,
      session: () => this.hinted,
      // Entries of hints only sort after the last output entry (`<its start>-*`), never after an exit marker (`<end>-0`).
      lastStart: lastId === '0-0' || lastId.endsWith('-0') ? null : Number(lastId.slice(0, lastId.indexOf('-'))),
    });
  }

  /**
   * As owner: this replica's clients' input, written once per seq. Until the owner applied what
   * waited in the input stream (sent through it before this replica owned the terminal: a
   * takeover), it waits here, so that it never overtakes it.
   */
  submit(input: SequencedInput): void {
    if (this.owner && !this.draining) this.owner.submit(input);
    else this.pending.push(input);
  }

  /** As owner: input of the input stream (another replica's clients', or this one's from before). */
  apply(input: SequencedInput): void {
    this.owner?.submit(input);
  }

  /** The owner applied what waited in the input stream: this replica's own input goes on. */
  caughtUp(): void {
    this.draining = false;
    const owner = this.owner;
    if (owner) for (const input of this.pending.splice(0)) owner.submit(input);
  }

  /** As owner: the hints of the output entry starting at `start` (published). */
  published(start: number, bytes: Buffer): EntryHints | undefined {
    if (!this.owner) return undefined;
    const { fields, hints } = this.owner.published(start, bytes);
    return { ...hints, fields };
  }

  /** As owner: reads the modes again and tells them to every replica. */
  refresh(): void {
    this.owner?.refresh();
  }

  /** What this replica knows of `clientId`'s last seq written (as owner). */
  known(clientId: string): number {
    return this.owner?.ledger.get(clientId) ?? 0;
  }

  /** As follower: the modes a replica that joins finds in the metadata. */
  joined(modes: string | null): void {
    this.modes = decodeModes(modes);
  }

  /** As follower: the acks and modes an entry carries, positioned at `offset`, to the session. */
  tell(fields: string[], offset: number): void {
    if (fields[0] === 'd' && fields.length <= 2) return;
    const { acks, modes } = hintsOf(fields);
    for (const [writer, seq] of acks) this.hinted?.written(writer, seq, offset);
    if (modes) {
      this.modes = modes;
      this.hinted?.modes(modes.modes, modes.offset);
    }
  }

  listen(listener: UpstreamHints): void {
    this.hinted = listener;
    if (this.modes) listener.modes(this.modes.modes, this.modes.offset);
  }

  close(): void {
    this.owner?.close();
    this.owner = null;
    this.pending.length = 0;
  }
}
