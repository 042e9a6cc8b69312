import { describe, expect, it } from 'vitest';
import { InputLog, MAX_FRAME_CHARS, type InputEntry } from './input-log.js';

const seqs = (entries: InputEntry[] | null): number[] => (entries ?? []).map((entry) => entry.seq);
const sendAll = (log: InputLog, entries: InputEntry[] | null): void => {
  for (const entry of entries ?? []) log.markSent(entry);
};

describe('InputLog (input numbered and kept until acknowledged)', () => {
  it('numbers inputs 1, 2, 3… and keeps them until an ack covers them', () => {
    const log = new InputLog();
    expect(seqs(log.add('a'))).toEqual([1]);
    expect(seqs(log.add('b'))).toEqual([2]);
    expect(seqs(log.add('c'))).toEqual([3]);
    expect(log.size).toBe(3);
    log.ack(2);
    expect(log.size).toBe(1);
    expect(seqs(log.resume(2))).toEqual([3]);
    log.ack(3);
    expect(log.size).toBe(0);
    expect(seqs(log.add('d'))).toEqual([4]);
  });

  it('splits a paste longer than one frame into consecutive seqs, "more" on all but the last, never inside a surrogate pair', () => {
    const log = new InputLog();
    const paste = `${'x'.repeat(MAX_FRAME_CHARS - 1)}😀${'y'.repeat(MAX_FRAME_CHARS)}z`;
    const entries = log.add(paste)!;
    expect(seqs(entries)).toEqual([1, 2, 3]);
    expect(entries.map((entry) => entry.more)).toEqual([true, true, false]);
    expect(entries.map((entry) => entry.data).join('')).toBe(paste);
    expect(entries[0].data.length).toBe(MAX_FRAME_CHARS - 1); // the emoji went whole into the next frame
    expect(entries.every((entry) => entry.data.length <= MAX_FRAME_CHARS)).toBe(true);
  });

  it('after a welcome, returns in order what its input.seq does not cover: sent and never sent alike', () => {
    const log = new InputLog();
    sendAll(log, log.add('one'));
    sendAll(log, log.add('two'));
    sendAll(log, log.add('three'));
    log.add('typed while down');
    const resend = log.resume(1);
    expect(seqs(resend)).toEqual([2, 3, 4]);
    expect(resend.map((entry) => entry.data)).toEqual(['two', 'three', 'typed while down']);
    expect(log.awaiting).toBe(true);
  });

  it('keeps to a bound: a paste that would pass it is refused whole, and accepted again once acks make room', () => {
    const log = new InputLog(100);
    expect(log.add('a'.repeat(60))).not.toBeNull();
    expect(log.add('b'.repeat(50))).toBeNull();
    expect(log.size).toBe(60);
    expect(log.lastSeq).toBe(1); // nothing numbered for the refused input
    log.ack(1);
    expect(seqs(log.add('b'.repeat(50)))).toEqual([2]);
  });

  it('a 1 MiB paste fits the default bound', () => {
    const log = new InputLog();
    expect(log.add('p'.repeat(1024 * 1024))).toHaveLength(32);
  });

  it('renumbers after the server\u2019s seq what was never sent when the server knows seqs this page never sent (a reload)', () => {
    const log = new InputLog();
    log.add('typed before the first welcome');
    log.add('and more');
    const resend = log.resume(41); // the client id's last seq, from before the reload
    expect(seqs(resend)).toEqual([42, 43]);
    expect(seqs(log.add('next'))).toEqual([44]);
  });

  it('drops (at most once) what it sent when the server is past it without having been told by this page', () => {
    const log = new InputLog();
    sendAll(log, log.add('sent'));
    log.add('unsent');
    const resend = log.resume(7);
    expect(resend.map((entry) => [entry.seq, entry.data])).toEqual([[8, 'unsent']]);
  });

  it('after a server that lost its memory (seq 0), sends everything kept again with its own seqs', () => {
    const log = new InputLog();
    sendAll(log, log.add('a'));
    sendAll(log, log.add('b'));
    expect(seqs(log.resume(0))).toEqual([1, 2]);
  });

  it('forgets what was sent for a server that acknowledges nothing, and keeps what was not', () => {
    const log = new InputLog();
    sendAll(log, log.add('sent'));
    log.add('unsent');
    expect(log.resumeUnacknowledged().map((entry) => entry.data)).toEqual(['unsent']);
    expect(log.size).toBe('unsent'.length);
  });
});
