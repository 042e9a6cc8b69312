import { Inject, Injectable, Logger } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { createTransport, type StreamSentMessageInfo, type Transporter } from 'nodemailer';
import { appConfig } from '../config/namespaces/app.config.js';
import { mailConfig } from '../config/namespaces/mail.config.js';
import { MailDeliveryError, MailMessage, Mailer } from './mailer.js';

/**
 * Development mail (no MAIL_URL): each message becomes a real RFC 822 file,
 * `DATA_DIR/outbox/<UTC time, ISO 8601 basic format>-<random>.eml`, that any mail client opens,
 * and one log line names it. Outside production the text body is logged too, so a developer
 * reads a verification code straight from the console; in production it never is.
 */
@Injectable()
export class OutboxMailer extends Mailer {
  private readonly logger = new Logger('Mail');
  /** Composes the message exactly as SMTP would send it, without sending it anywhere. */
  private readonly composer: Transporter<StreamSentMessageInfo>;

  constructor(
    @Inject(mailConfig.KEY) private readonly config: ConfigType<typeof mailConfig>,
    @Inject(appConfig.KEY) private readonly app: ConfigType<typeof appConfig>,
  ) {
    super();
    this.composer = createTransport({ streamTransport: true, buffer: true, newline: 'windows' }, { from: config.from });
  }

  async send(message: MailMessage): Promise<void> {
    const file = join(this.config.outboxDir, `${fileTimestamp(new Date())}-${randomBytes(4).toString('hex')}.eml`);
    try {
      const info = await this.composer.sendMail({
        to: message.to,
        subject: message.subject,
        text: message.text,
        ...(message.html === undefined ? {} : { html: message.html }),
      });
      if (!Buffer.isBuffer(info.message)) throw new Error('the composed message is not a buffer');
      await this.ensureOutbox();
      const handle = await open(file, 'wx', 0o600);
      try {
        await handle.writeFile(info.message);
        await handle.chmod(0o600);
      } finally {
        await handle.close();
      }
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new MailDeliveryError(`Mail not written to the outbox ${this.config.outboxDir}: ${reason}`, {
        code: error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : null,
        transient: true,
      });
    }
    this.logger.log(`Mail to ${message.to} "${message.subject}" written to ${file} (no MAIL_URL: not delivered)`);
    if (!this.app.isProduction) this.logger.log(`Mail to ${message.to} "${message.subject}", text body:\n${message.text}`);
  }

  /** Creates the outbox, owner only, if it is missing (a developer may delete it at any time). */
  private async ensureOutbox(): Promise<void> {
    const created = await mkdir(this.config.outboxDir, { recursive: true, mode: 0o700 });
    if (created !== undefined) await chmod(this.config.outboxDir, 0o700);
  }
}

/** `2025-01-02T03:04:05.678Z` → `20250102T030405.678Z`: ISO 8601 basic format, sortable, no colons in file names. */
function fileTimestamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '');
}
