/**
 * AMQP 0-9-1 primitive types and field tables: the only hand-written codec code. The generated
 * method and property codecs are built from these.
 *
 * @module
 */
import { FrameError, InvalidArgumentError } from '../errors.js';

/** A decimal field value: `value / 10^scale`. */
export class Decimal {
  constructor(
    /** Number of decimal digits after the point (0–255). */
    readonly scale: number,
    /** The unscaled value, a signed 32-bit integer. */
    readonly value: number,
  ) {}
  toNumber(): number {
    return this.value / 10 ** this.scale;
  }
}

/** Type tags of field values as RabbitMQ reads and writes them. */
export type FieldTypeTag =
  | 't'
  | 'b'
  | 'B'
  | 's'
  | 'u'
  | 'I'
  | 'i'
  | 'l'
  | 'f'
  | 'd'
  | 'D'
  | 'S'
  | 'x'
  | 'A'
  | 'T'
  | 'F'
  | 'V';

/**
 * A value with an explicit wire type, for when the natural mapping is not what the receiver
 * expects (e.g. a float32 `'f'`, an unsigned byte `'B'`).
 *
 * @example
 * ```ts
 * await ch.basicPublish('', 'q', body, { headers: { 'x-priority': new TypedValue('b', 5) } });
 * ```
 */
export class TypedValue {
  constructor(
    readonly type: FieldTypeTag,
    readonly value: FieldValue,
  ) {}
}

/** Any value a field table can hold. */
export type FieldValue =
  | boolean
  | number
  | bigint
  | string
  | Buffer
  | Date
  | Decimal
  | TypedValue
  | null
  | undefined
  | FieldValue[]
  | FieldTable;

/** An AMQP field table: string keys to field values. `undefined` entries are not sent. */
export interface FieldTable {
  [key: string]: FieldValue;
}

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
const TWO_32 = 0x100000000;
/** Largest number of seconds a JS `Date` can hold (its range is ±8.64e15 ms). */
const MAX_DATE_SECONDS = 8_640_000_000_000;

/**
 * A timestamp whose wire value a JS `Date` cannot hold: any unsigned 64-bit number of seconds,
 * kept exactly in `seconds`. Decoding gives a plain `Date` for every timestamp a `Date` can hold
 * (up to the year 275760) and an `AmqpTimestamp` only beyond that; as a `Date` it then reads as
 * the latest instant a `Date` holds, so it still compares, sorts and prints as "far future".
 * Publishing one writes exactly the 8 bytes it arrived with. Also constructible, to publish such
 * a value.
 *
 * @example
 * ```ts
 * const ts = msg.properties.timestamp;
 * if (ts instanceof AmqpTimestamp) console.log(`far future: ${ts.seconds} s`);
 * await ch.basicPublish('', 'q', body, { timestamp: new AmqpTimestamp(2n ** 60n) });
 * ```
 */
export class AmqpTimestamp extends Date {
  /** Seconds since the Unix epoch as on the wire (0 to 2^64 − 1). */
  readonly seconds: bigint;
  constructor(seconds: bigint) {
    if (typeof seconds !== 'bigint' || seconds < 0n || seconds > 0xffffffffffffffffn) {
      throw new InvalidArgumentError(`AmqpTimestamp seconds must be a bigint from 0 to 2^64-1, got ${String(seconds)}`);
    }
    super(dateMsOf(seconds));
    this.seconds = seconds;
  }
}

/** The `Date` time of a number of seconds: exact when a `Date` can hold it, else the latest `Date`. */
function dateMsOf(seconds: bigint): number {
  return seconds <= BigInt(MAX_DATE_SECONDS) ? Number(seconds) * 1000 : MAX_DATE_SECONDS * 1000;
}

/**
 * Where a decoded table or array records the wire types that its JS values lose (an integral
 * float, a narrow integer, a float32, an `'S'` that is not valid UTF-8: then its raw bytes).
 * Symbol-keyed and enumerable: `{ ...headers }` keeps it, `JSON.stringify`, `for…in` and
 * `Object.keys` do not see it. Read it through `fieldTypeOf`.
 */
const FIELD_TYPES: unique symbol = Symbol.for('warren.fieldTypes');

/** Recorded wire types by key (or array index): a tag, or the raw bytes of a non-UTF-8 `'S'`. */
type WireTypes = Record<string, FieldTypeTag | Buffer>;
type Tagged = { [FIELD_TYPES]?: WireTypes };

