/** Query parameters whose values never reach a log line. */
const SECRET_QUERY_PARAMS = /([?&](?:token|access_token|refresh_token|id_token|code|password|secret|api_key|key|signature)=)[^&#]*/gi;

export const REDACTED = '[REDACTED]';

/** Replaces the values of secret-looking query parameters in a URL or path. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY_PARAMS, `$1${REDACTED}`);
}

/**
 * pino `redact` paths: headers that carry credentials, and any object field named like a secret,
 * at the top level or one level down (pino's wildcard syntax). Request bodies are never logged.
 */
const SECRET_FIELDS = [
  'password',
  'current_password',
  'new_password',
  'token',
  'access_token',
  'refresh_token',
  'id_token',
  'jwtSecret',
  'secret',
  'authorization',
  'cookie',
];

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["sec-websocket-protocol"]',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((field) => `*.${field}`),
];
