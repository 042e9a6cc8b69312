import { Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configModule, loadConfiguration } from '../../src/config/configuration.js';
import type { MailConfig } from '../../src/config/namespaces/mail.config.js';
import { MailModule } from '../../src/mail/mail.module.js';
import { MailDeliveryError, Mailer } from '../../src/mail/mailer.js';
import { OutboxMailer } from '../../src/mail/outbox.mailer.js';
import { SmtpMailer } from '../../src/mail/smtp.mailer.js';
import { parseMail, startSmtpServer, TestSmtpServer } from '../support/smtp-server.js';

const FROM = 'DevPocket <no-reply@devpocket.test>';
const USER = 'devpocket-mailer';
/** Characters that must be percent-encoded in a URL, so every form of it is exercised. */
const PASSWORD = 'S3cr3t p@ss:/%word';

function mailConfig(url: string | null): MailConfig {
  return { url, from: FROM, outboxDir: join(tmpdir(), 'devpocket-unused-outbox'), publicUrl: 'http://localhost:8000' };
}

/** Every form in which a password could leak into a message. */
function expectNoPassword(text: string, password = PASSWORD): void {
  for (const form of [
    password,
    encodeURIComponent(password),
    Buffer.from(password).toString('base64'),
    Buffer.from(`\u0000${USER}\u0000${password}`).toString('base64'),
  ]) {
    expect(text).not.toContain(form);
  }
}

async function deliveryFailure(promise: Promise<unknown>): Promise<MailDeliveryError> {
  const error: unknown = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MailDeliveryError);
  return error as MailDeliveryError;
}

describe('SmtpMailer against a real SMTP server process', () => {
  const servers: TestSmtpServer[] = [];
  const started = async (options?: { user?: string; pass?: string }): Promise<TestSmtpServer> => {
    const server = await startSmtpServer(options);
    servers.push(server);
    return server;
  };

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  });

  it('delivers with the configured sender: envelope, From/To/Subject headers and bodies', async () => {
    const server = await started();
    const mailer = new SmtpMailer(mailConfig(server.url));

    await mailer.send({
      to: 'ada@example.test',
      subject: 'Vérifiez votre adresse ✓',
      text: 'Hello Ada,\n\nyour verification code is 482913.\n',
      html: '<p>Your verification code is <b>482913</b>.</p>',
    });

    const received = await server.nextMessage();
    expect(received.from).toBe('no-reply@devpocket.test');
    expect(received.to).toEqual(['ada@example.test']);
    expect(received.user).toBeNull();
    const mail = parseMail(received.raw);
    expect(mail.from).toBe(FROM);
    expect(mail.to).toBe('ada@example.test');
    expect(mail.subject).toBe('Vérifiez votre adresse ✓');
    expect(mail.text).toBe('Hello Ada,\n\nyour verification code is 482913.');
    expect(mail.html).toBe('<p>Your verification code is <b>482913</b>.</p>');
    expect(mail.headers.get('message-id')).toMatch(/^<.+@devpocket\.test>$/);
    await mailer.onApplicationShutdown();
  });

  it('authenticates with the credentials in the URL, percent-encoded as a MAIL_URL must be', async () => {
    const server = await started({ user: USER, pass: PASSWORD });
    expect(server.url).toContain(encodeURIComponent(PASSWORD));
    const mailer = new SmtpMailer(mailConfig(server.url));

    await mailer.send({ to: 'grace@example.test', subject: 'Reset your password', text: 'Code: 551177' });

    const received = await server.nextMessage();
    expect(received.user).toBe(USER);
    expect(received.to).toEqual(['grace@example.test']);
    expect(parseMail(received.raw).text).toBe('Code: 551177');
    await mailer.onApplicationShutdown();
  });

  it('reports a wrong password as a MailDeliveryError naming the rejection, without the password', async () => {
    const server = await started({ user: USER, pass: PASSWORD });
    const wrongPassword = 'Wr0ng p@ss:/%word';
    const mailer = new SmtpMailer(mailConfig(`smtp://${USER}:${encodeURIComponent(wrongPassword)}@127.0.0.1:${server.port}`));

    const error = await deliveryFailure(mailer.send({ to: 'ada@example.test', subject: 'Hi', text: 'Hi' }));

    expect(error.message).toMatch(/smtp:\/\/127\.0\.0\.1:\d+ rejected the credentials in MAIL_URL/);
    expect(error.message).toMatch(/535/);
    expect(error.code).toBe('EAUTH');
    expect(error.responseCode).toBe(535);
    expect(error.transient).toBe(false);
    expectNoPassword(`${error.message}\n${error.stack}`, wrongPassword);
    expectNoPassword(`${error.message}\n${error.stack}`);
    expect(server.messages).toEqual([]);
  });

  it('reports a stopped server as a MailDeliveryError naming the refused connection, without the password', async () => {
    const server = await started({ user: USER, pass: PASSWORD });
    const mailer = new SmtpMailer(mailConfig(server.url));
    await server.stop();

    const error = await deliveryFailure(mailer.send({ to: 'ada@example.test', subject: 'Hi', text: 'Hi' }));

    expect(error.message).toContain(`cannot connect to smtp://127.0.0.1:${server.port} (connection refused)`);
    expect(error.message).toContain('ECONNREFUSED');
    expect(error.transient).toBe(true);
    expectNoPassword(`${error.message}\n${error.stack}`);
    expect(error.message).not.toContain(USER);
  });

  it('gives up on a server that never greets, after the greeting timeout (settable in MAIL_URL)', async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    if (address === null || typeof address === 'string') throw new Error('not listening on TCP');
    try {
      const mailer = new SmtpMailer(
        mailConfig(`smtp://${USER}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${address.port}?greetingTimeout=300`),
      );

      const error = await deliveryFailure(mailer.send({ to: 'ada@example.test', subject: 'Hi', text: 'Hi' }));

      expect(error.message).toContain(`smtp://127.0.0.1:${address.port} did not respond in time`);
      expect(error.code).toBe('ETIMEDOUT');
      expect(error.transient).toBe(true);
      expectNoPassword(error.message);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('refuses a MAIL_URL it cannot parse without echoing it', () => {
    expect(() => new SmtpMailer(mailConfig(`smtp://${USER}:secret-password@[bad`))).toThrow(/^MAIL_URL is not a valid URL$/);
  });

  it('explains a password that was not percent-encoded, without echoing it', () => {
    const attempt = () => new SmtpMailer(mailConfig(`smtp://${USER}:${PASSWORD}@127.0.0.1:2525`));

    expect(attempt).toThrow(/percent-encode/);
    expect(attempt).not.toThrow(/S3cr3t|%word/);
  });

  it('lets a message being sent finish when the application shuts down', async () => {
    const server = await started();
    const mailer = new SmtpMailer(mailConfig(server.url));

    const sending = mailer.send({ to: 'ada@example.test', subject: 'Last one', text: 'bye' });
    await mailer.onApplicationShutdown();

    await expect(sending).resolves.toBeUndefined();
    expect(server.messages.map((m) => parseMail(m.raw).subject)).toEqual(['Last one']);
  });
});

