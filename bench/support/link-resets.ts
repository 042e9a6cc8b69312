import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { deriveSeed, mulberry32 } from '../../test/support/flaky-link/prng.js';
import type { LinkSetup } from '../suites/link.js';
import type { ConsoleClient } from './link-console.js';
import { quietOutput, waitFor } from './link-echo.js';
import { round } from './process-stats.js';

/**
 * Part 2 of the link bench: exactly once across resets. For `seconds`, the link resets every
 * 5 ± 2 s (seeded) while, in the environment's one pane, a producer prints a seeded file at a
 * steady rate in the background and `cat > file` (echo off, so the screen holds only the
 * producer's lines) takes the keys the client types. The console's client reconnects by itself
 * (resume by offset, resend of unacknowledged input).
 *
 * - Ground truth of the output: the producer's file, byte for byte what the producer wrote to the
 *   pane's tty (numbered lines of seeded letters). Its SHA-256 is compared with the SHA-256 of the
 *   lines the client reconstructed: the rows its terminal (`@xterm/headless`, fed the output a
 *   line at a time) showed at the cursor, each line number once, in order. tmux renders the pane, so what
 *   crosses the link is tmux's drawing of those lines: they are all there only if every byte of
 *   the stream came through exactly once, and tmux drew every line.
 * - The stream itself: each output frame must begin where the one before it ended (a resume
 *   neither skips nor repeats); gaps and overlaps are counted.
 * - Input: the file `cat` wrote must equal the keys typed, in order (Enter as a newline).
 */

export interface ResetOptions {
  seed: number;
  seconds: number;
  produceBytes: number;
  keys: number;
}

const PRODUCER = `use strict; use Time::HiRes qw(time sleep);
$| = 1; binmode STDOUT;
my ($file, $rate, $chunk) = @ARGV;
open(my $in, '<', $file) or die "$file: $!";
binmode $in;
my $next = time; my $buffer;
while (read($in, $buffer, $chunk)) {
  print $buffer;
  $next += length($buffer) / $rate;
  my $wait = $next - time;
  sleep($wait) if $wait > 0;
}
print "PRODUCER_" . "DONE\\n";
`;
const DONE = 'PRODUCER_DONE';

/** Line `n` (from 1) of the producer's file, without its newline: 8 digits, a space, 20–89 seeded letters. */
function producerLine(seed: number, n: number): string {
  const random = mulberry32(deriveSeed(seed, n));
  const length = 20 + Math.floor(random() * 70);
  let letters = '';
  for (let index = 0; index < length; index += 1) letters += String.fromCharCode(97 + Math.floor(random() * 26));
  return `${String(n).padStart(8, '0')} ${letters}`;
}

/** Writes whole lines up to `bytes`; returns their count and SHA-256. */
function writeProducerFile(path: string, seed: number, bytes: number): { lines: number; bytes: number; sha256: string } {
  const hash = createHash('sha256');
  const fd = openSync(path, 'w');
  let written = 0;
  let lines = 0;
  try {
    let block = '';
    while (written < bytes) {
      const line = `${producerLine(seed, lines + 1)}\n`;
      lines += 1;
      written += line.length;
      block += line;
      if (block.length >= 1 << 20) {
        writeSync(fd, block);
        hash.update(block);
        block = '';
      }
    }
    writeSync(fd, block);
    hash.update(block);
  } finally {
    closeSync(fd);
  }
  return { lines, bytes: written, sha256: hash.digest('hex') };
}

/**
 * Rebuilds the producer's lines from the rows the client's terminal completes (tmux draws them
 * with scrolls and cursor moves, so only a terminal can read them back), and checks that each
 * output frame begins where the one before it ended.
 */
class OutputRecorder {
  bytes = 0;
  frames = 0;
  gaps = 0;
  overlaps = 0;
  received = 0;
  missing = 0;
  corrupt = 0;
  done = false;
  private end: number | null = null;
  private next = 1;
  private readonly pending = new Map<number, string>();
  private readonly hash = createHash('sha256');
  private stop: () => void = () => undefined;

  constructor(private readonly seed: number) {}

  attach(client: ConsoleClient): void {
    this.stop = client.listen({
      output: (data, offset) => this.output(data, offset),
      // A fresh stream or a jump to the current screen: the stream goes on from its new offset.
      cleared: () => void (this.end = null),
    });
  }

  finish(): { sha256: string; lines: number } {
    this.stop();
    for (const n of [...this.pending.keys()].sort((a, b) => a - b)) this.take(n, this.pending.get(n)!);
    this.pending.clear();
    return { sha256: this.hash.digest('hex'), lines: this.next - 1 };
  }

  /**
   * A row at the cursor: a line is taken (in order, once) when a row with a later line number
   * shows up, since tmux finishes drawing a line before it starts the next.
   */
  row(text: string): void {
    if (text.includes(DONE)) this.done = true;
    const match = /^(\d{8}) [a-z]+$/.exec(text);
    if (!match) return;
    const n = Number(match[1]);
    if (n < this.next) return;
    this.pending.set(n, text);
    for (const candidate of [...this.pending.keys()].sort((a, b) => a - b)) {
      if (candidate >= n) break;
      this.take(candidate, this.pending.get(candidate)!);
      this.pending.delete(candidate);
    }
  }

  private take(n: number, text: string): void {
    this.received += 1;
    if (n > this.next) this.missing += n - this.next;
    if (text !== producerLine(this.seed, n)) this.corrupt += 1;
    this.hash.update(`${text}\n`);
    this.next = n + 1;
  }