/** The tag the writer picks for a plain JS value (`undefined` for what no table can carry). */
function naturalTag(v: unknown): FieldTypeTag | undefined {
  switch (typeof v) {
    case 'string':
      return 'S';
    case 'boolean':
      return 't';
    case 'number':
      return Number.isInteger(v) && v >= INT32_MIN && v <= INT32_MAX ? 'I' : Number.isSafeInteger(v) ? 'l' : 'd';
    case 'bigint':
      return 'l';
    case 'undefined':
      return 'V';
    case 'object':
      if (v === null) return 'V';
      if (v instanceof Uint8Array) return 'x';
      if (v instanceof Date) return 'T';
      if (Array.isArray(v)) return 'A';
      if (v instanceof TypedValue) return v.type;
      if (v instanceof Decimal) return 'D';
      return 'F';
    default:
      return undefined;
  }
}

/**
 * The wire type of a field of a decoded table (or an element of a decoded array): the type it
 * arrived with, which the writer reuses when the message is published again and the value still
 * fits it. For a value you set yourself, the type the writer picks for it.
 *
 * @example
 * ```ts
 * // aioamqp sent { retries: 3.0 } as a float32: it reads as 3, and is forwarded as the float32 3.0
 * fieldTypeOf(msg.properties.headers!, 'retries'); // 'f'
 * fieldTypeOf({ retries: 3 }, 'retries');          // 'I', what the writer picks for a plain 3
 * ```
 */
export function fieldTypeOf(
  container: FieldTable | readonly FieldValue[],
  key: string | number,
): FieldTypeTag | undefined {
  const recorded = (container as Tagged)[FIELD_TYPES]?.[key];
  if (recorded !== undefined) return Buffer.isBuffer(recorded) ? 'S' : recorded;
  if (!Object.hasOwn(container, key)) return undefined;
  return naturalTag((container as Record<string, unknown>)[key]);
}

function typeOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

function outOfRange(what: string, v: unknown, max: number | string): InvalidArgumentError {
  return new InvalidArgumentError(`${what} must be a whole number from 0 to ${max}, got ${String(v)}`);
}

/** Deepest nesting of tables and arrays accepted from the peer; deeper input is refused, not recursed into. */
const MAX_NESTING = 64;

/**
 * A growable output buffer. One scratch writer is reused for every encode; callers copy out what
 * they need, so encoding allocates nothing but the final frame.
 */
export class Writer {
  buf: Buffer;
  pos = 0;
  /**
   * Where the bytes that `ensure()` keeps begin. A subclass may move those bytes to the start of a
   * new buffer, so a position kept across writes must be relative to `base` (see `reserve`).
   */
  base = 0;

  constructor(initialSize = 65536) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  // The range checks are one comparison each: a value that does not fit is refused rather than
  // silently truncated (a deliveryMode of 258 must not go out as 2).
  /** Skips `n` bytes to fill in later with `patchU16`/`patchU32`; returns their position relative to `base`. */
  reserve(n: number): number {
    this.ensure(n);
    const at = this.pos - this.base;
    this.pos += n;
    return at;
  }
  patchU16(at: number, v: number): void {
    this.buf.writeUInt16BE(v, this.base + at);
  }
  /** Writes at `at` the number of bytes from just after that field to the current position. */
  patchLength(at: number): void {
    this.buf.writeUInt32BE(this.pos - (this.base + at) - 4, this.base + at);
  }

  u8(v: number, what = 'octet'): void {
    if ((v & 0xff) !== v) throw outOfRange(what, v, 255);
    this.ensure(1);
    this.buf[this.pos++] = v;
  }
  u16(v: number, what = 'short'): void {
    if ((v & 0xffff) !== v) throw outOfRange(what, v, 65535);
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
  }
  u32(v: number, what = 'long'): void {
    if (v >>> 0 !== v) throw outOfRange(what, v, 0xffffffff);
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
  }
  /** Unsigned 64-bit from a non-negative safe integer or bigint. */
  u64(v: number | bigint, what = 'longlong'): void {
    this.ensure(8);
    if (typeof v === 'bigint') {
      if (v < 0n || v > 0xffffffffffffffffn) throw outOfRange(what, v, '2^64-1');
      this.buf.writeBigUInt64BE(v, this.pos);
    } else {
      if (!Number.isSafeInteger(v) || v < 0) throw outOfRange(what, v, Number.MAX_SAFE_INTEGER);
      this.buf.writeUInt32BE(Math.floor(v / TWO_32), this.pos);
      this.buf.writeUInt32BE(v % TWO_32, this.pos + 4);
    }
    this.pos += 8;
  }

