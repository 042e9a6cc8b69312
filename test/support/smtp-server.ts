/**
 * A real SMTP server, in its own process, for tests that send mail.
 *
 * Imported, this module exports `startSmtpServer()`, which spawns this same file as a script
 * (`node --import tsx test/support/smtp-server.ts [--user U --pass P]`). Run like that, it starts
 * `smtp-server` on 127.0.0.1 (port 0, plain SMTP, no STARTTLS), prints `{"listening":PORT}`, then one
 * JSON line per accepted message: `{"from":…,"to":[…],"user":…,"raw":…}`. With credentials, AUTH
 * (PLAIN/LOGIN, allowed without TLS: loopback only) is required; without, AUTH is not offered.
 * The script exits when its stdin closes, so a crashed test run leaves no server behind.
 *
 * `parseMail()` decodes what arrives (headers, RFC 2047 words, multipart, quoted-printable,
 * base64) so tests can read a subject or a verification code the way a mail client would.
 */
import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

/** One message as the server accepted it. */
export interface ReceivedMail {
  /** Envelope sender (MAIL FROM), '' for the null sender. */
  from: string;
  /** Envelope recipients (RCPT TO). */
  to: string[];
  /** The user the client authenticated as, null without AUTH. */
  user: string | null;
  /** The message exactly as transmitted (headers and body, CRLF line endings, dot-unstuffed). */
  raw: string;
}

export interface SmtpServerOptions {
  /** With user and pass, the server requires AUTH with exactly these credentials. */
  user?: string;
  pass?: string;
}

export interface TestSmtpServer {
  /** `smtp://user:pass@127.0.0.1:PORT` (credentials percent-encoded), or `smtp://127.0.0.1:PORT`: a MAIL_URL. */
  url: string;
  host: string;
  port: number;
  /** Every message received so far, in order of arrival. */
  messages: ReceivedMail[];
  /** The next message not yet returned by nextMessage (possibly one that already arrived). */
  nextMessage(timeoutMs?: number): Promise<ReceivedMail>;
  /** The first message, received so far or later, that matches; e.g. `(m) => m.to.includes('a@b.test')`. */
  waitForMessage(match: (mail: ReceivedMail) => boolean, timeoutMs?: number): Promise<ReceivedMail>;
  /** Kills the server process (SIGTERM) and waits for it to exit. Idempotent. */
  stop(): Promise<void>;
}

const DEFAULT_WAIT_MS = 10_000;
const START_TIMEOUT_MS = 30_000;
const MAX_MESSAGE_BYTES = 25 * 1024 * 1024;

interface Waiter {
  match: (mail: ReceivedMail) => boolean;
  resolve: (mail: ReceivedMail) => void;
}

