/** What every benchmark suite gets from `bench/run.ts`. */
export interface BenchContext {
  mongodbUri: string;
  /** A free port for the server under test. */
  port: number;
}

/** A suite: runs its load against the built server and returns its figures (one JSON object). */
export type Suite = (ctx: BenchContext) => Promise<Record<string, unknown>>;
