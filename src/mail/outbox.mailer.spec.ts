import { Logger } from '@nestjs/common';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MockInstance } from 'vitest';
import { parseMail } from '../../test/support/smtp-server.js';
import type { AppConfig } from '../config/namespaces/app.config.js';
import type { MailConfig } from '../config/namespaces/mail.config.js';
import { MailDeliveryError } from './mailer.js';
import { OutboxMailer } from './outbox.mailer.js';

const FROM = 'DevPocket <no-reply@devpocket.test>';

function appConfig(isProduction: boolean, dataDir: string): AppConfig {
  return {
    nodeEnv: isProduction ? 'production' : 'development',
    isProduction,
    host: '127.0.0.1',
    port: 0,
    dataDir,
    swaggerEnabled: false,
    shutdownTimeoutMs: 1000,
  };
}

function mailConfig(outboxDir: string): MailConfig {
  return { url: null, from: FROM, outboxDir, publicUrl: 'http://localhost:8000' };
}

/** Everything our Logger instances printed, at any level, while the spies were installed. */
function captureLogs(): { lines: () => string[]; restore: () => void } {
  const spies: MockInstance[] = (['log', 'error', 'warn', 'debug', 'verbose', 'fatal'] as const).map((level) =>
    vi.spyOn(Logger.prototype, level).mockImplementation(() => undefined),
  );
  return {
    lines: () => spies.flatMap((spy) => spy.mock.calls.map((args) => args.map(String).join(' '))),
    restore: () => spies.forEach((spy) => spy.mockRestore()),
  };
}

describe('OutboxMailer', () => {
  let dataDir: string;
  let outboxDir: string;
  let logs: ReturnType<typeof captureLogs>;

  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'devpocket-outbox-'));
    outboxDir = join(dataDir, 'outbox');
    logs = captureLogs();
  });

  afterEach(() => {
    logs.restore();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const emlFiles = (): string[] => readdirSync(outboxDir).filter((name) => name.endsWith('.eml'));

  it('writes each message as an RFC 822 .eml file that a mail client can read', async () => {
    const mailer = new OutboxMailer(mailConfig(outboxDir), appConfig(false, dataDir));

    await mailer.send({
      to: 'ada@example.test',
      subject: 'Your DevPocket code: 482913 ✓',
      text: 'Hello Ada,\n\nyour verification code is 482913. Grüße!',
      html: '<p>Your verification code is <b>482913</b>.</p>',
    });

    const [name, ...others] = emlFiles();
    expect(others).toEqual([]);
    expect(name).toMatch(/^\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{8}\.eml$/);
    const raw = readFileSync(join(outboxDir, name), 'utf8');
    expect(raw).toMatch(/\r\n\r\n/);
    expect(raw.replace(/\r\n/g, '')).not.toMatch(/\n/);
    const mail = parseMail(raw);
    expect(mail.from).toBe(FROM);
    expect(mail.to).toBe('ada@example.test');
    expect(mail.subject).toBe('Your DevPocket code: 482913 ✓');
    expect(mail.text).toBe('Hello Ada,\n\nyour verification code is 482913. Grüße!');
    expect(mail.html).toBe('<p>Your verification code is <b>482913</b>.</p>');
    expect(mail.headers.get('message-id')).toMatch(/^<.+@devpocket\.test>$/);
    expect(mail.headers.get('date')).toBeTruthy();
    expect(mail.headers.get('mime-version')).toBe('1.0');
  });

  it('keeps the outbox private: directory 0700, files 0600', async () => {
    const mailer = new OutboxMailer(mailConfig(outboxDir), appConfig(false, dataDir));

    await mailer.send({ to: 'ada@example.test', subject: 'One', text: 'one' });

    expect(statSync(outboxDir).mode & 0o777).toBe(0o700);
    const [name] = emlFiles();
    expect(statSync(join(outboxDir, name)).mode & 0o777).toBe(0o600);
  });

  it('never overwrites: messages sent at the same moment get their own files', async () => {
    const mailer = new OutboxMailer(mailConfig(outboxDir), appConfig(false, dataDir));

    await Promise.all(
      Array.from({ length: 20 }, (_, i) => mailer.send({ to: `user${i}@example.test`, subject: `Mail ${i}`, text: `body ${i}` })),
    );

    const files = emlFiles();
    expect(files).toHaveLength(20);
    const recipients = files.map((name) => parseMail(readFileSync(join(outboxDir, name), 'utf8')).to).sort();
    expect(recipients).toEqual(Array.from({ length: 20 }, (_, i) => `user${i}@example.test`).sort());
  });

  it('recreates the outbox when it was deleted between two messages', async () => {
    const mailer = new OutboxMailer(mailConfig(outboxDir), appConfig(false, dataDir));
    await mailer.send({ to: 'ada@example.test', subject: 'First', text: 'first' });
    rmSync(outboxDir, { recursive: true });

    await mailer.send({ to: 'ada@example.test', subject: 'Second', text: 'second' });

    expect(emlFiles()).toHaveLength(1);
  });

  it('outside production logs one line naming recipient, subject and file, and the text body', async () => {
    const mailer = new OutboxMailer(mailConfig(outboxDir), appConfig(false, dataDir));

    await mailer.send({ to: 'ada@example.test', subject: 'Verify your e-mail', text: 'Your code is 482913' });

    const [name] = emlFiles();
    const lines = logs.lines();
    const summary = lines.find((line) => line.includes(join(outboxDir, name)));
    expect(summary).toBeDefined();
    expect(summary).toContain('ada@example.test');
    expect(summary).toContain('Verify your e-mail');
    expect(summary).not.toContain('\n');
    expect(lines.some((line) => line.includes('Your code is 482913'))).toBe(true);
  });

  it('in production never logs the body', async () => {
    const mailer = new OutboxMailer(mailConfig(outboxDir), appConfig(true, dataDir));

    await mailer.send({ to: 'ada@example.test', subject: 'Verify your e-mail', text: 'Your code is 482913', html: '<b>482913</b>' });

    const [name] = emlFiles();
    const lines = logs.lines();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('ada@example.test');
    expect(lines[0]).toContain('Verify your e-mail');
    expect(lines[0]).toContain(join(outboxDir, name));
    expect(lines.join('\n')).not.toContain('482913');
    expect(parseMail(readFileSync(join(outboxDir, name), 'utf8')).text).toBe('Your code is 482913');
  });

  it('reports an outbox it cannot write as MailDeliveryError, logging no success', async () => {
    const blocker = join(dataDir, 'not-a-directory');
    writeFileSync(blocker, '');
    const mailer = new OutboxMailer(mailConfig(join(blocker, 'outbox')), appConfig(false, dataDir));

    const failure = mailer.send({ to: 'ada@example.test', subject: 'Lost', text: 'Your code is 482913' });

    await expect(failure).rejects.toBeInstanceOf(MailDeliveryError);
    await expect(failure).rejects.toThrow(/outbox .*not-a-directory.*ENOTDIR/);
    expect(logs.lines()).toEqual([]);
  });
});