describe('MailModule', () => {
  let dataDir: string;

  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'devpocket-mail-module-'));
  });

  afterEach(() => {
    vi.restoreAllMocks();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const compile = async (env: Record<string, string>) => {
    const configuration = loadConfiguration({
      NODE_ENV: 'test',
      JWT_SECRET: randomBytes(48).toString('base64'),
      DATA_DIR: dataDir,
      ...env,
    });
    return Test.createTestingModule({ imports: [configModule(configuration), MailModule] }).compile();
  };

  it('binds Mailer to SMTP when MAIL_URL is set, delivers through it, and closes it on shutdown', async () => {
    const server = await startSmtpServer({ user: USER, pass: PASSWORD });
    try {
      const shutdown = vi.spyOn(SmtpMailer.prototype, 'onApplicationShutdown');
      const moduleRef = await compile({ MAIL_URL: server.url, MAIL_FROM: FROM });
      moduleRef.enableShutdownHooks();
      const mailer = moduleRef.get(Mailer);
      expect(mailer).toBeInstanceOf(SmtpMailer);

      await mailer.send({ to: 'ada@example.test', subject: 'Through DI', text: 'Code: 123456' });

      const received = await server.nextMessage();
      expect(received.user).toBe(USER);
      expect(parseMail(received.raw).subject).toBe('Through DI');
      await moduleRef.close();
      expect(shutdown).toHaveBeenCalledTimes(1);
    } finally {
      await server.stop();
    }
  });

  it('binds Mailer to the outbox without MAIL_URL, silently outside production', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn');
    const moduleRef = await compile({});

    expect(moduleRef.get(Mailer)).toBeInstanceOf(OutboxMailer);
    expect(warn).not.toHaveBeenCalled();
    await moduleRef.close();
  });

  it('warns at boot when production runs without MAIL_URL', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const moduleRef = await compile({
      NODE_ENV: 'production',
      ALLOW_UNSANDBOXED_LOCAL_RUNTIME: 'true',
      MONGODB_URI: 'mongodb://127.0.0.1:1',
    });

    expect(moduleRef.get(Mailer)).toBeInstanceOf(OutboxMailer);
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/MAIL_URL is not set: mail is NOT delivered/));
    await moduleRef.close();
  });
});
