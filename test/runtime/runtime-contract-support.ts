/**
 * The pieces of the runtime contract (./runtime-contract.ts): the factory's interface, the contract's
 * template, helpers to run commands and read terminals, and the context every part of the contract
 * shares (the runtime under test, the environments a test made, waiting for a state).
 */
import type { Duplex } from 'node:stream';

import type { EnvironmentSpec, ExecOptions, ExitStatus, RuntimeProvider, RuntimeStatus } from '../../src/runtime/runtime.provider.js';
import type { Template } from '../../src/templates/template.js';
import { eventually } from '../support/eventually.js';

export interface SpecOverrides {
  /** Replace parts of the test template (startup steps, required commands, shell, …). */
  template?: Partial<Omit<Template, 'startup'>> & { startup?: Partial<Template['startup']> };
  /** The environment's variables (template + user's, as the caller merges them). */
  environmentVariables?: Record<string, string>;
}

export interface RuntimeUnderTest {
  runtime: RuntimeProvider;
  /** A fresh spec (new id each call) for the small test template, with `overrides` applied. */
  spec(overrides?: SpecOverrides): EnvironmentSpec;
  /** A second runtime over the same storage and workloads, as after an API-server restart. */
  anotherInstance(): Promise<RuntimeProvider>;
  /** Releases everything the factory made (environments left over, instances, scratch storage). */
  cleanup(): Promise<void>;
}

/** The template the contract runs, for factories to build specs from. */
export function contractTemplate(overrides: SpecOverrides['template'] = {}): Template {
  const { startup, ...rest } = overrides;
  const now = new Date('2026-01-01T00:00:00Z');
  return {
    id: 'contract-test',
    name: 'contract-test',
    displayName: 'Contract test',
    description: 'The small template of the runtime contract suite',
    category: 'operating_system',
    tags: [],
    status: 'active',
    version: '1.0.0',
    defaultPort: null,
    documentationUrl: null,
    iconUrl: null,
    usageCount: 0,
    createdAt: now,
    updatedAt: now,
    deletedAt: null,
    // DevPocket's image of the debian template (images/debian): tmux, git and the user devpocket (uid 1000) baked in.
    image: 'devpocket/env-debian:1',
    user: { name: 'devpocket', uid: 1000, gid: 1000, home: '/home/devpocket' },
    shell: '/bin/bash',
    workingDirectory: '',
    ports: [],
    environmentVariables: {},
    startup: { system: [], user: [], ...startup },
    requiredCommands: [],
    defaultResources: { cpu: '500m', memory: '512Mi', storage: '1Gi' },
    runAsNonRoot: true,
    ...rest,
  };
}

export interface Output {
  text: string;
  exit: ExitStatus;
}

/** Runs argv to its end (stdin closed at once unless `input` is given) and collects its output. */
export async function runToEnd(
  runtime: RuntimeProvider,
  spec: EnvironmentSpec,
  argv: string[],
  options: Partial<ExecOptions> & { input?: string } = {},
): Promise<Output> {
  const session = await runtime.exec(spec, argv, { tty: false, ...options });
  session.stream.end(options.input);
  const chunks: Buffer[] = [];
  for await (const chunk of session.stream) chunks.push(chunk as Buffer);
  return { text: Buffer.concat(chunks).toString('utf8'), exit: await session.exit };
}

/** Everything a stream has output so far, to wait for text with eventually(). */
export function capture(stream: Duplex): { text: () => string } {
  let text = '';
  stream.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8');
  });
  return { text: () => text };
}

/** Types `command` (again every second) until `expected` appears on the screen. */
export async function typeUntil(stream: Duplex, screen: { text: () => string }, command: string, expected: string): Promise<void> {
  await eventually(
    async () => {
      stream.write(`${command}\r`);
      await eventually(() => expect(screen.text()).toContain(expected), 1_000);
    },
    15_000,
    100,
  );
}

/** How long an environment may take to reach running. */
export const STARTUP_TIMEOUT_MS = 30_000;

/**
 * What the parts of the contract share, set up by {@link contractContext} inside the contract's
 * describe(): `under` and `runtime` are set in its beforeAll (read them in hooks and tests, not while
 * tests are declared); each environment of `newSpec()` is destroyed after its test.
 */
export interface ContractContext {
  under: RuntimeUnderTest;
  runtime: RuntimeProvider;
  /** A fresh spec, destroyed after the test. */
  newSpec(overrides?: SpecOverrides): EnvironmentSpec;
  state(spec: EnvironmentSpec): Promise<RuntimeStatus>;
  /** Waits until the environment is running. */
  running(spec: EnvironmentSpec): Promise<RuntimeStatus>;
  /** Waits until the environment's startup steps have completed. */
  installed(spec: EnvironmentSpec): Promise<RuntimeStatus>;
  /** Every line of the environment's log. */
  allLogs(spec: EnvironmentSpec): Promise<string[]>;
  /** How many lines contain `text`. */
  count(lines: string[], text: string): number;
}

/** Registers the contract's hooks (in the calling describe) and returns the context its parts share. */
export function contractContext(factory: () => Promise<RuntimeUnderTest>): ContractContext {
  const created: EnvironmentSpec[] = [];
  const context: ContractContext = {
    under: undefined as unknown as RuntimeUnderTest,
    runtime: undefined as unknown as RuntimeProvider,
    newSpec: (overrides) => {
      const spec = context.under.spec(overrides);
      created.push(spec);
      return spec;
    },
    state: async (spec) => context.runtime.status(spec),
    running: async (spec) =>
      eventually(async () => {
        const status = await context.state(spec);
        expect(status.state).toBe('running');
        return status;
      }, STARTUP_TIMEOUT_MS),
    installed: async (spec) =>
      eventually(
        async () => {
          const status = await context.state(spec);
          expect(status.installation?.completed).toBe(true);
          return status;
        },
        STARTUP_TIMEOUT_MS,
        200,
      ),
    allLogs: async (spec) => (await context.runtime.logs(spec, { lines: 100_000 })).lines,
    count: (lines, text) => lines.filter((line) => line.includes(text)).length,
  };

  beforeAll(async () => {
    context.under = await factory();
    context.runtime = context.under.runtime;
  });

  afterEach(async () => {
    for (const spec of created.splice(0)) await context.runtime.destroy(spec);
  });

  afterAll(async () => {
    await (context.under as RuntimeUnderTest | undefined)?.cleanup();
  });

  return context;
}
