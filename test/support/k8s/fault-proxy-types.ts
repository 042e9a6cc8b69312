/** The public types of the fault-injecting proxy (./fault-proxy.ts): options, rules, records, the proxy itself. */
export interface FaultProxyOptions {
  /** The kube-apiserver, `https://HOST:PORT` (a path prefix, if any, is prepended to every request path). */
  upstream: string;
  /** CA certificate(s) the upstream's certificate must chain to (PEM). Without it, the system CAs. */
  ca?: Buffer | string;
  /** False to accept any upstream certificate. Default true. */
  rejectUnauthorized?: boolean;
  /** TLS server name to verify the upstream against (a cluster's `tls-server-name`). */
  servername?: string;
  /** Client certificate and key (PEM) the proxy presents to the upstream (certificate-based users). */
  cert?: Buffer | string;
  key?: Buffer | string;
  /** Like a load balancer: cut an upgraded connection (exec) after this long without a byte either way. */
  idleTimeoutMs?: number;
}

/** Which requests a rule or query applies to; every given field must match, an empty match matches all. */
export interface FaultMatch {
  /** HTTP method, case-insensitive. */
  method?: string;
  /** Tested against the path with its query string, e.g. /\/api\/v1\/namespaces\/[^/]+\/pods\b/. */
  path?: RegExp;
}

export interface TimesOption {
  /** Apply to this many matching requests, then remove the rule. Default: until removed. */
  times?: number;
}

export interface FailOptions extends TimesOption {
  /** HTTP status to answer with. */
  status: number;
  /**
   * Response body: a string is sent as is, anything else as JSON. Default: a Kubernetes Status,
   * `{"kind":"Status","apiVersion":"v1","status":"Failure","message":…,"reason":…,"code":status}`.
   */
  body?: unknown;
  /** With the default body: its message (default "injected fault") and reason (default from the status). */
  message?: string;
  reason?: string;
  /** Extra response headers, e.g. `{ 'retry-after': '1' }`. */
  headers?: Record<string, string>;
}

export type FaultKind = 'fail' | 'hang' | 'delay' | 'reset';

/** A rule as added; `remove()` takes it out (idempotent). */
export interface FaultRule {
  readonly kind: FaultKind;
  /** Requests it has applied to so far. */
  readonly hits: number;
  /** False once removed, by remove(), clear() or by running out of `times`. */
  readonly active: boolean;
  remove(): void;
}

/** One request the proxy received, in order of arrival. */
export interface RequestRecord {
  method: string;
  /** Path with query string, as the client sent it. */
  path: string;
  /**
   * Status answered: the upstream's (101 for an accepted upgrade), the injected one, 502 when the
   * upstream could not be reached; null while pending, or when hung, reset, or abandoned before an answer.
   */
  status: number | null;
  /** Date.now() at arrival. */
  at: number;
  /** The rule that applied, if any. */
  fault: FaultKind | null;
  /** True for an HTTP upgrade (exec, attach, port-forward). */
  upgrade: boolean;
}

/** A long-lived exchange currently open through the proxy. */
export interface OpenStream {
  kind: 'watch' | 'upgrade';
  method: string;
  path: string;
  /** Date.now() when it was forwarded. */
  since: number;
}

/**
 * The running proxy. Rules apply to plain requests and upgrades alike; when several match a request,
 * the most recently added one applies (only one per request).
 */
export interface FaultProxy {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  /** Answers matching requests with `status` without contacting the upstream. */
  fail(match: FaultMatch, options: FailOptions): FaultRule;
  /** Accepts matching requests and never answers; their sockets are destroyed by close(). */
  hang(match: FaultMatch, options?: TimesOption): FaultRule;
  /** Forwards matching requests after `ms` milliseconds. */
  delay(match: FaultMatch, ms: number, options?: TimesOption): FaultRule;
  /** Destroys the client's connection as matching requests arrive (ECONNRESET / "socket hang up"). */
  reset(match: FaultMatch, options?: TimesOption): FaultRule;
  /**
   * Destroys, now, every open watch (`watch=true|1`; also `follow=true|1` log streams) and upgraded
   * connection (exec, attach) that matches, on both sides, like a dropped connection. Returns how many.
   */
  dropStreams(match?: FaultMatch): number;
  /** The watches and upgraded connections open now (to wait for one before dropping it). */
  streams(match?: FaultMatch): OpenStream[];
  /**
   * Silences, now, every upgraded connection (exec, attach) that matches, in both directions, without
   * closing either side: like a peer or a middlebox that vanished (no FIN, no RST). Bytes that arrive
   * afterwards (WebSocket pings included) are read and dropped; the sockets stay open until the client
   * gives up, or dropStreams()/close() destroys them. Returns how many.
   */
  blackholeStreams(match?: FaultMatch): number;
  /** Removes every rule (requests already hung stay hung). */
  clear(): void;
  /** Snapshot of the requests received since start or the last resetLog(), matching if given. */
  requests(match?: FaultMatch): RequestRecord[];
  resetLog(): void;
  /** Stops listening and destroys every socket, both sides. Idempotent. */
  close(): Promise<void>;
}