  shortstr(s: string, what = 'short string'): void {
    if (typeof s !== 'string') throw new InvalidArgumentError(`${what} must be a string, got ${typeOf(s)}`);
    this.ensure(1 + s.length * 3);
    const len = this.buf.write(s, this.pos + 1, 'utf8');
    if (len > 255) {
      throw new InvalidArgumentError(`${what} is ${len} bytes long; AMQP short strings hold at most 255 bytes`);
    }
    this.buf[this.pos] = len;
    this.pos += 1 + len;
  }

  longstr(s: string | Buffer): void {
    if (typeof s === 'string') {
      this.ensure(4 + s.length * 3);
      const len = this.buf.write(s, this.pos + 4, 'utf8');
      this.buf.writeUInt32BE(len, this.pos);
      this.pos += 4 + len;
    } else {
      if (!Buffer.isBuffer(s))
        throw new InvalidArgumentError(`a long string must be a string or Buffer, got ${typeOf(s)}`);
      this.ensure(4 + s.length);
      this.buf.writeUInt32BE(s.length, this.pos);
      s.copy(this.buf, this.pos + 4);
      this.pos += 4 + s.length;
    }
  }

  timestamp(d: Date): void {
    if (!(d instanceof Date)) throw new InvalidArgumentError(`a timestamp must be a Date, got ${typeOf(d)}`);
    const ms = d.getTime();
    // The exact wire value, unless the Date was changed (setTime) since it was made.
    if (d instanceof AmqpTimestamp && ms === dateMsOf(d.seconds)) {
      this.u64(d.seconds);
      return;
    }
    if (!Number.isFinite(ms) || ms < 0) throw new InvalidArgumentError('timestamp must be a valid Date after 1970');
    this.u64(Math.floor(ms / 1000));
  }

  table(t: FieldTable | undefined): void {
    const start = this.reserve(4);
    if (t !== undefined && t !== null) {
      if (typeof t !== 'object' || Array.isArray(t) || Buffer.isBuffer(t)) {
        throw new InvalidArgumentError('a field table must be a plain object');
      }
      this.nest();
      try {
        const types = (t as Tagged)[FIELD_TYPES];
        for (const key in t) {
          const value = t[key];
          if (value === undefined) continue;
          this.shortstr(key, `field table key '${key.slice(0, 40)}'`);
          if (types === undefined) this.fieldValue(value, key);
          else this.recordedOrNatural(types[key], value, key);
        }
      } finally {
        this.depth--;
      }
    }
    this.patchLength(start);
  }

  private depth = 0;

  /** Counts one level of nesting; a table that contains itself would otherwise overflow the stack. */
  private nest(): void {
    if (++this.depth > MAX_NESTING) {
      this.depth--;
      throw new InvalidArgumentError(
        `field tables nested deeper than ${MAX_NESTING} levels (does one contain itself?)`,
      );
    }
  }

  private array(values: readonly FieldValue[], key: string): void {
    const start = this.reserve(4);
    this.nest();
    try {
      const types = (values as Tagged)[FIELD_TYPES];
      if (types === undefined) for (const v of values) this.fieldValue(v === undefined ? null : v, key);
      else {
        for (let i = 0; i < values.length; i++) {
          const v = values[i];
          this.recordedOrNatural(types[i], v === undefined ? null : v, key);
        }
      }
    } finally {
      this.depth--;
    }
    this.patchLength(start);
  }

  /**
   * Writes a value of a decoded table with the wire type it arrived with when it still fits that
   * type (so forwarding changes nothing), else with the natural type of its JS value.
   */
  private recordedOrNatural(recorded: FieldTypeTag | Buffer | undefined, v: FieldValue, key: string): void {
    if (recorded === undefined) this.fieldValue(v, key);
    else if (Buffer.isBuffer(recorded)) {
      if (typeof v === 'string' && v === recorded.toString('utf8')) {
        this.u8(0x53); // S, with the exact bytes it arrived with
        this.longstr(recorded);
      } else this.fieldValue(v, key);
    } else if (fitsType(recorded, v)) this.typed(recorded, v, key);
    else this.fieldValue(v, key);
  }

