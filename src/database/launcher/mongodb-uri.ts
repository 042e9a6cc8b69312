interface UriParts {
  /** `mongodb://user:pass@host1,host2` */
  prefix: string;
  /** Database name (may be empty). */
  database: string;
  /** Query string including the leading `?`, or empty. */
  query: string;
}

const SCHEME = /^mongodb(\+srv)?:\/\//;

function splitUri(uri: string): UriParts {
  const scheme = SCHEME.exec(uri);
  if (scheme === null) {
    throw new Error(`Not a MongoDB connection string: ${redactUri(uri)}`);
  }

  const rest = uri.slice(scheme[0].length);
  const authorityEnd = firstIndexOf(rest, ['/', '?']);
  const prefix = uri.slice(0, scheme[0].length + authorityEnd);
  const tail = rest.slice(authorityEnd);

  const queryStart = tail.indexOf('?');
  const pathPart = queryStart === -1 ? tail : tail.slice(0, queryStart);
  const query = queryStart === -1 ? '' : tail.slice(queryStart);

  return { prefix, database: pathPart.replace(/^\//, ''), query };
}

function firstIndexOf(text: string, characters: readonly string[]): number {
  const positions = characters.map((c) => text.indexOf(c)).filter((i) => i !== -1);
  return positions.length === 0 ? text.length : Math.min(...positions);
}

/** Returns `uri` with its database name replaced by `database` (options are kept). */
export function withDatabaseName(uri: string, database: string): string {
  const parts = splitUri(uri);
  return `${parts.prefix}/${database}${parts.query}`;
}

/** Returns `uri` without a database name (options are kept). */
export function withoutDatabaseName(uri: string): string {
  const parts = splitUri(uri);
  return parts.query === '' ? parts.prefix : `${parts.prefix}/${parts.query}`;
}

/** Hides the password of a connection string, for logs. */
export function redactUri(uri: string): string {
  return uri.replace(/^(mongodb(?:\+srv)?:\/\/[^:/@]+:)[^@/]*@/, '$1***@');
}
