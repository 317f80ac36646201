// The floor: a minimal AMQP 0-9-1 peer on a bare socket, one connection with one channel, doing only what the
// scenarios need. It is the broker-bound upper limit the libraries are compared against, and also the harness's
// own tool for pre-filling, polling and deleting queues (cheap, and independent of the library under test).
// No heartbeats (negotiated off), no reconnects, no general content properties, no multi-channel bookkeeping.

import net from 'node:net';
import { BASIC, FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_METHOD, methodFrame, Reader } from './codec.js';

export interface DeliveryMeta {
  body: Buffer;
  correlationId: string | undefined;
  replyTo: string | undefined;
}

/** `meta` is only assembled when the consumer asked for bodies (RPC); counting consumers get sizes only. */
export type DeliveryHandler = (tag: number, bodySize: number, meta: DeliveryMeta | undefined) => void;
export type ConfirmHandler = (tag: number, multiple: boolean, nack: boolean) => void;

interface Pending {
  resolve: (r: Reader) => void;
  reject: (err: Error) => void;
}

const CHANNEL = 1;
const EMPTY = Buffer.alloc(0);

export interface FloorOptions {
  name?: string;
  /** Ceiling for frame-max in tune-ok; the broker's own value when lower wins. */
  frameMax?: number;
  connectTimeoutMs?: number;
}

export class FloorConnection {
  serverProperties: Record<string, unknown> = {};
  frameMax = 131072;
  /** Runs after each socket chunk has been parsed: where consumers coalesce their acks. */
  onChunkEnd: (() => void) | undefined;
  onConfirm: ConfirmHandler | undefined;
  /** Runs once when the connection dies for any reason other than our own close. */
  onFailure: ((err: Error) => void) | undefined;
  failure: Error | undefined;