/** Starts a real SMTP server process on 127.0.0.1 and resolves once it listens. */
export async function startSmtpServer(options: SmtpServerOptions = {}): Promise<TestSmtpServer> {
  const { user, pass } = options;
  if ((user === undefined) !== (pass === undefined)) throw new Error('startSmtpServer: give both user and pass, or neither');
  const args = user !== undefined && pass !== undefined ? ['--user', user, '--pass', pass] : [];
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, ['--import', 'tsx', import.meta.filename, ...args], {
    stdio: 'pipe',
    env: process.env,
  });

  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let hasExited = false;
  void exited.then(() => (hasExited = true));
  const exitError = (what: string) => async () => {
    const status = await exited;
    throw new Error(`test SMTP server exited (${JSON.stringify(status)}) ${what}${stderr ? `:\n${stderr}` : ''}`);
  };

  const messages: ReceivedMail[] = [];
  let waiters: Waiter[] = [];
  let listening: ((port: number) => void) | null = null;
  const port = new Promise<number>((resolve) => (listening = resolve));

  const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
  lines.on('line', (line) => {
    if (line.trim() === '') return;
    const event = JSON.parse(line) as { listening?: number } | ReceivedMail;
    if ('listening' in event && typeof event.listening === 'number') {
      listening?.(event.listening);
      return;
    }
    const mail = event as ReceivedMail;
    messages.push(mail);
    const matched = waiters.filter((waiter) => waiter.match(mail));
    waiters = waiters.filter((waiter) => !matched.includes(waiter));
    for (const waiter of matched) waiter.resolve(mail);
  });

  const startTimer = new Promise<never>((_, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`test SMTP server did not listen within ${START_TIMEOUT_MS} ms:\n${stderr}`)),
      START_TIMEOUT_MS,
    );
    void exited.then(() => clearTimeout(timer));
    void port.then(() => clearTimeout(timer));
  });
  let listeningPort: number;
  try {
    listeningPort = await Promise.race([port, exited.then(exitError('before listening')), startTimer]);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }

  const wait = (match: (mail: ReceivedMail) => boolean, timeoutMs: number, description: string): Promise<ReceivedMail> => {
    if (hasExited) return exitError(`while waiting for ${description}`)();
    return new Promise<ReceivedMail>((resolve, reject) => {
      const waiter: Waiter = {
        match,
        resolve: (mail) => {
          clearTimeout(timer);
          resolve(mail);
        },
      };
      const timer = setTimeout(() => {
        waiters = waiters.filter((w) => w !== waiter);
        reject(new Error(`no ${description} arrived within ${timeoutMs} ms (${messages.length} received in total)`));
      }, timeoutMs);
      waiters.push(waiter);
      exited.then(exitError(`while waiting for ${description}`)).catch((error: unknown) => {
        if (!waiters.includes(waiter)) return;
        waiters = waiters.filter((w) => w !== waiter);
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      });
    });
  };

  let consumed = 0;
  const credentials = user !== undefined && pass !== undefined ? `${encodeURIComponent(user)}:${encodeURIComponent(pass)}@` : '';
  return {
    url: `smtp://${credentials}127.0.0.1:${listeningPort}`,
    host: '127.0.0.1',
    port: listeningPort,
    messages,
    nextMessage: async (timeoutMs = DEFAULT_WAIT_MS) => {
      const index = consumed;
      consumed += 1;
      const already = messages[index];
      if (already) return already;
      try {
        return await wait((mail) => messages.indexOf(mail) === index, timeoutMs, `message #${index + 1}`);
      } catch (error) {
        consumed = Math.min(consumed, index);
        throw error;
      }
    },
    waitForMessage: async (match, timeoutMs = DEFAULT_WAIT_MS) => {
      const already = messages.find(match);
      if (already) return already;
      return wait(match, timeoutMs, 'matching message');
    },
    stop: async () => {
      if (!hasExited) child.kill('SIGTERM');
      await exited;
      lines.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Reading received mail

export interface ParsedMail {
  /** Header fields of the top-level entity, names lower-cased, unfolded, RFC 2047 words decoded; first occurrence wins. */
  headers: Map<string, string>;
  from: string;
  to: string;
  subject: string;
  /** The text/plain body (decoded, LF line endings), null when the message has none. */
  text: string | null;
  /** The text/html body (decoded, LF line endings), null when the message has none. */
  html: string | null;
}

interface Entity {
  headers: Map<string, string>;
  body: string;
}

/** Decodes a message as a mail client would, enough for what our mailers produce (nodemailer). */
export function parseMail(raw: string): ParsedMail {
  const root = parseEntity(raw);
  const leaves = { text: null as string | null, html: null as string | null };
  collectBodies(root, leaves);
  return {
    headers: root.headers,
    from: root.headers.get('from') ?? '',
    to: root.headers.get('to') ?? '',
    subject: root.headers.get('subject') ?? '',
    ...leaves,
  };
}

function parseEntity(raw: string): Entity {
  const normalized = raw.replace(/\r\n/g, '\n');
  const separator = normalized.indexOf('\n\n');
  const head = separator === -1 ? normalized : normalized.slice(0, separator);
  const body = separator === -1 ? '' : normalized.slice(separator + 2);
  const headers = new Map<string, string>();
  const unfolded = head.replace(/\n[ \t]+/g, ' ');
  for (const line of unfolded.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, decodeWords(line.slice(colon + 1).trim()));
  }
  return { headers, body };
}

/** `value; key=param; …` → lower-cased value and params (quotes removed). */
function headerParams(header: string | undefined): { value: string; params: Map<string, string> } {
  const [value = '', ...rest] = (header ?? '').split(';');
  const params = new Map<string, string>();
  for (const part of rest) {
    const equals = part.indexOf('=');
    if (equals === -1) continue;
    params.set(
      part.slice(0, equals).trim().toLowerCase(),
      part
        .slice(equals + 1)
        .trim()
        .replace(/^"(.*)"$/, '$1'),
    );
  }
  return { value: value.trim().toLowerCase(), params };
}

function collectBodies(entity: Entity, found: { text: string | null; html: string | null }): void {
  const type = headerParams(entity.headers.get('content-type') ?? 'text/plain; charset=us-ascii');
  const disposition = headerParams(entity.headers.get('content-disposition')).value;
  if (type.value.startsWith('multipart/')) {
    const boundary = type.params.get('boundary');
    if (!boundary) return;
    const delimiter = `--${boundary}`;
    const parts: string[] = [];
    let current: string[] | null = null;
    for (const line of entity.body.split('\n')) {
      if (line.trimEnd() === `${delimiter}--`) break;
      if (line.trimEnd() === delimiter) {
        if (current) parts.push(current.join('\n'));
        current = [];
      } else {
        current?.push(line);
      }
    }
    if (current) parts.push(current.join('\n'));
    for (const part of parts) collectBodies(parseEntity(part), found);
    return;
  }
  if (disposition === 'attachment') return;
  const charset = type.params.get('charset') ?? 'utf-8';
  const decoded = decodeBody(entity.body, (entity.headers.get('content-transfer-encoding') ?? '7bit').toLowerCase(), charset);
  if (type.value === 'text/plain' && found.text === null) found.text = decoded;
  if (type.value === 'text/html' && found.html === null) found.html = decoded;
}

function decodeBody(body: string, encoding: string, charset: string): string {
  let text: string;
  if (encoding === 'base64') text = decodeBytes(Buffer.from(body.replace(/\s+/g, ''), 'base64'), charset);
  else if (encoding === 'quoted-printable') text = decodeBytes(quotedPrintableBytes(body.replace(/=\n/g, '')), charset);
  else text = body;
  return text.replace(/\r\n/g, '\n').replace(/\n$/, '');
}

function quotedPrintableBytes(text: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i += 1) {
    const hex = text.slice(i + 1, i + 3);
    if (text[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(text[i] ?? '', 'utf8'));
    }
  }
  return Buffer.from(bytes);
}

