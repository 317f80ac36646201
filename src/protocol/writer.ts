/**
 * Encodes AMQP primitives and field tables into a growable buffer, refusing (with
 * `InvalidArgumentError`, before anything is sent) every value that would not survive the wire.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import {
  AmqpTimestamp,
  Decimal,
  dateMsOf,
  FIELD_TYPES,
  type FieldTable,
  type FieldTypeTag,
  type FieldValue,
  fitsType,
  INT32_MAX,
  INT32_MIN,
  integerType,
  MAX_NESTING,
  type Tagged,
  TWO_32,
  TypedValue,
} from './field-values.js';

function typeOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

function outOfRange(what: string, v: unknown, max: number | string): InvalidArgumentError {
  return new InvalidArgumentError(`${what} must be a whole number from 0 to ${max}, got ${String(v)}`);
}

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
        if (Number.isInteger(v) && v >= INT32_MIN && v <= INT32_MAX) {
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
          // d: a fraction, or an integer too large for int64 exactly (the float is kept)
          if (!Number.isFinite(v)) throw notStorable(key, v, 'd');
          this.u8(0x64);
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

  /** Writes the integer `n` big-endian in `width` bytes (two's complement when negative); room is made already. */
  private intBE(n: number, width: number): void {
    const b = this.buf;
    for (let i = this.pos + width - 1; i >= this.pos; i--) {
      b[i] = n; // a byte store keeps the low 8 bits
      n >>= 8;
    }
    this.pos += width;
  }

  private typed(type: FieldTypeTag, v: FieldValue, key: string): void {
    this.u8(type.charCodeAt(0));
    this.ensure(9);
    const b = this.buf;
    const int = integerType(type);
    if (int !== undefined) {
      this.intBE(this.intIn(v, int.min, int.max, type, key), int.width);
      return;
    }
    switch (type) {
      case 't':
        if (typeof v !== 'boolean') throw new InvalidArgumentError(`field '${key}' of type 't' must be a boolean`);
        b[this.pos++] = v ? 1 : 0;
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
