import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { INestApplicationContext, Type } from '@nestjs/common';
import { AuditService } from '../audit/audit.service.js';
import { PASSWORD_RULE, USERNAME_RULE } from '../auth/dto/auth.dto.js';
import { PasswordHasher } from '../auth/passwords/password-hasher.js';
import { formatTemplateLoadReport, TemplatesLoader } from '../templates/templates.loader.js';
import { TemplatesModule } from '../templates/templates.module.js';
import { isPlanName, PLAN_NAMES } from '../users/plans.js';
import { ROLES, Role, User } from '../users/user.js';
import { UsersModule } from '../users/users.module.js';
import { UsersRepository } from '../users/users.repository.js';
import { UsersService } from '../users/users.service.js';
import { PasswordHashingModule } from './cli.module.js';

export const HELP = `DevPocket Server command line

Usage: npm run cli -- <command> [options]      (or: node dist/cli.js <command> …)

Commands:
  create-admin --username NAME --email EMAIL [--password PASSWORD]
      Creates an admin account, or makes the existing account with that username or email an admin.
      Without --password a strong one is generated and printed once.
  set-plan USER PLAN      USER is an id, username or email; PLAN is one of ${PLAN_NAMES.join(', ')}
  set-role USER ROLE      ROLE is one of ${ROLES.join(', ')}
  templates:load [--prune]
      Loads the template files (TEMPLATES_DIR, default ./templates) and prints what changed; --prune
      soft-deletes file templates whose file is gone. Exits 1 if a file was refused (the others still load).
  help

It uses the same configuration as the server (MONGODB_URI, or the embedded database under DATA_DIR).`;

/** Bad arguments: the CLI prints the message and exits with code 2. */
export class UsageError extends Error {}

function describe(user: User): string {
  return `${user.username} <${user.email}> id=${user.id} role=${user.role} plan=${user.plan} active=${String(user.isActive)}`;
}

async function createAdmin(app: INestApplicationContext, args: string[]): Promise<string> {
  const { values } = parseArgs({
    args,
    options: { username: { type: 'string' }, email: { type: 'string' }, password: { type: 'string' } },
  });
  const username = values.username?.trim();
  const email = values.email?.trim().toLowerCase();
  if (!username || !USERNAME_RULE.test(username)) throw new UsageError('--username must be 3-30 characters of letters, digits, _ and -');
  if (!email || !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) throw new UsageError('--email must be an email address');
  const generated = values.password === undefined;
  const password = values.password ?? `${randomBytes(18).toString('base64url')}aA1`;
  if (!PASSWORD_RULE.test(password))
    throw new UsageError('--password must be 8-128 characters with a lower-case letter, an upper-case letter and a digit');

  const users = app.get(UsersRepository);
  const audit = app.get(AuditService);
  const existing = (await users.findByUsername(username)) ?? (await users.findByEmail(email));
  if (existing) {
    const promoted = (await users.updateAsAdmin(existing.id, { role: 'admin', isActive: true })) ?? existing;
    await audit.record({
      action: 'admin.user_updated',
      actorUsername: 'cli',
      targetId: promoted.id,
      target: promoted.username,
      details: { role: { from: existing.role, to: 'admin' } },
    });
    return `Existing account is now an admin: ${describe(promoted)}`;
  }
  const passwordHash = await app.get(PasswordHasher).hash(password);
  const user = await users.create({ username, email, passwordHash, role: 'admin', isVerified: true });
  await audit.record({
    action: 'admin.user_created',
    actorUsername: 'cli',
    targetId: user.id,
    target: user.username,
    details: { role: 'admin' },
  });
  return `Created admin ${describe(user)}${generated ? `\nPassword (shown once, store it safely): ${password}` : ''}`;
}

async function setField(app: INestApplicationContext, args: string[], field: 'plan' | 'role'): Promise<string> {
  const [reference, value] = args;
  if (!reference || !value) throw new UsageError(`usage: set-${field} USER ${field.toUpperCase()}`);
  const service = app.get(UsersService);
  const user = await service.find(reference);
  if (!user) throw new UsageError(`No user with id, username or email "${reference}"`);
  let updated: User | null;
  if (field === 'plan') {
    if (!isPlanName(value)) throw new UsageError(`PLAN must be one of ${PLAN_NAMES.join(', ')}`);
    updated = await service.setPlan(user.id, value);
  } else {
    if (!(ROLES as readonly string[]).includes(value)) throw new UsageError(`ROLE must be one of ${ROLES.join(', ')}`);
    updated = await service.setRole(user.id, value as Role);
  }
  const before = field === 'plan' ? user.plan : user.role;
  await app.get(AuditService).record({
    action: 'admin.user_updated',
    actorUsername: 'cli',
    targetId: user.id,
    target: user.username,
    details: { [field === 'plan' ? 'subscription_plan' : 'role']: { from: before, to: value } },
  });
  return `Updated ${describe(updated ?? user)}`;
}

async function loadTemplates(app: INestApplicationContext, args: string[]): Promise<string> {
  let prune: boolean;
  try {
    prune = parseArgs({ args, options: { prune: { type: 'boolean', default: false } } }).values.prune === true;
  } catch (error) {
    throw new UsageError(`usage: templates:load [--prune] (${error instanceof Error ? error.message : String(error)})`);
  }
  const report = await app.get(TemplatesLoader).load({ prune });
  const text = formatTemplateLoadReport(report);
  if (report.errors.length === 0) return text;
  process.stdout.write(`${text}\n`);
  // Exit code 1 without a stack trace: the report above says what is wrong.
  const message = `${report.errors.length} template file(s) refused; the others were loaded`;
  throw Object.assign(new Error(message), { stack: message });
}

export interface CliCommand {
  /** The feature modules the command uses, loaded into `CliModule` next to the database and the audit log. */
  needs: readonly Type[];
  run(app: INestApplicationContext, args: string[]): Promise<string>;
}

/** Every command, by name, with what it needs and nothing more. */
export const COMMANDS: Readonly<Record<string, CliCommand>> = {
  'create-admin': { needs: [UsersModule, PasswordHashingModule], run: createAdmin },
  'set-plan': { needs: [UsersModule], run: (app, args) => setField(app, args, 'plan') },
  'set-role': { needs: [UsersModule], run: (app, args) => setField(app, args, 'role') },
  'templates:load': { needs: [TemplatesModule], run: loadTemplates },
};