  private readonly socket: net.Socket;
  private readonly pending: [Pending[], Pending[]] = [[], []];
  private stash: Buffer | undefined;
  private bodyLeft = 0;
  private needEnd = false;
  private closing = false;
  // The one content being assembled (a channel carries one at a time).
  private cDeliver = false;
  private cTag = 0;
  private cSize = 0;
  private cReceived = 0;
  private cParts: Buffer[] | undefined;
  private cCorrelationId: string | undefined;
  private cReplyTo: string | undefined;
  private onDelivery: DeliveryHandler | undefined;
  private wantBody = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('floor: socket closed')));
  }

  static async connect(url: string, opts: FloorOptions = {}): Promise<FloorConnection> {
    const u = new URL(url);
    const host = u.hostname;
    const port = u.port === '' ? 5672 : Number(u.port);
    const user = decodeURIComponent(u.username || 'guest');
    const pass = decodeURIComponent(u.password || 'guest');
    const vhost = u.pathname.length > 1 ? decodeURIComponent(u.pathname.slice(1)) : '/';
    const socket = net.connect({ host, port });
    const timeout = opts.connectTimeoutMs ?? 10_000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`floor: connect to ${host}:${port} timed out`));
      }, timeout);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    const c = new FloorConnection(socket);
    await c.handshake(user, pass, vhost, opts);
    return c;
  }

  private async handshake(user: string, pass: string, vhost: string, opts: FloorOptions): Promise<void> {
    const start = this.expect(0);
    this.socket.write(Buffer.from('AMQP\x00\x00\x09\x01', 'latin1'));
    const s = await start;
    s.u8();
    s.u8();
    this.serverProperties = s.table();
    const tune = this.expect(0);
    this.socket.write(
      methodFrame(0, 10, 11, (w) =>
        w
          .table({
            product: 'warren-bench-floor',
            connection_name: opts.name ?? 'bench floor',
            capabilities: { publisher_confirms: true, 'basic.nack': true },
          })
          .shortstr('PLAIN')
          .longstr(`\0${user}\0${pass}`)
          .shortstr('en_US'),
      ),
    );
    const t = await tune;
    const channelMax = t.u16();
    const serverFrameMax = t.u32();
    const wanted = opts.frameMax ?? 131072;
    this.frameMax = serverFrameMax === 0 ? wanted : Math.min(serverFrameMax, wanted);
    this.socket.write(methodFrame(0, 10, 31, (w) => w.u16(channelMax).u32(this.frameMax).u16(0)));
    await this.call(
      0,
      methodFrame(0, 10, 40, (w) => w.shortstr(vhost).shortstr('').u8(0)),
    );
    await this.call(
      CHANNEL,
      methodFrame(CHANNEL, 20, 10, (w) => w.shortstr('')),
    );
  }

  /** Registers interest in the next synchronous reply on `channel` (replies arrive in request order). */
  private expect(channel: 0 | 1): Promise<Reader> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise<Reader>((resolve, reject) => this.pending[channel].push({ resolve, reject }));
  }

  private call(channel: 0 | 1, frame: Buffer): Promise<Reader> {
    const p = this.expect(channel);
    this.socket.write(frame);
    return p;
  }

  async queueDeclare(
    queue: string,
    opts: { passive?: boolean; durable?: boolean } = {},
  ): Promise<{ messageCount: number; consumerCount: number }> {
    const bits = (opts.passive ? 1 : 0) | (opts.durable ? 2 : 0);
    const r = await this.call(
      CHANNEL,
      methodFrame(CHANNEL, 50, 10, (w) => w.u16(0).shortstr(queue).u8(bits).u32(0)),
    );
    r.shortstr();
    return { messageCount: r.u32(), consumerCount: r.u32() };
  }

  async queueDelete(queue: string): Promise<number> {
    const r = await this.call(
      CHANNEL,
      methodFrame(CHANNEL, 50, 40, (w) => w.u16(0).shortstr(queue).u8(0)),
    );
    return r.u32();
  }

  async exchangeDeclare(exchange: string, type: string): Promise<void> {
    await this.call(
      CHANNEL,
      methodFrame(CHANNEL, 40, 10, (w) => w.u16(0).shortstr(exchange).shortstr(type).u8(0).u32(0)),
    );
  }

  async exchangeDelete(exchange: string): Promise<void> {
    await this.call(
      CHANNEL,
      methodFrame(CHANNEL, 40, 20, (w) => w.u16(0).shortstr(exchange).u8(0)),
    );
  }

  async queueBind(queue: string, exchange: string, routingKey: string): Promise<void> {
    await this.call(
      CHANNEL,
      methodFrame(CHANNEL, 50, 20, (w) =>
        w.u16(0).shortstr(queue).shortstr(exchange).shortstr(routingKey).u8(0).u32(0),
      ),
    );
  }

  async basicQos(prefetchCount: number): Promise<void> {
    await this.call(
      CHANNEL,
      methodFrame(CHANNEL, BASIC, 10, (w) => w.u32(0).u16(prefetchCount).u8(0)),
    );
  }

  async confirmSelect(): Promise<void> {
    await this.call(
      CHANNEL,
      methodFrame(CHANNEL, 85, 10, (w) => w.u8(0)),
    );
  }

  async basicConsume(
    queue: string,
    opts: { noAck: boolean; wantBody: boolean },
    onDelivery: DeliveryHandler,
  ): Promise<string> {
    this.onDelivery = onDelivery;
    this.wantBody = opts.wantBody;
    const r = await this.call(
      CHANNEL,
      methodFrame(CHANNEL, BASIC, 20, (w) =>
        w
          .u16(0)
          .shortstr(queue)
          .shortstr('')
          .u8(opts.noAck ? 2 : 0)
          .u32(0),
      ),
    );
    return r.shortstr();
  }

  async basicCancel(consumerTag: string): Promise<void> {
    await this.call(
      CHANNEL,
      methodFrame(CHANNEL, BASIC, 30, (w) => w.shortstr(consumerTag).u8(0)),
    );
  }

  ack(tag: number, multiple: boolean): void {
    const b = Buffer.allocUnsafe(21);
    b[0] = FRAME_METHOD;
    b.writeUInt16BE(CHANNEL, 1);
    b.writeUInt32BE(13, 3);
    b.writeUInt16BE(BASIC, 7);
    b.writeUInt16BE(80, 9);
    b.writeUInt32BE(Math.floor(tag / 0x1_0000_0000), 11);
    b.writeUInt32BE(tag >>> 0, 15);
    b[19] = multiple ? 1 : 0;
    b[20] = FRAME_END;
    this.socket.write(b);
  }

  /** Raw write of pre-encoded frames; false means the socket buffer is above its high-water mark. */
  write(buf: Buffer): boolean {
    return this.socket.write(buf);
  }

  /**
   * Writes a publish without copying a large body: head, then each body frame as header + slice + end, corked
   * so they leave in one writev.
   */
  writePublish(head: Buffer, body: Buffer): boolean {
    const chunk = this.frameMax - 8;
    this.socket.cork();
    this.socket.write(head);
    for (let i = 0; i < body.length; i += chunk) {
      const n = Math.min(chunk, body.length - i);
      const h = Buffer.allocUnsafe(7);
      h[0] = FRAME_BODY;
      h.writeUInt16BE(CHANNEL, 1);
      h.writeUInt32BE(n, 3);
      this.socket.write(h);
      this.socket.write(body.subarray(i, i + n));
      this.socket.write(END);
    }
    this.socket.uncork();
    return !this.socket.writableNeedDrain;
  }

  drain(): Promise<void> {
    if (!this.socket.writableNeedDrain) return Promise.resolve();
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      const onDrain = (): void => {
        this.socket.off('close', onClose);
        resolve();
      };
      const onClose = (): void => {
        this.socket.off('drain', onDrain);
        reject(this.failure ?? new Error('floor: socket closed'));
      };
      this.socket.once('drain', onDrain);
      this.socket.once('close', onClose);
    });
  }

  async close(): Promise<void> {
    if (this.failure !== undefined || this.closing) {
      this.socket.destroy();
      return;
    }
    this.closing = true;
    const ok = this.call(
      0,
      methodFrame(0, 10, 50, (w) => w.u16(200).shortstr('bye').u16(0).u16(0)),
    );
    const timer = setTimeout(() => this.socket.destroy(), 5000);
    try {
      await ok;
    } catch {
      // The broker may drop the socket before close-ok arrives; closing either way is what was asked.
    } finally {
      clearTimeout(timer);
      this.socket.end();
      this.socket.destroy();
    }
  }

  private fail(err: Error): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    for (const list of this.pending) {
      for (const p of list.splice(0)) p.reject(err);
    }
    this.socket.destroy();
    if (!this.closing) this.onFailure?.(err);
  }

  // ---- reading ----------------------------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    let buf = chunk;
    if (this.stash !== undefined) {
      buf = Buffer.concat([this.stash, chunk]);
      this.stash = undefined;
    }
    const len = buf.length;
    let o = 0;
    while (o < len) {
      if (this.bodyLeft > 0) {
        // Body payloads are consumed straight from the chunk as they arrive, so a large frame split across
        // socket reads is never re-assembled (the floor only counts bytes unless a body is wanted).
        const n = Math.min(this.bodyLeft, len - o);
        this.cReceived += n;
        if (this.cParts !== undefined) this.cParts.push(buf.subarray(o, o + n));
        o += n;
        this.bodyLeft -= n;
        if (this.bodyLeft === 0) this.needEnd = true;
        continue;
      }
      if (this.needEnd) {
        if (buf[o] !== FRAME_END) {
          this.fail(new Error('floor: bad frame end after body'));
          return;
        }
        o++;
        this.needEnd = false;
        if (this.cReceived >= this.cSize) this.contentDone();
        continue;
      }
      if (len - o < 7) {
        this.stash = buf.subarray(o);
        break;
      }
      const type = buf[o];
      const channel = buf.readUInt16BE(o + 1);
      const size = buf.readUInt32BE(o + 3);
      if (type === FRAME_BODY) {
        o += 7;
        this.bodyLeft = size;
        if (size === 0) this.needEnd = true;
        continue;
      }
      if (len - o < size + 8) {
        this.stash = buf.subarray(o);
        break;
      }
      if (buf[o + 7 + size] !== FRAME_END) {
        this.fail(new Error('floor: bad frame end'));
        return;
      }
      if (type === FRAME_METHOD) this.onMethod(channel, buf, o + 7);
      else if (type === FRAME_HEADER) this.onHeader(buf, o + 7);
      // Heartbeats (type 8) are negotiated off; anything else is ignored.
      o += size + 8;
      if (this.failure !== undefined) return;
    }
    this.onChunkEnd?.();
  }

  private onMethod(channel: number, buf: Buffer, p: number): void {
    const classId = buf.readUInt16BE(p);
    const methodId = buf.readUInt16BE(p + 2);
    const args = p + 4;
    if (classId === BASIC) {
      switch (methodId) {
        case 60: {
          // basic.deliver: consumer-tag, delivery-tag, redelivered, exchange, routing-key
          const tagAt = args + 1 + (buf[args] ?? 0);
          this.cTag = buf.readUInt32BE(tagAt) * 0x1_0000_0000 + buf.readUInt32BE(tagAt + 4);
          this.cDeliver = true;
          return;
        }
        case 50: // basic.return
        case 71: // basic.get-ok
          this.cDeliver = false;
          return;
        case 80: // basic.ack
        case 120: {
          // basic.nack
          const tag = buf.readUInt32BE(args) * 0x1_0000_0000 + buf.readUInt32BE(args + 4);
          this.onConfirm?.(tag, ((buf[args + 8] ?? 0) & 1) === 1, methodId === 120);
          return;
        }
        case 30: // basic.cancel from the broker (queue deleted under a consumer)
          return;
      }
    }
    const r = new Reader(buf, args);
    if (classId === 10 && methodId === 50) {
      const code = r.u16();
      const text = r.shortstr();
      this.socket.write(methodFrame(0, 10, 51));
      this.fail(new Error(`floor: connection closed by broker: ${code} ${text}`));
      return;
    }
    if (classId === 10 && (methodId === 60 || methodId === 61)) return; // blocked / unblocked
    if (classId === 20 && methodId === 40) {
      const code = r.u16();
      const text = r.shortstr();
      this.socket.write(methodFrame(CHANNEL, 20, 41));
      const err = new Error(`floor: channel closed by broker: ${code} ${text}`);
      for (const pend of this.pending[1].splice(0)) pend.reject(err);
      // One channel per connection: a channel error ends the usefulness of the whole connection.
      this.fail(err);
      return;
    }
    if (classId === 20 && methodId === 20) {
      this.socket.write(methodFrame(CHANNEL, 20, 21, (w) => w.u8(buf[args] ?? 1)));
      return;
    }
    const list = this.pending[channel === 0 ? 0 : 1];
    const next = list.shift();
    if (next === undefined) {
      this.fail(new Error(`floor: unexpected method ${classId}.${methodId}`));
      return;
    }
    next.resolve(r);
  }

  private onHeader(buf: Buffer, p: number): void {
    // class, weight, body-size (u64), property flags, properties
    this.cSize = buf.readUInt32BE(p + 4) * 0x1_0000_0000 + buf.readUInt32BE(p + 8);
    this.cReceived = 0;
    this.cParts = undefined;
    if (this.cDeliver && this.wantBody) {
      this.cParts = [];
      this.cCorrelationId = undefined;
      this.cReplyTo = undefined;
      const flags = buf.readUInt16BE(p + 12);
      const r = new Reader(buf, p + 14);
      if (flags & (1 << 15)) r.shortstr(); // content-type
      if (flags & (1 << 14)) r.shortstr(); // content-encoding
      if (flags & (1 << 13)) r.longstr(); // headers: a table is length-prefixed, so it skips like a longstr
      if (flags & (1 << 12)) r.u8(); // delivery-mode
      if (flags & (1 << 11)) r.u8(); // priority
      if (flags & (1 << 10)) this.cCorrelationId = r.shortstr();
      if (flags & (1 << 9)) this.cReplyTo = r.shortstr();
    }
    if (this.cSize === 0) this.contentDone();
  }

  private contentDone(): void {
    if (!this.cDeliver) return;
    this.cDeliver = false;
    const h = this.onDelivery;
    if (h === undefined) return;
    if (this.cParts === undefined) {
      h(this.cTag, this.cSize, undefined);
      return;
    }
    const parts = this.cParts;
    this.cParts = undefined;
    const body = parts.length === 0 ? EMPTY : parts.length === 1 ? (parts[0] ?? EMPTY) : Buffer.concat(parts);
    h(this.cTag, this.cSize, { body, correlationId: this.cCorrelationId, replyTo: this.cReplyTo });
  }
}

const END = Buffer.from([FRAME_END]);
