import { Global, Logger, Module } from '@nestjs/common';
import { type AppConfig, appConfig } from '../config/namespaces/app.config.js';
import { type MailConfig, mailConfig } from '../config/namespaces/mail.config.js';
import { Mailer } from './mailer.js';
import { OutboxMailer } from './outbox.mailer.js';
import { SmtpMailer } from './smtp.mailer.js';

/**
 * Provides `Mailer` everywhere: SMTP when MAIL_URL is set, otherwise the development outbox
 * (DATA_DIR/outbox plus the log). See docs/mail.md.
 */
@Global()
@Module({
  providers: [
    {
      provide: Mailer,
      inject: [mailConfig.KEY, appConfig.KEY],
      useFactory: (mail: MailConfig, app: AppConfig): Mailer => {
        if (mail.url !== null) return new SmtpMailer(mail);
        if (app.isProduction) {
          new Logger('Mail').warn(
            `MAIL_URL is not set: mail is NOT delivered, only written to ${mail.outboxDir}. Set MAIL_URL=smtps://user:pass@host:465 to send it.`,
          );
        }
        return new OutboxMailer(mail, app);
      },
    },
  ],
  exports: [Mailer],
})
export class MailModule {}