  /** Writes a tagged field value, choosing the type RabbitMQ expects for a plain JS value. */
  fieldValue(v: FieldValue, key: string): void {
    switch (typeof v) {
      case 'string':
        this.u8(0x53); // S
        this.longstr(v);
        return;
      case 'boolean':
        this.u8(0x74); // t
        this.u8(v ? 1 : 0);
        return;
      case 'number':
        if (Number.isInteger(v)) {
          if (v >= INT32_MIN && v <= INT32_MAX) {
            this.u8(0x49); // I
            this.ensure(4);
            this.buf.writeInt32BE(v, this.pos);
            this.pos += 4;
          } else if (Number.isSafeInteger(v)) {
            this.u8(0x6c); // l
            this.ensure(8);
            this.buf.writeBigInt64BE(BigInt(v), this.pos);
            this.pos += 8;
          } else {
            this.u8(0x64); // d: too large for int64 exactly; keep the float
            this.ensure(8);
            this.buf.writeDoubleBE(v, this.pos);
            this.pos += 8;
          }
        } else {
          if (!Number.isFinite(v)) throw notStorable(key, v, 'd');
          this.u8(0x64); // d
          this.ensure(8);
          this.buf.writeDoubleBE(v, this.pos);
          this.pos += 8;
        }
        return;
      case 'bigint':
        this.typed('l', v, key);
        return;
      case 'undefined':
        this.u8(0x56); // V
        return;
      case 'object':
        if (v === null) {
          this.u8(0x56); // V
        } else if (Buffer.isBuffer(v)) {
          this.u8(0x78); // x
          this.longstr(v);
        } else if (v instanceof Date) {
          this.u8(0x54); // T
          this.timestamp(v);
        } else if (Array.isArray(v)) {
          this.u8(0x41); // A
          this.array(v, key);
        } else if (v instanceof TypedValue) {
          this.typed(v.type, v.value, key);
        } else if (v instanceof Decimal) {
          this.typed('D', v, key);
        } else if (v instanceof Uint8Array) {
          this.u8(0x78);
          this.longstr(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
        } else {
          this.u8(0x46); // F
          this.table(v as FieldTable);
        }
        return;
      default:
        throw new InvalidArgumentError(`field '${key}' has a value of type ${typeof v}, which AMQP cannot carry`);
    }
  }

  private intIn(v: FieldValue, min: number, max: number, type: string, key: string): number {
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`field '${key}' of type '${type}' must be an integer from ${min} to ${max}`);
    }
    return n;
  }

  private typed(type: FieldTypeTag, v: FieldValue, key: string): void {
    this.u8(type.charCodeAt(0));
    this.ensure(9);
    const b = this.buf;
    switch (type) {
      case 't':
        if (typeof v !== 'boolean') throw new InvalidArgumentError(`field '${key}' of type 't' must be a boolean`);
        b[this.pos++] = v ? 1 : 0;
        return;
      case 'b':
        b.writeInt8(this.intIn(v, -128, 127, type, key), this.pos);
        this.pos += 1;
        return;
      case 'B':
        b.writeUInt8(this.intIn(v, 0, 255, type, key), this.pos);
        this.pos += 1;
        return;
      case 's':
        b.writeInt16BE(this.intIn(v, -32768, 32767, type, key), this.pos);
        this.pos += 2;
        return;
      case 'u':
        b.writeUInt16BE(this.intIn(v, 0, 65535, type, key), this.pos);
        this.pos += 2;
        return;
      case 'I':
        b.writeInt32BE(this.intIn(v, INT32_MIN, INT32_MAX, type, key), this.pos);
        this.pos += 4;
        return;
      case 'i':
        b.writeUInt32BE(this.intIn(v, 0, 0xffffffff, type, key), this.pos);
        this.pos += 4;
        return;
      case 'l': {
        let big: bigint;
        if (typeof v === 'bigint') big = v;
        else if (typeof v === 'number' && Number.isInteger(v)) big = BigInt(v);
        else throw new InvalidArgumentError(`field '${key}' of type 'l' must be an integer or bigint`);
        if (big < -(2n ** 63n) || big >= 2n ** 63n) {
          throw new InvalidArgumentError(`field '${key}' of type 'l' is outside the signed 64-bit range`);
        }
        b.writeBigInt64BE(big, this.pos);
        this.pos += 8;
        return;
      }
      case 'f':
        if (typeof v !== 'number') throw new InvalidArgumentError(`field '${key}' of type 'f' must be a number`);
        if (!Number.isFinite(Math.fround(v))) {
          // Rounding to float32 would give ±Infinity; like NaN, RabbitMQ cannot store it.
          throw notStorable(key, v, 'f');
        }
        b.writeFloatBE(v, this.pos);
        this.pos += 4;
        return;
      case 'd':
        if (typeof v !== 'number') throw new InvalidArgumentError(`field '${key}' of type 'd' must be a number`);
        if (!Number.isFinite(v)) throw notStorable(key, v, 'd');
        b.writeDoubleBE(v, this.pos);
        this.pos += 8;
        return;
      case 'D': {
        if (!(v instanceof Decimal)) throw new InvalidArgumentError(`field '${key}' of type 'D' must be a Decimal`);
        b.writeUInt8(this.intIn(v.scale, 0, 255, 'D scale', key), this.pos);
        b.writeInt32BE(this.intIn(v.value, INT32_MIN, INT32_MAX, 'D value', key), this.pos + 1);
        this.pos += 5;
        return;
      }
      case 'S':
      case 'x':
        if (typeof v !== 'string' && !Buffer.isBuffer(v)) {
          throw new InvalidArgumentError(`field '${key}' of type '${type}' must be a string or Buffer`);
        }
        this.longstr(v);
        return;
      case 'A':
        if (!Array.isArray(v)) throw new InvalidArgumentError(`field '${key}' of type 'A' must be an array`);
        this.array(v, key);
        return;
      case 'T':
        if (!(v instanceof Date)) throw new InvalidArgumentError(`field '${key}' of type 'T' must be a Date`);
        this.timestamp(v);
        return;
      case 'F':
        this.table(v as FieldTable);
        return;
      case 'V':
        return;
      default:
        throw new InvalidArgumentError(`field '${key}' has unknown type tag '${String(type)}'`);
    }
  }
}

