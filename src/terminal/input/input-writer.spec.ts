import { InputLedger, InputWriter, SequencedInput } from './input-writer.js';

function writer(holdMs = 5000): {
  written: string[];
  acks: [string, number, boolean][];
  submit: (input: Partial<SequencedInput>) => void;
  w: InputWriter;
} {
  const written: string[] = [];
  const acks: [string, number, boolean][] = [];
  const w = new InputWriter(
    { write: (data) => written.push(data), written: (who, seq, duplicate) => acks.push([who, seq, duplicate]) },
    new InputLedger(3),
    holdMs,
  );
  const submit = (input: Partial<SequencedInput>): void =>
    w.submit({ data: '', writer: 'client-aaaaaaaaaaaaaa', seq: null, more: false, ...input });
  return { written, acks, submit, w };
}

describe('InputWriter', () => {
  afterEach(() => vi.useRealTimers());

  it('writes each seq of a client_id once, in order; a resend is acknowledged again, never written', () => {
    const { written, acks, submit } = writer();
    submit({ data: 'a', seq: 1 });
    submit({ data: 'b', seq: 2 });
    submit({ data: 'a', seq: 1 });
    submit({ data: 'b', seq: 2 });
    submit({ data: 'c', seq: 3 });
    // A seq that skips ahead (the server forgot) is written.
    submit({ data: 'e', seq: 5 });
    submit({ data: 'plain' });
    expect(written).toEqual(['a', 'b', 'c', 'e', 'plain']);
    expect(acks.map(([, seq, duplicate]) => [seq, duplicate])).toEqual([
      [1, false],
      [2, false],
      [2, true],
      [2, true],
      [3, false],
      [5, false],
    ]);
  });

  it('does not deduplicate connection keys (no client_id): the session does that per connection', () => {
    const { written, submit } = writer();
    submit({ data: 'x', seq: 1, writer: '~r:1' });
    submit({ data: 'y', seq: 1, writer: '~r:2' });
    expect(written).toEqual(['x', 'y']);
  });

  it("holds other writers' input while a multi-part input is unfinished, then writes it in order", () => {
    const { written, submit, w } = writer();
    submit({ data: 'P1', seq: 1, more: true });
    submit({ data: 'k1', writer: '~other:1' });
    submit({ data: 'P2', seq: 2, more: true });
    submit({ data: 'k2', writer: '~other:1' });
    expect(w.held).toBe(2);
    submit({ data: 'P3', seq: 3 });
    expect(written).toEqual(['P1', 'P2', 'P3', 'k1', 'k2']);
    expect(w.held).toBe(0);
  });

  it('lets the held input go after the hold time when the last part never comes', () => {
    vi.useFakeTimers();
    const { written, submit } = writer(5000);
    submit({ data: 'P1', seq: 1, more: true });
    submit({ data: 'k', writer: '~other:1' });
    vi.advanceTimersByTime(4999);
    expect(written).toEqual(['P1']);
    vi.advanceTimersByTime(1);
    expect(written).toEqual(['P1', 'k']);
  });

  it('forgets the least recently written client_ids beyond its capacity', () => {
    const ledger = new InputLedger(2);
    ledger.set('a', 1);
    ledger.set('b', 1);
    ledger.set('a', 2);
    ledger.set('c', 1);
    expect([ledger.get('a'), ledger.get('b'), ledger.get('c')]).toEqual([2, 0, 1]);
    ledger.merge([
      ['a', 1],
      ['c', 7],
    ]);
    expect([ledger.get('a'), ledger.get('c')]).toEqual([2, 7]);
  });
});
