import { join } from 'node:path';
import { dataDirOf } from './app.config.js';
import { defineNamespace } from './define-namespace.js';

/** Mail: MAIL_URL, MAIL_FROM, PUBLIC_URL; the outbox under DATA_DIR. */
export interface MailConfig {
  /** SMTP server (smtp:// or smtps://, credentials in the URL); null writes mail to the log and DATA_DIR/outbox instead. */
  readonly url: string | null;
  readonly from: string;
  readonly outboxDir: string;
  /** Public base URL of this server, used in links inside mails. */
  readonly publicUrl: string;
}

export const mailConfig = defineNamespace('mail', (env, cwd): MailConfig => ({
  url: env.MAIL_URL ?? null,
  from: env.MAIL_FROM ?? 'DevPocket <no-reply@devpocket.local>',
  outboxDir: join(dataDirOf(env, cwd), 'outbox'),
  publicUrl: (env.PUBLIC_URL ?? `http://localhost:${env.PORT ?? 8000}`).replace(/\/+$/, ''),
}));
