import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { deriveSeed, mulberry32 } from '../../test/support/flaky-link/prng.js';
import type { LinkSetup } from '../suites/link.js';
import { WebSocket } from 'ws';
import { quietOutput, waitFor } from './link-echo.js';
import { compareCopies, describeCopy, StreamCopy } from './link-stream.js';
import { round } from './process-stats.js';
import { WsTerminal } from './terminals.js';

/**
 * Part 2 of the link bench: exactly once across resets. For `seconds`, the link resets every
 * 5 ± 2 s (seeded) while, in the environment's one pane, a producer prints a seeded file at a
 * steady rate in the background and `cat > file` (echo off, so the screen holds only the
 * producer's lines) takes the keys the client types. The console's client reconnects by itself
 * (resume by offset, resend of unacknowledged input).
 *
 * - Ground truth of the output: what tmux emitted for the pane, i.e. the server's output stream of
 *   that session, addressed by offset, as a reference client connected straight to the server on
 *   loopback (no proxy, never reset) received it for the whole run. The flaky client's bytes,
 *   placed by offset across its resumes (link-stream.ts), are hashed over the same offset range
 *   and compared. If the flaky client ever jumped to the current screen (a `reset`), the bytes it
 *   skipped are counted and both copies are hashed over the spans it did receive: the comparison
 *   says so rather than compare what it never had.
 * - Apart from that, the lines read back: the rows the client's terminal (`@xterm/headless`, fed
 *   the output a line at a time) showed at the cursor, each line number once, in order, against
 *   the producer's file. tmux renders the pane: under a fast producer it draws several lines at
 *   once and may skip drawing some (a tmux client attached straight to the session misses them
 *   too), so this figure measures tmux's drawing and the reading back, not the transport.
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
 * with scrolls and cursor moves, so only a terminal can read them back).
 */
class LineRecorder {
  received = 0;
  missing = 0;
  corrupt = 0;
  done = false;
  private next = 1;
  private readonly pending = new Map<number, string>();
  private readonly hash = createHash('sha256');

  constructor(private readonly seed: number) {}

  finish(): { sha256: string; lines: number } {
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

  const recorder = new LineRecorder(seed);
  const { id, link, client } = await setup.environment('Link resets', seed + 2, { onRow: (text) => recorder.row(text) });
  // The client's bytes by offset, and the ground truth: the same session's stream, straight from the server.
  const clientCopy = new StreamCopy(join(setup.dir, 'stream-client.bin'));
  const truthCopy = new StreamCopy(join(setup.dir, 'stream-reference.bin'));
  const reference = await WsTerminal.connect(setup.server.baseUrl, id, setup.user.token);
  reference.listen((data) => truthCopy.frame(data, reference.offset));
  let connects = 0;
  const stopCounting = client.listen({
    state: (state) => void (state.kind === 'connected' && (connects += 1)),
    output: (data, offset) => clientCopy.frame(data, offset),
    // A fresh stream or a jump to the current screen: the stream goes on from a new offset.
    cleared: () => clientCopy.jump(),
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
  const lines = recorder.finish();
  stopCounting();
  const referenceStayed = reference.ws.readyState === WebSocket.OPEN;
  await reference.close();
  const output = compareCopies(truthCopy, clientCopy);
  const streams = { ground_truth: describeCopy(truthCopy), client: describeCopy(clientCopy) };
  truthCopy.close();
  clientCopy.close();
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
    output: {
      ground_truth:
        "what tmux emitted for the pane: the session's output stream, by offset, as a reference client on loopback (no proxy) received it for the whole run",
      ...output,
      target: 'sha256_equal true, complete true',
      reference_connected_throughout: referenceStayed,
      streams,
    },
    lines_read_back: {
      what: "the producer's lines as the client's terminal showed them, against the producer's file: tmux draws the pane and may skip drawing lines under a fast producer (a tmux client attached straight to the session misses them too), so this measures tmux's drawing and the reading back, not the transport",
      producer_file_bytes: truth.bytes,
      producer_file_lines: truth.lines,
      producer_file_sha256: truth.sha256,
      lines_sha256: lines.sha256,
      sha256_equal: lines.sha256 === truth.sha256 && lines.lines === truth.lines,
      producer_bytes_per_second: rate,
      producer_finished: produced,
      lines_received: recorder.received,
      lines_missing: recorder.missing + Math.max(0, truth.lines - lines.lines),
      lines_corrupt: recorder.corrupt,
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
