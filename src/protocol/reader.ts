/**
 * Decodes AMQP primitives and field tables from a frame payload. Every read is bounds-checked and
 * every malformed input is a `FrameError` (502), never an exception of another kind.
 *
 * @module
 */
import { REPLY_CODES } from './generated/constants.js';
import { FrameError } from '../errors.js';
import {
  AmqpTimestamp,
  Decimal,
  type FieldTable,
  type FieldTypeTag,
  type FieldValue,
  INT32_MAX,
  INT32_MIN,
  MAX_DATE_SECONDS,
  MAX_NESTING,
  recordTypes,
  TWO_32,
  type WireTypes,
} from './field-values.js';

/** Reads primitives from `buf` between `pos` and `end`; every read is bounds-checked. */
export class Reader {
  // Mutable so one Reader can be pointed at frame after frame without allocating.
  constructor(
    public buf: Buffer,
    public pos: number,
    public end: number,
  ) {}

  private need(n: number): void {
    if (this.pos + n > this.end) {
      throw new FrameError(
        `truncated field: needed ${n} bytes at offset ${this.pos}, frame ends at ${this.end}`,
        REPLY_CODES.SYNTAX_ERROR,
      );
    }
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  /** Unsigned 64-bit as a number; values above 2^53 − 1 (never a real tag, count or size) are refused (502). */
  u64(): number {
    this.need(8);
    const high = this.buf.readUInt32BE(this.pos);
    // Above 2^53 − 1 a number is inexact: acking such a delivery tag would ack another message.
    if (high > 0x1fffff)
      throw new FrameError(`64-bit value at offset ${this.pos} is above 2^53 − 1`, REPLY_CODES.SYNTAX_ERROR);
    const v = high * TWO_32 + this.buf.readUInt32BE(this.pos + 4);
    this.pos += 8;
    return v;
  }
  shortstr(): string {
    const len = this.u8();
    this.need(len);
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }
  longstr(): string {
    const len = this.u32();
    this.need(len);
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }
  bytes(): Buffer {
    const len = this.u32();
    this.need(len);
    const out = Buffer.from(this.buf.subarray(this.pos, this.pos + len));
    this.pos += len;
    return out;
  }
  /**
   * A timestamp (unsigned 64-bit seconds): a plain `Date` when a `Date` can hold it, else an
   * `AmqpTimestamp` that keeps the exact seconds. Never refused: a timestamp is data.
   */
  timestamp(): Date {
    this.need(8);
    const high = this.buf.readUInt32BE(this.pos);
    const seconds = high * TWO_32 + this.buf.readUInt32BE(this.pos + 4);
    if (high <= 0x1fffff && seconds <= MAX_DATE_SECONDS) {
      this.pos += 8;
      return new Date(seconds * 1000);
    }
    const exact = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return new AmqpTimestamp(exact);
  }

  private depth = 0;

  private enter(): void {
    if (++this.depth > MAX_NESTING) {
      this.depth--;
      throw new FrameError(`field tables nested deeper than ${MAX_NESTING} levels`, REPLY_CODES.SYNTAX_ERROR);
    }
  }

  table(): FieldTable {
    const len = this.u32();
    this.need(len);
    const end = this.pos + len;
    const out: FieldTable = {};
    let types: WireTypes | undefined;
    this.enter();
    try {
      while (this.pos < end) {
        const key = this.shortstr();
        const value = this.fieldValue(end);
        // A key named __proto__ must not change the object's prototype.
        Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
        const lost = this.lostType(value);
        if (lost !== undefined) {
          types ??= Object.create(null) as WireTypes;
          types[key] = lost;
        } else if (types !== undefined) delete types[key]; // a repeated key: the last one counts
      }
    } finally {
      this.depth--;
    }
    if (this.pos !== end) throw new FrameError('field table overruns its declared length', REPLY_CODES.SYNTAX_ERROR);
    if (types !== undefined) recordTypes(out, types);
    return out;
  }

  private array(): FieldValue[] {
    const len = this.u32();
    this.need(len);
    const end = this.pos + len;
    const out: FieldValue[] = [];
    let types: WireTypes | undefined;
    this.enter();
    try {
      while (this.pos < end) {
        const value = this.fieldValue(end);
        const lost = this.lostType(value);
        if (lost !== undefined) {
          types ??= Object.create(null) as WireTypes;
          types[out.length] = lost;
        }
        out.push(value);
      }
    } finally {
      this.depth--;
    }
    if (this.pos !== end) throw new FrameError('field array overruns its declared length', REPLY_CODES.SYNTAX_ERROR);
    if (types !== undefined) recordTypes(out, types);
    return out;
  }

  /** Tag and start of the value `fieldValue` read last, for `lostType`. */
  private lastTag = 0;
  private lastStart = 0;

  /**
   * The wire type of the value just read when its JS value alone would be written back with
   * another type (or, for an `'S'` that is not valid UTF-8, its raw bytes); else `undefined`.
   */
  private lostType(v: FieldValue): FieldTypeTag | Buffer | undefined {
    switch (this.lastTag) {
      case 0x62: // b
        return 'b';
      case 0x42: // B
        return 'B';
      case 0x73: // s
        return 's';
      case 0x75: // u
        return 'u';
      case 0x69: // i
        return 'i';
      case 0x66: // f
        return 'f';
      case 0x6c: // l holding what would be written as I
        return typeof v === 'number' && v >= INT32_MIN && v <= INT32_MAX ? 'l' : undefined;
      case 0x64: // d holding an integer, which would be written as I or l
        return Number.isSafeInteger(v) ? 'd' : undefined;
      case 0x53: {
        // S: decoding replaced invalid UTF-8 with U+FFFD; keep the bytes so forwarding is exact
        if (typeof v !== 'string' || !v.includes('\uFFFD')) return undefined;
        const raw = this.buf.subarray(this.lastStart + 4, this.pos);
        return raw.equals(Buffer.from(v, 'utf8')) ? undefined : Buffer.from(raw);
      }
      default:
        return undefined;
    }
  }

  private fieldValue(limit: number): FieldValue {
    if (this.pos >= limit) throw new FrameError('field value missing', REPLY_CODES.SYNTAX_ERROR);
    const tag = this.u8();
    const start = this.pos;
    const b = this.buf;
    let v: FieldValue;
    switch (tag) {
      case 0x74: // t
        v = this.u8() !== 0;
        break;
      case 0x62: // b
        this.need(1);
        v = b.readInt8(this.pos);
        this.pos += 1;
        break;
      case 0x42: // B
        v = this.u8();
        break;
      case 0x73: // s
        this.need(2);
        v = b.readInt16BE(this.pos);
        this.pos += 2;
        break;
      case 0x75: // u
        v = this.u16();
        break;
      case 0x49: // I
        this.need(4);
        v = b.readInt32BE(this.pos);
        this.pos += 4;
        break;
      case 0x69: // i
        v = this.u32();
        break;
      case 0x6c: {
        // l
        this.need(8);
        const big = b.readBigInt64BE(this.pos);
        this.pos += 8;
        v = big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
        break;
      }
      case 0x66: // f
        this.need(4);
        v = b.readFloatBE(this.pos);
        this.pos += 4;
        break;
      case 0x64: // d
        this.need(8);
        v = b.readDoubleBE(this.pos);
        this.pos += 8;
        break;
      case 0x44: {
        // D
        this.need(5);
        const scale = b[this.pos]!;
        const value = b.readInt32BE(this.pos + 1);
        this.pos += 5;
        v = new Decimal(scale, value);
        break;
      }
      case 0x53: // S
        v = this.longstr();
        break;
      case 0x78: // x
        v = this.bytes();
        break;
      case 0x41: // A
        v = this.array();
        break;
      case 0x54: // T
        v = this.timestamp();
        break;
      case 0x46: // F
        v = this.table();
        break;
      case 0x56: // V
        v = null;
        break;
      default:
        throw new FrameError(`unknown field type tag 0x${tag.toString(16).padStart(2, '0')}`, REPLY_CODES.SYNTAX_ERROR);
    }
    if (this.pos > limit) throw new FrameError('field value overruns its table', REPLY_CODES.SYNTAX_ERROR);
    // Set last: a nested table or array has overwritten them with its own values' tags.
    this.lastTag = tag;
    this.lastStart = start;
    return v;
  }
}
