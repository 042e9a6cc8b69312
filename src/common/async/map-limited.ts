/**
 * `fn` over every item with at most `limit` calls in flight, results in the items' order. For work
 * that opens a file per item (every process in /proc): all at once, a few thousand items would
 * take as many file descriptors together and fail with EMFILE, here and in every other open of
 * the process meanwhile (sockets included).
 */
export async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await fn(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  return results;
}
