import type { Types } from 'mongoose';
import { parseObjectId } from './object-id.js';

/** A Mongoose query (`find`, `findOne`, `findById`, `findOneAndUpdate`, …) before `.lean()`. */
export interface LeanableQuery {
  lean(): { exec(): Promise<unknown> };
}

/**
 * How a repository turns its queries into plain objects: each query runs lean (no hydrated
 * document ever leaves the repository) and each record found goes through the repository's mapper.
 */
export interface LeanMapper<T> {
  /** The record the query finds, mapped; null when it finds none. */
  one(query: LeanableQuery): Promise<T | null>;
  /** Every record the query finds, mapped, in the query's order. */
  many(query: LeanableQuery): Promise<T[]>;
  /**
   * `one(query(_id))` for the ObjectId a client-supplied id names; null without a query when it
   * names none (callers answer 404 either way).
   */
  byId(id: string, query: (_id: Types.ObjectId) => LeanableQuery): Promise<T | null>;
}

/**
 * The look-up-and-map of a repository, written once: `R` is the stored record (`UserRecord & { _id }`),
 * `map` its mapper (`toUser`). `idPattern` narrows which ids `byId` accepts (see `parseObjectId`).
 *
 * ```ts
 * const asUser = leanMapper(toUser);
 * findById(id) { return asUser.byId(id, (_id) => this.users.findById(_id)); }
 * ```
 */
export function leanMapper<R, T>(map: (record: R) => T, options: { idPattern?: RegExp } = {}): LeanMapper<T> {
  // `.lean()` hands back the stored record exactly: the mapper's parameter type is its shape.
  const one = async (query: LeanableQuery): Promise<T | null> => {
    const found = (await query.lean().exec()) as R | null;
    return found ? map(found) : null;
  };
  return {
    one,
    many: async (query) => ((await query.lean().exec()) as R[]).map((record) => map(record)),
    byId: async (id, query) => {
      const _id = parseObjectId(id, options.idPattern);
      return _id ? one(query(_id)) : null;
    },
  };
}