  private output(data: string, offset: number): void {
    const length = Buffer.byteLength(data);
    if (this.end !== null && offset - length > this.end) this.gaps += 1;
    if (this.end !== null && offset - length < this.end) this.overlaps += 1;
    this.end = offset;
    this.bytes += length;
    this.frames += 1;
  }
}

/** The keys typed into `cat`: seeded letters, digits and spaces, Enter every 20–60 keys, Enter last. */
function typedKeys(seed: number, count: number): string[] {
  const random = mulberry32(deriveSeed(seed, 0x7e57));
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789 ';
  const keys: string[] = [];
  let untilEnter = 20 + Math.floor(random() * 41);
  for (let index = 0; index < count - 1; index += 1) {
    untilEnter -= 1;
    if (untilEnter <= 0) {
      keys.push('\r');
      untilEnter = 20 + Math.floor(random() * 41);
    } else {
      keys.push(alphabet[Math.floor(random() * alphabet.length)]);
    }
  }
  keys.push('\r');
  return keys;
}

function firstDifference(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let index = 0; index < length; index += 1) if (a[index] !== b[index]) return index;
  return a.length === b.length ? -1 : length;
}

export async function exactlyOnceAcrossResets(setup: LinkSetup, options: ResetOptions): Promise<Record<string, unknown>> {
  const { seed, seconds, produceBytes, keys: keyCount } = options;
  const dataFile = join(setup.dir, 'produced.txt');
  const script = join(setup.dir, 'producer.pl');
  const typedFile = join(setup.dir, 'typed.txt');
  const truth = writeProducerFile(dataFile, seed, produceBytes);
  writeFileSync(script, PRODUCER);
  const rate = Math.max(1000, Math.round(truth.bytes / (seconds * 0.85)));
  const chunk = Math.max(64, Math.round(rate / 100));

  const recorder = new OutputRecorder(seed);
  const { link, client } = await setup.environment('Link resets', seed + 2, { onRow: (text) => recorder.row(text) });
  recorder.attach(client);
  let connects = 0;
  let clears = 0;
  const stopCounting = client.listen({
    state: (state) => void (state.kind === 'connected' && (connects += 1)),
    cleared: () => void (clears += 1),
  });
  // Echo off for `cat`, so that the screen holds only the producer's lines; the producer starts once cat reads.
  client.type(`stty -echo; (sleep 2; exec perl ${script} ${dataFile} ${rate} ${chunk}) & cat > ${typedFile}; stty echo\r`);
  await delay(1000);

  const keys = typedKeys(seed, keyCount);
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const resetRandom = mulberry32(deriveSeed(seed, 0x5e7));
  let resets = 0;
  const resetting = (async () => {
    for (;;) {
      const wait = 3000 + resetRandom() * 4000;
      if (performance.now() + wait > deadline) return;
      await delay(wait);
      await link.reset();
      resets += 1;
    }
  })();
  const interval = (seconds * 1000 * 0.9) / keys.length;
  let lastSeq = 0;
  for (let index = 0; index < keys.length; index += 1) {
    const due = started + index * interval;
    const wait = due - performance.now();
    if (wait > 0) await delay(wait);
    lastSeq = client.type(keys[index]) ?? lastSeq;
  }
  await resetting;
  const ranSeconds = (performance.now() - started) / 1000;

  // The producer's last line and every key written, then end `cat` (EOF at a line's start).
  const produced = await waitFor(() => recorder.done, 300_000);
  const acknowledged = await waitFor(
    () => client.connection.state.kind === 'connected' && client.connection.acknowledged >= lastSeq,
    60_000,
  );
  client.type('\x04');
  await quietOutput(client, 1000, 30_000);
  await delay(500);
  const output = recorder.finish();
  stopCounting();
  const typed = readFileSync(typedFile, 'utf8');
  const expected = keys.join('').replace(/\r/g, '\n');
  const difference = firstDifference(typed, expected);
  const stats = await link.stats();

  return {
    seconds: round(ranSeconds, 1),
    link_resets: resets,
    link_resets_counted_by_proxy: stats.resets,
    reconnects: Math.max(0, connects - 1),
    sockets_opened: client.sockets,
    redraws: Math.max(0, clears - 1),
    output: {
      ground_truth: "the producer's file: the exact bytes it wrote to the pane's tty",
      ground_truth_bytes: truth.bytes,
      ground_truth_lines: truth.lines,
      ground_truth_sha256: truth.sha256,
      reconstructed_sha256: output.sha256,
      sha256_equal: output.sha256 === truth.sha256 && output.lines === truth.lines,
      target: 'sha256_equal true',
      producer_bytes_per_second: rate,
      producer_finished: produced,
      lines_received: recorder.received,
      lines_missing: recorder.missing + Math.max(0, truth.lines - output.lines),
      lines_corrupt: recorder.corrupt,
      stream: { frames: recorder.frames, bytes: recorder.bytes, gaps: recorder.gaps, overlaps: recorder.overlaps },
    },
    input: {
      keys: keys.length,
      all_acknowledged: acknowledged,
      file_bytes: Buffer.byteLength(typed),
      expected_bytes: Buffer.byteLength(expected),
      exactly_once_in_order: typed === expected,
      first_difference_at: difference,
      target: 'exactly_once_in_order true',
    },
  };
}
