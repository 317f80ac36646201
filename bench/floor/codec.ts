// Just enough AMQP 0-9-1 encoding for the floor peer: the few methods the scenarios send, plus a reader for what
// the broker sends back. Deliberately separate from src/protocol so the floor measures the broker, not warren.

export const FRAME_METHOD = 1;
export const FRAME_HEADER = 2;
export const FRAME_BODY = 3;
export const FRAME_END = 0xce;
export const BASIC = 60;

export class Writer {
  private buf: Buffer;
  o = 0;
  constructor(size = 512) {
    this.buf = Buffer.allocUnsafe(size);
  }
  private room(n: number): void {
    if (this.o + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.o + n));
    this.buf.copy(next, 0, 0, this.o);
    this.buf = next;
  }
  u8(v: number): this {
    this.room(1);
    this.buf[this.o++] = v;
    return this;
  }
  u16(v: number): this {
    this.room(2);
    this.o = this.buf.writeUInt16BE(v, this.o);
    return this;
  }
  u32(v: number): this {
    this.room(4);
    this.o = this.buf.writeUInt32BE(v, this.o);
    return this;
  }
  u64(v: number): this {
    this.room(8);
    this.o = this.buf.writeUInt32BE(Math.floor(v / 0x1_0000_0000), this.o);
    this.o = this.buf.writeUInt32BE(v >>> 0, this.o);
    return this;
  }
  shortstr(s: string): this {
    const n = Buffer.byteLength(s);
    if (n > 255) throw new RangeError(`shortstr too long: ${n} bytes`);
    this.room(1 + n);
    this.buf[this.o++] = n;
    this.o += this.buf.write(s, this.o);
    return this;
  }
  longstr(s: string | Buffer): this {
    const b = typeof s === 'string' ? Buffer.from(s) : s;
    this.room(4 + b.length);
    this.o = this.buf.writeUInt32BE(b.length, this.o);
    this.o += b.copy(this.buf, this.o);
    return this;
  }
  /** A field table whose values are all strings or nested tables of booleans (client properties need no more). */
  table(t: Record<string, string | Record<string, boolean>>): this {
    const inner = new Writer(256);
    for (const [k, v] of Object.entries(t)) {
      inner.shortstr(k);
      if (typeof v === 'string') inner.u8(0x53).longstr(v);
      else {
        const nested = new Writer(128);
        for (const [nk, nv] of Object.entries(v))
          nested
            .shortstr(nk)
            .u8(0x74)
            .u8(nv ? 1 : 0);
        inner.u8(0x46).longstr(nested.bytes());
      }
    }
    return this.longstr(inner.bytes());
  }
  bytes(): Buffer {
    return this.buf.subarray(0, this.o);
  }
}

export function methodFrame(channel: number, classId: number, methodId: number, args?: (w: Writer) => void): Buffer {
  const w = new Writer(256);
  w.u8(FRAME_METHOD).u16(channel).u32(0).u16(classId).u16(methodId);
  args?.(w);
  w.u8(FRAME_END);
  const b = w.bytes();
  b.writeUInt32BE(b.length - 8, 3);
  return b;
}

export interface PublishProps {
  correlationId?: string;
  replyTo?: string;
}

/** basic.publish method frame + content header frame, for a body of `bodySize` bytes. */
export function publishHead(
  channel: number,
  exchange: string,
  routingKey: string,
  bodySize: number,
  props?: PublishProps,
): Buffer {
  const method = methodFrame(channel, BASIC, 40, (w) => w.u16(0).shortstr(exchange).shortstr(routingKey).u8(0));
  const w = new Writer(128);
  w.u8(FRAME_HEADER).u16(channel).u32(0).u16(BASIC).u16(0).u64(bodySize);
  let flags = 0;
  if (props?.correlationId !== undefined) flags |= 1 << 10;
  if (props?.replyTo !== undefined) flags |= 1 << 9;
  w.u16(flags);
  // Property values follow in flag order, high bit first.
  if (props?.correlationId !== undefined) w.shortstr(props.correlationId);
  if (props?.replyTo !== undefined) w.shortstr(props.replyTo);
  w.u8(FRAME_END);
  const header = w.bytes();
  header.writeUInt32BE(header.length - 8, 3);
  return Buffer.concat([method, header]);
}

/** A whole publish (method, header and body frames) in one contiguous buffer. */
export function encodePublish(
  channel: number,
  routingKey: string,
  body: Buffer,
  frameMax: number,
  props?: PublishProps,
): Buffer {
  const head = publishHead(channel, '', routingKey, body.length, props);
  const chunk = frameMax - 8;
  const frames = Math.ceil(body.length / chunk);
  const out = Buffer.allocUnsafe(head.length + body.length + frames * 8);
  let o = head.copy(out, 0);
  for (let i = 0; i < body.length; i += chunk) {
    const n = Math.min(chunk, body.length - i);
    out[o] = FRAME_BODY;
    out.writeUInt16BE(channel, o + 1);
    out.writeUInt32BE(n, o + 3);
    o += 7;
    o += body.copy(out, o, i, i + n);
    out[o++] = FRAME_END;
  }
  return out;
}

/** Reads method arguments in place; only the types the broker's replies to the floor contain. */
export class Reader {
  constructor(
    private readonly buf: Buffer,
    public o: number,
  ) {}
  u8(): number {
    const v = this.buf[this.o];
    if (v === undefined) throw new RangeError('read past end of frame');
    this.o += 1;
    return v;
  }
  u16(): number {
    const v = this.buf.readUInt16BE(this.o);
    this.o += 2;
    return v;
  }
  u32(): number {
    const v = this.buf.readUInt32BE(this.o);
    this.o += 4;
    return v;
  }
  u64(): number {
    const v = this.buf.readUInt32BE(this.o) * 0x1_0000_0000 + this.buf.readUInt32BE(this.o + 4);
    this.o += 8;
    return v;
  }
  shortstr(): string {
    const n = this.u8();
    const s = this.buf.toString('utf8', this.o, this.o + n);
    this.o += n;
    return s;
  }
  longstr(): Buffer {
    const n = this.u32();
    const b = this.buf.subarray(this.o, this.o + n);
    this.o += n;
    return b;
  }
  /** A field table, decoding the value types RabbitMQ puts in server-properties; others end the parse. */
  table(): Record<string, unknown> {
    const raw = this.longstr();
    const r = new Reader(raw, 0);
    const out: Record<string, unknown> = {};
    while (r.o < raw.length) {
      const key = r.shortstr();
      const type = String.fromCharCode(r.u8());
      switch (type) {
        case 'S':
          out[key] = r.longstr().toString();
          break;
        case 's':
          out[key] = r.shortstr();
          break;
        case 't':
          out[key] = r.u8() !== 0;
          break;
        case 'F':
          out[key] = r.table();
          break;
        case 'I':
          out[key] = raw.readInt32BE(r.o);
          r.o += 4;
          break;
        case 'l':
        case 'T':
          out[key] = r.u64();
          break;
        default:
          // Unknown widths cannot be skipped safely; what was read so far is all the floor needs.
          return out;
      }
    }
    return out;
  }
}
