/** One e-mail to one recipient. `text` is always sent; `html`, when given, is the alternative part. */
export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html?: string;
}

/**
 * Sends mail. The DI token for whichever implementation configuration selects (see MailModule):
 * SMTP when MAIL_URL is set, the development outbox otherwise. Tests bind their own.
 */
export abstract class Mailer {
  /** Resolves once the message is handed over; rejects with MailDeliveryError when it could not be. */
  abstract send(message: MailMessage): Promise<void>;
}

/**
 * A message could not be handed over. The message says what went wrong and where (host and port),
 * never credentials: it is meant for logs. `transient` tells whether trying again later may work.
 */
export class MailDeliveryError extends Error {
  /** Nodemailer / socket error code when known, e.g. EAUTH, ECONNECTION, ETIMEDOUT. */
  readonly code: string | null;
  /** The SMTP reply code when the server answered with an error, e.g. 535. */
  readonly responseCode: number | null;
  /** True when the failure may go away by itself (connection problems, 4xx replies). */
  readonly transient: boolean;

  constructor(message: string, details: { code?: string | null; responseCode?: number | null; transient?: boolean } = {}) {
    super(message);
    this.name = 'MailDeliveryError';
    this.code = details.code ?? null;
    this.responseCode = details.responseCode ?? null;
    this.transient = details.transient ?? false;
  }
}
