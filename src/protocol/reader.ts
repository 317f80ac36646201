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
  byTagOctet,
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

/** Reads the value that follows a type tag. */
type ValueReader = (r: Reader) => FieldValue;

/** Short strings of up to this many bytes are looked up among the recently decoded ones. */
const RECENT_MAX_LENGTH = 64;
const RECENT_SLOTS = 16;
/** The last short string decoded of each length class (bytes mod 16). */
const RECENT: string[] = new Array<string>(RECENT_SLOTS).fill('');

/**
 * Whether `buf[at, at + s.length)` holds `s`, for a string decoded from as many bytes as it has
 * characters: every byte matched a char code below 0x80, so decoding them would give `s` again (a
 * byte that does not decode alone became U+FFFD, which no byte equals).
 */
function sameAscii(buf: Buffer, at: number, s: string): boolean {
  for (let i = 0; i < s.length; i++) if (buf[at + i] !== s.charCodeAt(i)) return false;
  return true;
}

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

  /** Bounds-checks the next `n` bytes and steps over them; returns where they start. */
  private take(n: number): number {
    this.need(n);
    const at = this.pos;
    this.pos = at + n;
    return at;
  }

  u8(): number {
    return this.buf[this.take(1)]!;
  }
  u16(): number {
    return this.buf.readUInt16BE(this.take(2));
  }
  u32(): number {
    return this.buf.readUInt32BE(this.take(4));
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
    const at = this.take(len);
    if (len === 0) return '';
    if (len > RECENT_MAX_LENGTH) return this.buf.toString('utf8', at, at + len);
    // A delivery's consumer tag, exchange and routing key are most often the last ones seen: comparing
    // the bytes costs less than decoding them into a new string.
    const slot = len & (RECENT_SLOTS - 1);
    const recent = RECENT[slot]!;
    if (recent.length === len && sameAscii(this.buf, at, recent)) return recent;
    const s = this.buf.toString('utf8', at, at + len);
    RECENT[slot] = s;
    return s;
  }
  longstr(): string {
    const len = this.u32();
    const at = this.take(len);
    return this.buf.toString('utf8', at, at + len);
  }
  bytes(): Buffer {
    const len = this.u32();
    const at = this.take(len);
    return Buffer.from(this.buf.subarray(at, at + len));
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
      case 0x42: // B
      case 0x73: // s
      case 0x75: // u
      case 0x69: // i
      case 0x66: // f
        // a number, which would be written back as I (or d)
        return String.fromCharCode(this.lastTag) as FieldTypeTag;
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
    const read = Reader.valueReaders[tag];
    if (read === undefined) {
      throw new FrameError(`unknown field type tag 0x${tag.toString(16).padStart(2, '0')}`, REPLY_CODES.SYNTAX_ERROR);
    }
    const v = read(this);
    if (this.pos > limit) throw new FrameError('field value overruns its table', REPLY_CODES.SYNTAX_ERROR);
    // Set last: a nested table or array has overwritten them with its own values' tags.
    this.lastTag = tag;
    this.lastStart = start;
    return v;
  }

  /**
   * How to read the value after each type tag, indexed by the tag's octet: one array load and
   * one call per value. Built once; inside the class, so that the readers reach `take` and `array`.
   */
  private static readonly valueReaders = byTagOctet<ValueReader>({
    t: (r) => r.u8() !== 0,
    b: (r) => r.buf.readInt8(r.take(1)),
    B: (r) => r.u8(),
    s: (r) => r.buf.readInt16BE(r.take(2)),
    u: (r) => r.u16(),
    I: (r) => r.buf.readInt32BE(r.take(4)),
    i: (r) => r.u32(),
    l: (r) => {
      const big = r.buf.readBigInt64BE(r.take(8));
      return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
    },
    f: (r) => r.buf.readFloatBE(r.take(4)),
    d: (r) => r.buf.readDoubleBE(r.take(8)),
    D: (r) => {
      const at = r.take(5);
      return new Decimal(r.buf[at]!, r.buf.readInt32BE(at + 1));
    },
    S: (r) => r.longstr(),
    x: (r) => r.bytes(),
    A: (r) => r.array(),
    T: (r) => r.timestamp(),
    F: (r) => r.table(),
    V: () => null,
  } satisfies { [K in FieldTypeTag]: ValueReader });
}
