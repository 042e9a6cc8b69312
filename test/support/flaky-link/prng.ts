/**
 * The flaky link's randomness: a counter-based variant of mulberry32 (Tommy Ettinger's 32-bit
 * generator), written for this proxy. `mulberry32(seed)` is an ordinary stream (each call the next
 * number); `randomAt(seed, index)` is the same stream's number at position `index`, computed
 * directly, so a decision can be tied to a position (a segment of a byte stream) instead of to the
 * order in which the decisions happen to be asked for.
 */

const GOLDEN = 0x6d2b79f5;

/** mulberry32's output function: a 32-bit mix of its input. */
function mix(state: number): number {
  let t = state | 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}

/** The `index`-th number (from 0) of the stream seeded with `seed`, uniform in [0, 1). */
export function randomAt(seed: number, index: number): number {
  return mix((seed + Math.imul(index + 1, GOLDEN)) | 0) / 4294967296;
}

/** A generator: each call returns the stream's next number, uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let index = 0;
  return () => randomAt(seed, index++);
}

/** A seed of its own for a sub-stream (a connection's direction), derived from a seed and labels. */
export function deriveSeed(seed: number, ...labels: number[]): number {
  let state = mix(seed ^ 0x9e3779b9);
  for (const label of labels) state = mix((state ^ Math.imul(label + 1, GOLDEN)) | 0);
  return state;
}