function decodeBytes(bytes: Buffer, charset: string): string {
  try {
    return new TextDecoder(charset).decode(bytes);
  } catch {
    return bytes.toString('utf8');
  }
}

/** RFC 2047 encoded words (`=?UTF-8?Q?…?=`, `=?UTF-8?B?…?=`); whitespace between adjacent words is dropped. */
function decodeWords(value: string): string {
  return value
    .replace(/(=\?[^?]+\?[BbQq]\?[^?]*\?=)\s+(?==\?[^?]+\?[BbQq]\?[^?]*\?=)/g, '$1')
    .replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_word, charset: string, encoding: string, text: string) => {
      const bytes = encoding.toUpperCase() === 'B' ? Buffer.from(text, 'base64') : quotedPrintableBytes(text.replace(/_/g, ' '));
      return decodeBytes(bytes, charset.replace(/\*.*$/, ''));
    });
}

// ---------------------------------------------------------------------------------------------
// The server process

async function serve(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { user: { type: 'string' }, pass: { type: 'string' } } });
  const { SMTPServer } = await import('smtp-server');
  const requireAuth = values.user !== undefined && values.pass !== undefined;
  const emit = (event: object): void => {
    process.stdout.write(`${JSON.stringify(event)}\n`);
  };

  const server = new SMTPServer({
    secure: false,
    logger: false,
    banner: 'DevPocket test SMTP server',
    size: MAX_MESSAGE_BYTES,
    disabledCommands: requireAuth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
    authMethods: ['PLAIN', 'LOGIN'],
    authOptional: !requireAuth,
    // Plain-text AUTH is acceptable: the server listens on the loopback interface only.
    allowInsecureAuth: true,
    onAuth: (auth, _session, callback) => {
      if (auth.username === values.user && auth.password === values.pass) {
        callback(null, { user: auth.username });
        return;
      }
      callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
    },
    onData: (stream, session, callback) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', (error: Error) => callback(error));
      stream.on('end', () => {
        if (stream.sizeExceeded) {
          callback(Object.assign(new Error('Message exceeds the size limit'), { responseCode: 552 }));
          return;
        }
        const { mailFrom, rcptTo } = session.envelope;
        const user = typeof session.user === 'string' ? session.user : null;
        emit({
          from: mailFrom ? mailFrom.address : '',
          to: rcptTo.map((r) => r.address),
          user,
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback(null);
      });
    },
  });
  server.on('error', (error: Error) => process.stderr.write(`smtp-server error: ${error.message}\n`));

  // Exit when the parent goes away (its end of the stdin pipe closes), even if it was SIGKILLed.
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();

  server.server.once('error', (error: Error) => {
    process.stderr.write(`cannot listen: ${error.message}\n`);
    process.exit(1);
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.server.address();
    if (address === null || typeof address === 'string') throw new Error('SMTP server is not listening on TCP');
    emit({ listening: address.port });
  });
}

function isMainScript(): boolean {
  const invoked = process.argv[1];
  if (invoked === undefined) return false;
  try {
    return realpathSync(invoked) === realpathSync(import.meta.filename);
  } catch {
    return false;
  }
}

if (isMainScript()) {
  serve(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
