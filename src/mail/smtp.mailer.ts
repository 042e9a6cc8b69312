import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { createTransport, type NodemailerError, type SMTPSentMessageInfo, type Transporter } from 'nodemailer';
import { mailConfig } from '../config/namespaces/mail.config.js';
import { MailDeliveryError, MailMessage, Mailer } from './mailer.js';

/** How long to wait for the TCP (and TLS) connection, for the server's greeting, and for DNS. */
export const SMTP_CONNECT_TIMEOUT_MS = 10_000;
/** How long the connection may sit idle waiting for the server once it is established. */
export const SMTP_SOCKET_TIMEOUT_MS = 30_000;

/** Failures without an SMTP reply that may go away by themselves. */
const TRANSIENT_CODES = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS']);

/**
 * Sends mail through the SMTP server of MAIL_URL (`smtp://user:pass@host:587` uses STARTTLS when
 * offered, `smtps://…:465` TLS from the start). One connection per message: mail here is rare
 * (verification codes, password resets) and a pool would hold idle connections open.
 */
@Injectable()
export class SmtpMailer extends Mailer implements OnApplicationShutdown {
  private readonly logger = new Logger('Mail');
  private readonly transport: Transporter<SMTPSentMessageInfo>;
  /** `smtp://host:port`, safe to show. */
  private readonly server: string;
  /** Every form in which the URL's credentials could appear in an error message. */
  private readonly secrets: string[];
  private readonly hasCredentials: boolean;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(@Inject(mailConfig.KEY) config: ConfigType<typeof mailConfig>) {
    super();
    if (!config.url) throw new Error('SmtpMailer needs MAIL_URL');
    const url = URL.canParse(config.url) ? new URL(config.url) : null;
    // Never echo the URL itself: it carries the password.
    if (url === null) throw new Error('MAIL_URL is not a valid URL');
    if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') {
      throw new Error(`MAIL_URL must start with smtp:// or smtps:// (got ${url.protocol}//)`);
    }
    if (url.hostname === '' || (url.pathname !== '' && url.pathname !== '/')) {
      throw new Error('MAIL_URL is not smtp[s]://user:pass@host:port; percent-encode @ / : % # ? and spaces in the user name and password');
    }
    const secure = url.protocol === 'smtps:';
    this.server = `${url.protocol}//${url.hostname}:${url.port || (secure ? 465 : 587)}`;
    this.secrets = credentialForms(url);
    this.hasCredentials = url.username !== '' || url.password !== '';
    this.transport = createTransport(
      {
        url: config.url,
        connectionTimeout: SMTP_CONNECT_TIMEOUT_MS,
        greetingTimeout: SMTP_CONNECT_TIMEOUT_MS,
        dnsTimeout: SMTP_CONNECT_TIMEOUT_MS,
        socketTimeout: SMTP_SOCKET_TIMEOUT_MS,
      },
      { from: config.from },
    );
  }

  async send(message: MailMessage): Promise<void> {
    const sending = this.transport.sendMail({
      to: message.to,
      subject: message.subject,
      text: message.text,
      ...(message.html === undefined ? {} : { html: message.html }),
    });
    this.inFlight.add(sending);
    try {
      const info = await sending;
      this.logger.log(`Sent "${message.subject}" via ${this.server} (${info.messageId})`);
    } catch (error) {
      throw this.deliveryError(error);
    } finally {
      this.inFlight.delete(sending);
    }
  }

  /** Lets messages being handed over finish (each bounded by the timeouts above), then closes the transport. */
  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    this.transport.close();
  }

  private deliveryError(error: unknown): MailDeliveryError {
    const failure: NodemailerError = error instanceof Error ? error : new Error(String(error));
    const code = failure.code ?? null;
    const responseCode = typeof failure.responseCode === 'number' ? failure.responseCode : null;
    const cause = failure.originalCode ?? code;
    let problem: string;
    switch (code ?? '') {
      case 'EAUTH':
        problem = `${this.server} rejected the credentials in MAIL_URL`;
        break;
      case 'ENOAUTH':
        problem = `${this.server} requires authentication but MAIL_URL has no credentials`;
        break;
      case 'ETIMEDOUT':
        problem = `${this.server} did not respond in time${failure.timeoutType ? ` (${failure.timeoutType.toLowerCase()})` : ''}`;
        break;
      case 'EDNS':
        problem = `cannot resolve the host of ${this.server}`;
        break;
      case 'ETLS':
        problem = `TLS with ${this.server} failed`;
        break;
      case 'EENVELOPE':
        if (responseCode === 530) {
          problem = `${this.server} requires authentication${this.hasCredentials ? '' : ' but MAIL_URL has no credentials'}`;
          break;
        }
        problem = `${this.server} refused the sender or recipient`;
        break;
      case 'EMESSAGE':
        problem = `${this.server} refused the message`;
        break;
      default:
        problem =
          cause === 'ECONNREFUSED'
            ? `cannot connect to ${this.server} (connection refused)`
            : code === 'ECONNECTION' || code === 'ESOCKET'
              ? `connection to ${this.server} failed`
              : `delivery via ${this.server} failed`;
    }
    const detail = this.redact(failure.message);
    const transient = responseCode === null ? TRANSIENT_CODES.has(code ?? '') : responseCode < 500 || responseCode === 503;
    return new MailDeliveryError(`Mail not sent: ${problem}: ${detail}`, { code, responseCode, transient });
  }

  private redact(text: string): string {
    let redacted = text.replace(/\/\/[^/\s@]*@/g, '//***@');
    for (const secret of this.secrets) redacted = redacted.split(secret).join('***');
    return redacted;
  }
}

/** The password (and user) of an SMTP URL as they could be echoed: raw, percent-encoded, base64 (AUTH LOGIN / PLAIN). */
function credentialForms(url: URL): string[] {
  const user = safeDecode(url.username);
  const pass = safeDecode(url.password);
  const forms = new Set<string>();
  const addForms = (value: string): void => {
    for (const form of [value, encodeURIComponent(value), Buffer.from(value, 'utf8').toString('base64')]) forms.add(form);
  };
  if (pass !== '') {
    addForms(pass);
    forms.add(url.password);
    forms.add(Buffer.from(`\u0000${user}\u0000${pass}`, 'utf8').toString('base64'));
  }
  // A user name of one or two characters would blank out ordinary words; it is no secret on its own.
  if (user.length >= 3) {
    addForms(user);
    forms.add(url.username);
  }
  // Longest first, so a secret containing another is replaced whole.
  return [...forms].sort((a, b) => b.length - a.length);
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
