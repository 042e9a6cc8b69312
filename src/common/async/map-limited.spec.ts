import { mapLimited } from './map-limited.js';

describe('mapLimited', () => {
  it('keeps at most `limit` calls in flight and returns the results in order', async () => {
    let inFlight = 0;
    let most = 0;
    const results = await mapLimited([...Array(100).keys()], 8, async (n) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      await new Promise((resolve) => setImmediate(resolve));
      inFlight -= 1;
      return n * 2;
    });
    expect(most).toBe(8);
    expect(results).toEqual([...Array(100).keys()].map((n) => n * 2));
  });

  it("gives each call its item's index", async () => {
    expect(await mapLimited(['a', 'b', 'c'], 2, (item, index) => Promise.resolve(`${index}${item}`))).toEqual(['0a', '1b', '2c']);
  });

  it('handles no items, and fewer items than the limit', async () => {
    expect(await mapLimited([], 8, () => Promise.resolve(1))).toEqual([]);
    expect(await mapLimited(['a'], 8, (item) => Promise.resolve(item.toUpperCase()))).toEqual(['A']);
  });

  it('rejects with the first failure', async () => {
    await expect(mapLimited([1, 2, 3], 2, (n) => (n === 2 ? Promise.reject(new Error('two')) : Promise.resolve(n)))).rejects.toThrow('two');
  });
});
