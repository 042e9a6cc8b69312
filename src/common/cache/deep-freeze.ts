/**
 * Freezes a value and everything it holds, so that one copy can be served to every caller of a
 * cache: a caller that tried to change it throws (strict mode) instead of changing what others
 * are served. Type what is served as `DeepReadonly` so the compiler refuses such a change first.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

/** `T` with every property, array and nested object read-only (a Date stays a Date). */
export type DeepReadonly<T> = T extends Date
  ? T
  : T extends readonly (infer E)[]
    ? readonly DeepReadonly<E>[]
    : T extends object
      ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
      : T;
