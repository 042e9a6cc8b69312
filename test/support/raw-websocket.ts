import { randomBytes } from 'node:crypto';
import { connect, Socket } from 'node:net';

/**
 * A WebSocket client that speaks the protocol by hand, so a test can send frames that no library
 * would (over the size limit, invalid UTF-8, reserved opcodes) at any moment of a connection. It
 * reads the server's text frames and its close frame.
 */
export class RawWebSocket {
  /** Every text message from the server, in order. */
  readonly messages: string[] = [];
  /** The server's close code (1005 when its close frame had none), or null while open. */
  closeCode: number | null = null;
  /** Resolves when the TCP connection has ended, with the server's close code (null if it sent none). */
  readonly ended: Promise<number | null>;
  private buffer: Buffer = Buffer.alloc(0);

  private constructor(private readonly socket: Socket) {
    this.ended = new Promise((resolve) => socket.once('close', () => resolve(this.closeCode)));
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.parse();
    });
    socket.on('error', () => undefined);
  }

  /**
   * Opens `url` (ws://host:port/path?query); resolves once the server answered 101. `early` bytes
   * go out in the same write as the upgrade request, so the server reads them before it can have
   * done anything else with the connection (e.g. checked its token).
   */
  static async open(url: string, early?: Buffer): Promise<RawWebSocket> {
    const target = new URL(url);
    const socket = connect(Number(target.port), target.hostname);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.write(
      [
        `GET ${target.pathname}${target.search} HTTP/1.1`,
        `Host: ${target.host}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
        'Sec-WebSocket-Version: 13',
        '',
        '',
      ].join('\r\n') + (early ? early.toString('latin1') : ''),
      'latin1',
    );
    const head = await new Promise<{ status: string; rest: Buffer }>((resolve, reject) => {
      let received = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        received = Buffer.concat([received, chunk]);
        const end = received.indexOf('\r\n\r\n');
        if (end === -1) return;
        socket.off('data', onData);
        resolve({ status: received.subarray(0, received.indexOf('\r\n')).toString(), rest: received.subarray(end + 4) });
      };
      socket.on('data', onData);
      socket.once('close', () => reject(new Error('closed before the upgrade answer')));
    });
    if (!/^HTTP\/1\.1 101 /.test(head.status)) throw new Error(`upgrade refused: ${head.status}`);
    const client = new RawWebSocket(socket);
    if (head.rest.length > 0) {
      client.buffer = head.rest;
      client.parse();
    }
    return client;
  }

  /** Writes raw bytes, e.g. one of the frames below. */
  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** One client frame (masked, as the protocol requires), its payload as given. */
  static frame(opcode: number, payload: Buffer, fin = true): Buffer {
    const key = randomBytes(4);
    const masked = Buffer.from(payload.map((byte, i) => byte ^ key[i % 4]));
    return Buffer.concat([RawWebSocket.header(opcode, payload.length, fin, key), masked]);
  }

  /** A text frame with these exact bytes (which need not be valid UTF-8). */
  static text(bytes: Buffer | string): Buffer {
    return RawWebSocket.frame(0x1, Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
  }

  /** Only the header of a binary frame announcing `length` bytes: enough for a server to refuse it. */
  static announce(length: number): Buffer {
    return RawWebSocket.header(0x2, length, true, randomBytes(4));
  }

  destroy(): void {
    this.socket.destroy();
  }

  private static header(opcode: number, length: number, fin: boolean, maskKey: Buffer): Buffer {
    const first = (fin ? 0x80 : 0) | opcode;
    if (length < 126) return Buffer.concat([Buffer.from([first, 0x80 | length]), maskKey]);
    if (length < 65_536) {
      const head = Buffer.from([first, 0x80 | 126, 0, 0]);
      head.writeUInt16BE(length, 2);
      return Buffer.concat([head, maskKey]);
    }
    const head = Buffer.alloc(10);
    head[0] = first;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(length), 2);
    return Buffer.concat([head, maskKey]);
  }

  private parse(): void {
    for (;;) {
      if (this.buffer.length < 2) return;
      const opcode = this.buffer[0] & 0x0f;
      let length = this.buffer[1] & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.buffer.length < 4) return;
        length = this.buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (this.buffer.length < 10) return;
        length = Number(this.buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.buffer.length < offset + length) return;
      const payload = this.buffer.subarray(offset, offset + length);
      this.buffer = this.buffer.subarray(offset + length);
      if (opcode === 0x1) this.messages.push(payload.toString('utf8'));
      if (opcode === 0x8) this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
    }
  }
}
