/**
 * WebSocket close codes of the DevPocket API (4000-4999 are for applications). Each rejection
 * first sends `{"type":"error","message":…}` with a readable reason, then closes with its code.
 */
export enum WsCloseCode {
  /** Normal closure. */
  Normal = 1000,
  /** The server is shutting down (graceful restart); reconnect. */
  GoingAway = 1001,
  /** No or invalid access token (or a refresh token). */
  Unauthorized = 4001,
  /** The token is valid but the caller may not use this resource. */
  Forbidden = 4003,
  /** No such environment for this user (another user's id answers the same). */
  NotFound = 4004,
  /** The environment is not running (terminal) or gone. */
  NotRunning = 4009,
  /** Too many connections for the environment or the user. */
  TooManyConnections = 4029,
  /** The client broke the protocol (malformed frames, oversized input, flooding). */
  PolicyViolation = 4008,
  /** The client stopped answering pings. */
  Timeout = 4010,
  /** The environment's upstream failed; reconnecting may help. */
  UpstreamError = 4500,
}
