import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';

/** Bytes [start, end) of a terminal session's output stream (offsets as in `output.offset`). */
export interface Range {
  start: number;
  end: number;
}

interface Span extends Range {
  /** Where byte `start` is in the file. */
  at: number;
}

/**
 * One client's copy of a terminal session's output stream, addressed by offset and kept in a file
 * (a long run carries tens of megabytes): each `output` frame's bytes are placed where its offset
 * says, frames that continue the previous one extend its span, and a frame that begins elsewhere
 * starts a new span: after a jump to the current screen (`reset`, or a fresh stream after a
 * reconnect) that is expected; otherwise it is a gap (bytes skipped) or an overlap (bytes sent
 * twice: only what lies beyond the span's end is kept).
 */
export class StreamCopy {
  frames = 0;
  bytes = 0;
  gaps = 0;
  overlaps = 0;
  jumps = 0;
  private readonly spans: Span[] = [];
  private jumped = true;
  private written = 0;
  private readonly fd: number;

  constructor(path: string) {
    this.fd = openSync(path, 'w+');
  }

  /** The client was told to clear its screen: the next frame may begin anywhere. */
  jump(): void {
    if (this.spans.length > 0) this.jumps += 1;
    this.jumped = true;
  }

  /** An `output` frame: its data, and its offset (the stream's offset after it). */
  frame(data: string, end: number): void {
    let bytes = Buffer.from(data, 'utf8');
    const start = end - bytes.length;
    this.frames += 1;
    this.bytes += bytes.length;
    const last = this.spans.at(-1);
    if (last && !this.jumped && start !== last.end) {
      if (start > last.end) this.gaps += 1;
      else this.overlaps += 1;
    }
    this.jumped = false;
    if (last && start < last.end && end > last.start) {
      // What overlaps was received before: only what lies beyond is new.
      if (end <= last.end) return;
      bytes = bytes.subarray(last.end - start);
      last.end = end;
    } else if (last && start === last.end) {
      last.end = end;
    } else {
      this.spans.push({ start, end, at: this.written });
    }
    writeSync(this.fd, bytes, 0, bytes.length, this.written);
    this.written += bytes.length;
  }

  /** The ranges this copy holds, in order. */
  get ranges(): Range[] {
    return this.spans.map(({ start, end }) => ({ start, end }));
  }

  /** SHA-256 of the bytes of `ranges` (which this copy must hold), concatenated in order. */
  sha256(ranges: Range[]): string {
    const hash = createHash('sha256');
    const buffer = Buffer.alloc(1 << 20);
    for (const range of ranges) {
      const span = this.spans.find((candidate) => candidate.start <= range.start && range.end <= candidate.end);
      if (!span) throw new Error(`stream copy: [${range.start}, ${range.end}) is not held`);
      for (let position = range.start; position < range.end;) {
        const length = Math.min(buffer.length, range.end - position);
        const read = readSync(this.fd, buffer, 0, length, span.at + (position - span.start));
        if (read <= 0) throw new Error('stream copy: short read');
        hash.update(buffer.subarray(0, read));
        position += read;
      }
    }
    return hash.digest('hex');
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** The parts of [from, to) that both lists of ranges cover, in order. */
export function intersect(a: Range[], b: Range[], from: number, to: number): Range[] {
  const result: Range[] = [];
  for (const x of a)
    for (const y of b) {
      const start = Math.max(x.start, y.start, from);
      const end = Math.min(x.end, y.end, to);
      if (start < end) result.push({ start, end });
    }
  return result.sort((x, y) => x.start - y.start);
}

/** How many bytes the ranges hold. */
export const lengthOf = (ranges: Range[]): number => ranges.reduce((sum, range) => sum + range.end - range.start, 0);

/**
 * The client's copy against the reference's (the ground truth), over the offsets both cover from
 * the later start to the earlier end. Where the client jumped (spans apart), the bytes it skipped
 * are counted and both are hashed over the client's spans only: equal then means "equal where it
 * has bytes", and `complete` says it has them all.
 */
export function compareCopies(reference: StreamCopy, client: StreamCopy): Record<string, unknown> {
  const [truth, copy] = [reference.ranges, client.ranges];
  if (truth.length === 0 || copy.length === 0) return { compared: false, reason: 'a copy is empty' };
  const from = Math.max(truth[0].start, copy[0].start);
  const to = Math.min(truth.at(-1)!.end, copy.at(-1)!.end);
  const whole = [{ start: from, end: to }];
  const common = intersect(truth, copy, from, to);
  const skippedByClient = to - from - lengthOf(intersect(copy, whole, from, to));
  const missingInTruth = to - from - lengthOf(intersect(truth, whole, from, to));
  const truthSha = reference.sha256(common);
  const clientSha = client.sha256(common);
  const complete = skippedByClient === 0 && missingInTruth === 0;
  return {
    offsets: { from, to, bytes: to - from },
    ground_truth_sha256: truthSha,
    client_sha256: clientSha,
    sha256_equal: truthSha === clientSha,
    complete,
    compared: complete
      ? 'every byte of the range'
      : `only the ${common.length} span(s) both hold, ${lengthOf(common)} of ${to - from} bytes: the client skipped ${skippedByClient} (jumps to the current screen), the reference missed ${missingInTruth}`,
    client_jumps_to_current_screen: client.jumps,
    bytes_skipped_by_the_client: skippedByClient,
    ends: { ground_truth: truth.at(-1)!.end, client: copy.at(-1)!.end },
  };
}

/** The frames, bytes and irregularities of a copy (every one but `jumps` should be 0 on an exact stream). */
export function describeCopy(copy: StreamCopy): Record<string, unknown> {
  return { frames: copy.frames, bytes: copy.bytes, spans: copy.ranges.length, gaps: copy.gaps, overlaps: copy.overlaps, jumps: copy.jumps };
}
