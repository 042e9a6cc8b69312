import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import type { AccountsApp, TestAccount } from './accounts.js';
import { runCli } from './cli.js';
import type { TestDatabase } from './database.js';
import { REPO_ROOT } from './server-process.js';

/** What the templates e2e suites share: the API's body types, the shipped files, a valid definition, an admin. */
export interface TemplateBody {
  id: string;
  name: string;
  display_name: string;
  description: string;
  category: string;
  tags: string[];
  docker_image: string;
  default_resources: Record<string, string>;
  environment_variables: Record<string, string>;
  startup_commands: string[];
  status: string;
  version: string;
  created_at: string;
  updated_at: string;
  usage_count: number;
  default_port: number | null;
  documentation_url: string | null;
  icon_url: string | null;
  user: { name: string; uid: number; gid: number; home: string };
  shell: string;
  working_directory: string;
  ports: { name: string; port: number; protocol: string }[];
  startup: { system: string[]; user: string[] };
  required_commands: string[];
  run_as_non_root: boolean;
  deleted_at: string | null;
}

export interface ErrorBody {
  detail: string;
  code: string;
  errors?: { field: string; message: string; code?: string }[];
}

export const SHIPPED_DIR = join(REPO_ROOT, 'templates');
export const SHIPPED = readdirSync(SHIPPED_DIR)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => f.replace(/\.yaml$/, ''))
  .sort();

/** A registered account made admin through the CLI. */
export async function adminOf(app: AccountsApp): Promise<TestAccount> {
  const account = await app.register();
  const promoted = await runCli(app.database, ['set-role', account.username, 'admin']);
  expect(promoted.code).toBe(0);
  return account;
}

/** A valid template body (the file format as JSON). */
export function definition(name: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    display_name: `Template ${name}`,
    description: 'Created by a test',
    category: 'database',
    tags: ['test'],
    status: 'active',
    version: '1.0.0',
    default_port: 5432,
    documentation_url: 'https://example.com/docs',
    icon_url: null,
    image: 'postgres:16-bookworm',
    user: { name: 'postgres', uid: 999, gid: 999, home: '/var/lib/postgresql' },
    shell: '/bin/bash',
    working_directory: '',
    ports: [{ name: 'postgres', port: 5432, protocol: 'TCP' }],
    environment_variables: { LANG: 'C.UTF-8' },
    startup: { system: [], user: ['echo ready'] },
    required_commands: ['bash', 'tmux', 'psql'],
    default_resources: { cpu: '250m', memory: '512Mi', storage: '1Gi' },
    run_as_non_root: true,
    ...overrides,
  };
}

export async function templateDocuments(database: TestDatabase): Promise<{ name: string }[]> {
  const client = new MongoClient(database.uri);
  try {
    return await client
      .db(database.name)
      .collection<{ name: string }>('templates')
      .find({}, { projection: { name: 1 } })
      .toArray();
  } finally {
    await client.close();
  }
}

export const names = (list: TemplateBody[]): string[] => list.map((t) => t.name);
