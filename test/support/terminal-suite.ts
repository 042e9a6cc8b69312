import type { TestAccount } from './accounts.js';
import { createEnvironmentsApp, EnvironmentBody, EnvironmentsApp } from './environments.js';
import { TerminalTestClient } from './terminal-client.js';

type ConnectOptions = Parameters<typeof TerminalTestClient.connect>[2];

/** One running environment of a signed-in owner, and terminal clients on it that are closed after each test. */
export interface TerminalSuite {
  readonly app: EnvironmentsApp;
  readonly owner: TestAccount & { id: string };
  readonly env: EnvironmentBody;
  /** A terminal client of the owner (its token unless `options` says otherwise) on `id` (the suite's environment). */
  connect(options?: ConnectOptions, id?: string): Promise<TerminalTestClient>;
  /** Closes `client` after the test, like the suite's own. */
  track(client: TerminalTestClient): void;
  /** Closes every client opened so far. */
  closeAll(): Promise<void>;
}

/**
 * Registers the hooks of a terminal e2e suite: the environments app with `env` settings, a pro
 * owner with one running environment named `name`, every client closed after each test.
 */
export function terminalSuite(name: string, env: Record<string, string>): TerminalSuite {
  let app: EnvironmentsApp | undefined;
  let owner: (TestAccount & { id: string }) | undefined;
  let environment: EnvironmentBody | undefined;
  const clients: TerminalTestClient[] = [];
  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the terminal suite is not set up (beforeAll failed?)');
    return value;
  };

  beforeAll(async () => {
    app = await createEnvironmentsApp({ env });
    owner = await app.account('pro');
    environment = await app.createRunning(owner, { name });
  }, 120_000);
  const closeAll = async (): Promise<void> => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  };
  afterEach(closeAll);
  afterAll(() => app?.close(), 120_000);

  return {
    get app() {
      return ready(app);
    },
    get owner() {
      return ready(owner);
    },
    get env() {
      return ready(environment);
    },
    async connect(options = {}, id = ready(environment).id) {
      const client = await TerminalTestClient.connect(ready(app).baseUrl, id, { token: ready(owner).tokens.access_token, ...options });
      clients.push(client);
      return client;
    },
    track(client) {
      clients.push(client);
    },
    closeAll,
  };
}
