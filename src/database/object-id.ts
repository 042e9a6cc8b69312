import { Types } from 'mongoose';

const HEX_24 = /^[0-9a-f]{24}$/i;

/**
 * The ObjectId a client-supplied id names, or null when it names none (callers answer 404).
 * `pattern` narrows what is accepted (environment ids must be lower-case: they reach paths).
 */
export function parseObjectId(id: string, pattern: RegExp = HEX_24): Types.ObjectId | null {
  return pattern.test(id) ? new Types.ObjectId(id) : null;
}
