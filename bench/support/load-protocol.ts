/** The messages between the load bench (bench/suites/load.ts) and its client process (load-generator.ts). */

export interface Target {
  environmentId: string;
  token: string;
  /** Connections to open to this environment. */
  clients: number;
}

export type GeneratorRequest =
  | {
      type: 'connect';
      /** Clients go round-robin to these servers (one per replica). */
      baseUrls: string[];
      targets: Target[];
      concurrency: number;
      cols: number;
      rows: number;
    }
  | {
      type: 'measure';
      seconds: number;
      /** Clients of each environment (the last `slowPerEnvironment` of them read slowly). */
      clientsPerEnvironment: number;
      slowPerEnvironment: number;
      slowBytesPerSecond: number;
    }
  | { type: 'close' };

export interface ClientFigures {
  replica: number;
  slow: boolean;
  /** Terminal stream bytes received (the UTF-8 `data` of output frames). */
  bytes: number;
  /** WebSocket payload bytes received (JSON frames). */
  wire_bytes: number;
  frames: number;
  open: boolean;
}

export type GeneratorReply =
  | { type: 'connected'; connected: number; failed: number; errors: string[]; seconds: number }
  | {
      type: 'measured';
      seconds: number;
      clients: ClientFigures[];
      /** Connections closed by the server since they opened, and during this measurement. */
      dropped: number;
      dropped_during: number;
      close_codes: string[];
      generator_cpu_percent: number;
    }
  | { type: 'closed' }
  | { type: 'failed'; message: string };
