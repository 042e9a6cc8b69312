const UNAVAILABLE_ERROR_NAMES = new Set([
  'MongoServerSelectionError',
  'MongooseServerSelectionError',
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoNotConnectedError',
  'MongoTopologyClosedError',
  'MongoPoolClearedError',
  'MongoPoolClosedError',
]);

/** True when an error means "the database cannot be reached right now" rather than a bug or bad input. */
export function isDatabaseUnavailableError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (UNAVAILABLE_ERROR_NAMES.has(error.name)) return true;
  if (error.name === 'MongooseError' && /buffering timed out|not connected|connection .* closed/i.test(error.message)) return true;
  const labels = (error as { errorLabelSet?: Set<string> }).errorLabelSet;
  return labels instanceof Set && labels.has('ResetPool');
}

/** True for MongoDB's duplicate-key error (E11000), raised by a unique index. */
export function isDuplicateKeyError(error: unknown): boolean {
  return error instanceof Error && (error as { code?: unknown }).code === 11000;
}