/** Attaches the recorded wire types to a decoded table or array (see `FIELD_TYPES`). */
function recordTypes(container: object, types: WireTypes): void {
  Object.defineProperty(container, FIELD_TYPES, { value: types, enumerable: true, writable: true, configurable: true });
}

/**
 * RabbitMQ cannot store NaN or ±Infinity in a table: it crashes the channel and closes the whole
 * connection (541). Refused before a byte is written.
 */
function notStorable(key: string, v: number, type: 'f' | 'd'): InvalidArgumentError {
  const what = Number.isFinite(v) ? `${v}, beyond the float32 range (it would become Infinity),` : String(v);
  return new InvalidArgumentError(
    `field '${key}' is ${what} as '${type}'; RabbitMQ cannot store NaN or Infinity and would close the ` +
      'connection (send a finite number, a string, or null)',
  );
}

/** True when `v` can be written with the recorded tag without loss (else the natural type is used). */
function fitsType(tag: FieldTypeTag, v: FieldValue): boolean {
  if (typeof v === 'bigint') return tag === 'l' && v >= -(2n ** 63n) && v < 2n ** 63n;
  if (typeof v !== 'number') return false;
  switch (tag) {
    case 'b':
      return Number.isInteger(v) && v >= -128 && v <= 127;
    case 'B':
      return Number.isInteger(v) && v >= 0 && v <= 255;
    case 's':
      return Number.isInteger(v) && v >= -32768 && v <= 32767;
    case 'u':
      return Number.isInteger(v) && v >= 0 && v <= 65535;
    case 'I':
      return Number.isInteger(v) && v >= INT32_MIN && v <= INT32_MAX;
    case 'i':
      return Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
    case 'l':
      return Number.isSafeInteger(v);
    case 'f':
      return Number.isFinite(v) && Math.fround(v) === v;
    case 'd':
      return Number.isFinite(v);
    default:
      return false;
  }
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
      throw new FrameError(`truncated field: needed ${n} bytes at offset ${this.pos}, frame ends at ${this.end}`, 502);
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
    if (high > 0x1fffff) throw new FrameError(`64-bit value at offset ${this.pos} is above 2^53 − 1`, 502);
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
      throw new FrameError(`field tables nested deeper than ${MAX_NESTING} levels`, 502);
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
    if (this.pos !== end) throw new FrameError('field table overruns its declared length', 502);
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
    if (this.pos !== end) throw new FrameError('field array overruns its declared length', 502);
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
    if (this.pos >= limit) throw new FrameError('field value missing', 502);
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
        throw new FrameError(`unknown field type tag 0x${tag.toString(16).padStart(2, '0')}`, 502);
    }
    if (this.pos > limit) throw new FrameError('field value overruns its table', 502);
    // Set last: a nested table or array has overwritten them with its own values' tags.
    this.lastTag = tag;
    this.lastStart = start;
    return v;
  }
}
