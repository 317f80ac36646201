/**
 * The values AMQP field tables carry and their JS types: `Decimal`, `TypedValue`, `AmqpTimestamp`,
 * `FieldTable`, and the wire types a decoded table records for values whose JS type loses them
 * (`fieldTypeOf`). Shared by the reader and the writer.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';

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

export const INT32_MIN = -0x80000000;
export const INT32_MAX = 0x7fffffff;
export const TWO_32 = 0x100000000;
/** Largest number of seconds a JS `Date` can hold (its range is ±8.64e15 ms). */
export const MAX_DATE_SECONDS = 8_640_000_000_000;
/** Deepest nesting of tables and arrays accepted from the peer; deeper input is refused, not recursed into. */
export const MAX_NESTING = 64;

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
export function dateMsOf(seconds: bigint): number {
  return seconds <= BigInt(MAX_DATE_SECONDS) ? Number(seconds) * 1000 : MAX_DATE_SECONDS * 1000;
}

/**
 * Where a decoded table or array records the wire types that its JS values lose (an integral
 * float, a narrow integer, a float32, an `'S'` that is not valid UTF-8: then its raw bytes).
 * Symbol-keyed and enumerable: `{ ...headers }` keeps it, `JSON.stringify`, `for…in` and
 * `Object.keys` do not see it. Read it through `fieldTypeOf`.
 */
export const FIELD_TYPES: unique symbol = Symbol.for('warren.fieldTypes');

/** Recorded wire types by key (or array index): a tag, or the raw bytes of a non-UTF-8 `'S'`. */
export type WireTypes = Record<string, FieldTypeTag | Buffer>;
export type Tagged = { [FIELD_TYPES]?: WireTypes };

/** The tag the writer picks for a plain JS value (`undefined` for what no table can carry). */
export function naturalTag(v: unknown): FieldTypeTag | undefined {
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

/** Attaches the recorded wire types to a decoded table or array (see `FIELD_TYPES`). */
export function recordTypes(container: object, types: WireTypes): void {
  Object.defineProperty(container, FIELD_TYPES, { value: types, enumerable: true, writable: true, configurable: true });
}

/**
 * A table by type tag as an array indexed by the tag's octet (`undefined` at octets that are no
 * tag), so that the codecs find a tag's entry with one plain array load.
 */
export function byTagOctet<T>(byTag: { readonly [K in FieldTypeTag]?: T }): readonly (T | undefined)[] {
  const out: (T | undefined)[] = [];
  for (let octet = 0; octet < 256; octet++) out.push(undefined); // packed, not holey
  for (const [tag, value] of Object.entries(byTag) as [FieldTypeTag, T][]) out[tag.charCodeAt(0)] = value;
  return out;
}

/** An integer field type: its range, and its width on the wire. */
export interface IntegerType {
  readonly min: number;
  readonly max: number;
  /** Bytes on the wire. */
  readonly width: 1 | 2 | 4;
}

const INTEGER_TYPES = byTagOctet<IntegerType>({
  b: { min: -128, max: 127, width: 1 },
  B: { min: 0, max: 255, width: 1 },
  s: { min: -32768, max: 32767, width: 2 },
  u: { min: 0, max: 65535, width: 2 },
  I: { min: INT32_MIN, max: INT32_MAX, width: 4 },
  i: { min: 0, max: 0xffffffff, width: 4 },
});

/** The integer type `tag` names; `undefined` for any other tag, and for a string that is no tag. */
export function integerType(tag: string): IntegerType | undefined {
  return tag.length === 1 ? INTEGER_TYPES[tag.charCodeAt(0)] : undefined;
}

/** True when `v` can be written with the recorded tag without loss (else the natural type is used). */
export function fitsType(tag: FieldTypeTag, v: FieldValue): boolean {
  if (typeof v === 'bigint') return tag === 'l' && v >= -(2n ** 63n) && v < 2n ** 63n;
  if (typeof v !== 'number') return false;
  const int = integerType(tag);
  if (int !== undefined) return Number.isInteger(v) && v >= int.min && v <= int.max;
  switch (tag) {
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
