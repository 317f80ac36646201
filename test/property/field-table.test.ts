/**
 * Field tables: every type tag with explicit `TypedValue`s, the natural type chosen for plain JS
 * values, byte-exact re-encoding, malformed input (only FrameError 502 may escape the decoder) and
 * refused user values (InvalidArgumentError).
 *
 * Generated values are trees of `Node`s: each knows its tag, the value handed to the encoder, the
 * value the decoder must return, and its wire bytes as written by the small reference encoder here.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FrameError, InvalidArgumentError } from '../../src/errors.js';
import {
  AmqpTimestamp,
  Decimal,
  type FieldTable,
  type FieldTypeTag,
  type FieldValue,
  fieldTypeOf,
  TypedValue,
} from '../../src/protocol/field-values.js';
import { Reader } from '../../src/protocol/reader.js';
import { Writer } from '../../src/protocol/writer.js';
import { untyped } from '../support/arbitraries.js';
import { runs, SEED } from '../support/spec.js';

const ALL_TAGS: readonly FieldTypeTag[] = [
  't',
  'b',
  'B',
  's',
  'u',
  'I',
  'i',
  'l',
  'f',
  'd',
  'D',
  'S',
  'x',
  'A',
  'T',
  'F',
  'V',
];
const TAG_BYTES = new Set(ALL_TAGS.map((t) => t.charCodeAt(0)));
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const SAFE_MIN = BigInt(Number.MIN_SAFE_INTEGER);
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

type ScalarTag = Exclude<FieldTypeTag, 'A' | 'F'>;
type Node =
  | { tag: ScalarTag; input: FieldValue; expected: FieldValue; payload: Buffer }
  | { tag: 'A'; items: Node[] }
  | { tag: 'F'; entries: [string, Node][] };

// ------------------------------------------------------------------------- reference encoding
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const withLength = (parts: Buffer[]): Buffer => {
  const body = Buffer.concat(parts);
  return Buffer.concat([u32(body.length), body]);
};
const shortstrBytes = (s: string): Buffer => {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from([b.length]), b]);
};
function wireOf(n: Node): Buffer {
  const tag = Buffer.from([n.tag.charCodeAt(0)]);
  if (n.tag === 'A') return Buffer.concat([tag, withLength(n.items.map(wireOf))]);
  if (n.tag === 'F') return Buffer.concat([tag, tableBytes(n.entries)]);
  return Buffer.concat([tag, n.payload]);
}
function tableBytes(entries: [string, Node][]): Buffer {
  return withLength(entries.flatMap(([k, v]) => [shortstrBytes(k), wireOf(v)]));
}

/** Builds an object with own properties even for keys like `__proto__`. */
function objectOf(entries: [string, FieldValue][]): FieldTable {
  const out: FieldTable = {};
  for (const [k, v] of entries)
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  return out;
}
function typedOf(n: Node): FieldValue {
  if (n.tag === 'A') return new TypedValue('A', n.items.map(typedOf));
  if (n.tag === 'F') return new TypedValue('F', objectOf(n.entries.map(([k, v]) => [k, typedOf(v)])));
  return new TypedValue(n.tag, n.input);
}
function expectedOf(n: Node): FieldValue {
  if (n.tag === 'A') return n.items.map(expectedOf);
  if (n.tag === 'F') return objectOf(n.entries.map(([k, v]) => [k, expectedOf(v)]));
  return n.expected;
}
/** Re-tags a decoded value with the tags of the node it came from. */
function retag(n: Node, decoded: FieldValue): FieldValue {
  if (n.tag === 'A') {
    assert.ok(Array.isArray(decoded));
    return new TypedValue(
      'A',
      n.items.map((item, i) => retag(item, decoded[i])),
    );
  }
  if (n.tag === 'F') return new TypedValue('F', retagTable(n.entries, decoded as FieldTable));
  return new TypedValue(n.tag, decoded);
}
function retagTable(entries: [string, Node][], decoded: FieldTable): FieldTable {
  return objectOf(entries.map(([k, v]) => [k, retag(v, decoded[k])]));
}

// -------------------------------------------------------------------------------- arbitraries
function scalar<T extends FieldValue>(
  tag: ScalarTag,
  arb: fc.Arbitrary<T>,
  write: (v: T) => Buffer,
  expected: (v: T) => FieldValue = (v) => v,
): fc.Arbitrary<Node> {
  return arb.map((v) => ({ tag, input: v, expected: expected(v), payload: write(v) }));
}
const fixed = (size: number, fill: (b: Buffer) => void): Buffer => {
  const b = Buffer.alloc(size);
  fill(b);
  return b;
};
const int64Arb: fc.Arbitrary<bigint> = fc.oneof(
  fc.bigInt({ min: INT64_MIN, max: INT64_MAX }),
  fc.bigInt({ min: -(2n ** 40n), max: 2n ** 40n }),
  fc.constantFrom(INT64_MIN, INT64_MAX, SAFE_MIN, SAFE_MAX, SAFE_MIN - 1n, SAFE_MAX + 1n, 0n, -1n),
);
/** Whole seconds between 1970 and 9999, the range a timestamp round-trips exactly. */
const dateArb: fc.Arbitrary<Date> = fc.integer({ min: 0, max: 253402300799 }).map((s) => new Date(s * 1000));
/** Keys of up to 255 UTF-8 bytes; no array-index keys, which JS objects reorder (see below). */
const keyArb: fc.Arbitrary<string> = fc
  .oneof(
    fc.string({ unit: 'binary', maxLength: 63 }),
    fc.string({ unit: 'binary-ascii', maxLength: 255 }),
    fc.constantFrom('', '__proto__', 'constructor', 'x-match', '€'.repeat(85), 'k'.repeat(255)),
  )
  .filter((k) => !/^(0|[1-9][0-9]*)$/.test(k));

const scalarArbs: Record<ScalarTag, fc.Arbitrary<Node>> = {
  t: scalar('t', fc.boolean(), (v) => Buffer.from([v ? 1 : 0])),
  b: scalar('b', fc.integer({ min: -128, max: 127 }), (v) => fixed(1, (b) => b.writeInt8(v))),
  B: scalar('B', fc.integer({ min: 0, max: 255 }), (v) => Buffer.from([v])),
  s: scalar('s', fc.integer({ min: -32768, max: 32767 }), (v) => fixed(2, (b) => b.writeInt16BE(v))),
  u: scalar('u', fc.integer({ min: 0, max: 65535 }), (v) => fixed(2, (b) => b.writeUInt16BE(v))),
  I: scalar('I', fc.integer(), (v) => fixed(4, (b) => b.writeInt32BE(v))),
  i: scalar('i', fc.integer({ min: 0, max: 0xffffffff }), (v) => fixed(4, (b) => b.writeUInt32BE(v))),
  l: fc.oneof(
    scalar(
      'l',
      int64Arb,
      (v) => fixed(8, (b) => b.writeBigInt64BE(v)),
      (v) => (v >= SAFE_MIN && v <= SAFE_MAX ? Number(v) : v),
    ),
    scalar('l', fc.maxSafeInteger(), (v) => fixed(8, (b) => b.writeBigInt64BE(BigInt(v)))),
  ),
  // NaN and ±Infinity are left out: RabbitMQ cannot store them, so the writer refuses them.
  f: scalar(
    'f',
    fc.double().filter((v) => Number.isFinite(Math.fround(v))),
    (v) => fixed(4, (b) => b.writeFloatBE(v)),
    Math.fround,
  ),
  d: scalar('d', fc.double({ noNaN: true, noDefaultInfinity: true }), (v) => fixed(8, (b) => b.writeDoubleBE(v))),
  D: scalar(
    'D',
    fc
      .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: -0x80000000, max: 0x7fffffff }))
      .map(([scale, value]) => new Decimal(scale, value)),
    (v) =>
      fixed(5, (b) => {
        b.writeUInt8(v.scale);
        b.writeInt32BE(v.value, 1);
      }),
  ),
  S: fc.oneof(
    scalar('S', fc.string({ unit: 'binary', maxLength: 60 }), (v) => withLength([Buffer.from(v, 'utf8')])),
    // Any bytes, valid UTF-8 or not (another client may send them): decoded lossily, forwarded exactly.
    scalar(
      'S',
      fc.uint8Array({ maxLength: 30 }).map((u) => Buffer.from(u)),
      (v) => withLength([v]),
      (v) => v.toString('utf8'),
    ),
  ),
  x: scalar(
    'x',
    fc.uint8Array({ maxLength: 60 }).map((u) => Buffer.from(u)),
    (v) => withLength([v]),
  ),
  T: fc.oneof(
    scalar('T', dateArb, (v) => fixed(8, (b) => b.writeBigUInt64BE(BigInt(v.getTime() / 1000)))),
    // Any unsigned 64-bit seconds: beyond what a Date holds they decode to an exact AmqpTimestamp.
    fc
      .oneof(
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        fc.constantFrom(2n ** 60n, 2n ** 64n - 1n, 8_640_000_000_001n),
      )
      .map((seconds): Node => {
        const date = seconds <= 8_640_000_000_000n ? new Date(Number(seconds) * 1000) : new AmqpTimestamp(seconds);
        return { tag: 'T', input: date, expected: date, payload: fixed(8, (b) => b.writeBigUInt64BE(seconds)) };
      }),
  ),
  V: fc.constantFrom(null, 0, 'ignored').map((v) => ({ tag: 'V', input: v, expected: null, payload: Buffer.alloc(0) })),
};

const entriesArb = (value: fc.Arbitrary<Node>, maxLength: number): fc.Arbitrary<[string, Node][]> =>
  fc.uniqueArray(fc.tuple(keyArb, value), { maxLength, selector: ([k]) => k });

const { node: nodeArb } = fc.letrec<{ node: Node }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    ...Object.values(scalarArbs),
    fc.array(tie('node'), { maxLength: 5 }).map((items): Node => ({ tag: 'A', items })),
    entriesArb(tie('node'), 4).map((entries): Node => ({ tag: 'F', entries })),
  ),
}));
const tableArb = entriesArb(nodeArb, 8);

// ------------------------------------------------------------------------------------ helpers
function encodeTable(t: FieldTable | undefined): Buffer {
  const w = new Writer(16);
  w.table(t);
  return Buffer.from(w.buf.subarray(0, w.pos));
}
function decodeTable(bytes: Buffer): { table: FieldTable; consumed: number } {
  const r = new Reader(bytes, 0, bytes.length);
  const table = r.table();
  return { table, consumed: r.pos };
}
/** The tag byte of the value of a one-key table `{ k: v }`: length(4) + key length(1) + 'k'. */
const tagOfSingle = (v: FieldValue): string => String.fromCharCode(encodeTable({ k: v })[6]!);

const isSyntaxError = (err: unknown): boolean => err instanceof FrameError && err.replyCode === 502;

/** Decodes untrusted bytes: returns the table, 'rejected' for FrameError 502, and rethrows anything else. */
function decodeUntrusted(bytes: Buffer): FieldTable | 'rejected' {
  try {
    return new Reader(bytes, 0, bytes.length).table();
  } catch (err) {
    if (isSyntaxError(err)) return 'rejected';
    throw err;
  }
}

// ------------------------------------------------------------------------- typed round trips
test('every tag is generated', () => {
  const seen = new Set<string>();
  const walk = (n: Node): void => {
    seen.add(n.tag);
    if (n.tag === 'A') n.items.forEach(walk);
    if (n.tag === 'F') for (const [, v] of n.entries) walk(v);
  };
  for (const entries of fc.sample(tableArb, { seed: SEED, numRuns: 300 })) for (const [, v] of entries) walk(v);
  assert.deepEqual([...seen].sort(), [...ALL_TAGS].sort());
});

test('typed values encode to the reference bytes and decode to their natural values', () => {
  fc.assert(
    fc.property(tableArb, (entries) => {
      const bytes = encodeTable(objectOf(entries.map(([k, v]) => [k, typedOf(v)])));
      assert.deepEqual(bytes, tableBytes(entries), 'wire bytes differ from the reference encoding');
      const { table, consumed } = decodeTable(bytes);
      assert.deepStrictEqual(untyped(table), objectOf(entries.map(([k, v]) => [k, expectedOf(v)])));
      assertWireTypes(entries, table);
      assert.equal(consumed, bytes.length);
      assert.equal(Object.getPrototypeOf(table), Object.prototype, 'a key changed the prototype');
    }),
    runs(1000),
  );
});

/** Every decoded value reports, through `fieldTypeOf`, the tag it was sent with. */
function assertWireTypes(entries: [string, Node][], table: FieldTable): void {
  const check = (n: Node, container: FieldTable | FieldValue[], key: string | number): void => {
    assert.equal(fieldTypeOf(container, key), n.tag, `wire type of ${String(key)}`);
    const v = (container as Record<string, FieldValue>)[key];
    if (n.tag === 'A') for (const [i, item] of n.items.entries()) check(item, v as FieldValue[], i);
    if (n.tag === 'F') for (const [k, item] of n.entries) check(item, v as FieldTable, k);
  };
  for (const [k, n] of entries) check(n, table, k);
}

test('each tag decodes to its natural JS type', () => {
  const one = (tag: FieldTypeTag, v: FieldValue): FieldValue =>
    decodeTable(encodeTable({ k: new TypedValue(tag, v) })).table.k;
  assert.equal(one('f', 0.1), Math.fround(0.1));
  assert.notEqual(one('f', 0.1), 0.1);
  assert.equal(one('b', -128), -128);
  assert.equal(one('B', 255), 255);
  assert.equal(one('s', -32768), -32768);
  assert.equal(one('u', 65535), 65535);
  assert.equal(one('i', 0xffffffff), 0xffffffff);
  assert.equal(one('l', 2n ** 53n - 1n), Number.MAX_SAFE_INTEGER);
  assert.equal(one('l', 2n ** 53n), 2n ** 53n, 'beyond the safe range stays bigint');
  assert.equal(one('l', -(2n ** 63n)), -(2n ** 63n));
  assert.deepStrictEqual(one('D', new Decimal(2, 12345)), new Decimal(2, 12345));
  assert.ok(one('D', new Decimal(2, 12345)) instanceof Decimal);
  assert.deepStrictEqual(one('x', Buffer.from([0, 255])), Buffer.from([0, 255]));
  assert.deepStrictEqual(one('T', new Date('2024-02-29T12:34:56Z')), new Date('2024-02-29T12:34:56Z'));
  assert.equal(one('V', 'anything'), null);
  assert.equal(one('t', false), false);
  assert.deepStrictEqual(untyped(one('A', [new TypedValue('b', 1), 'two', [null]])), [1, 'two', [null]]);
  assert.deepStrictEqual(untyped(one('F', { a: { b: new TypedValue('u', 7) } })), { a: { b: 7 } });
  assert.equal(one('d', 3), 3, 'an integral double reads as a plain number');
  assert.deepStrictEqual(one('T', new AmqpTimestamp(2n ** 60n)), new AmqpTimestamp(2n ** 60n));
});

test('encode(decode(bytes)) reproduces the bytes when re-tagged from the original types', () => {
  // Plain decoding drops the tag (a 'B' 7 and an 'I' 7 both decode to 7), so the decoded values are
  // re-encoded with the tags of the generated tree. Keys exclude array indices ("0", "17"): JS
  // objects enumerate those first, so their order on the wire cannot survive a plain object.
  // Strings that are not valid UTF-8 cannot be re-tagged from their lossy decoded text: they are
  // covered by the next test, which needs no re-tagging.
  const anyNotUtf8 = (n: Node): boolean =>
    n.tag === 'A'
      ? n.items.some(anyNotUtf8)
      : n.tag === 'F'
        ? n.entries.some(([, v]) => anyNotUtf8(v))
        : n.tag === 'S' && Buffer.isBuffer(n.input);
  fc.assert(
    fc.property(
      tableArb.filter((entries) => !entries.some(([, v]) => anyNotUtf8(v))),
      (entries) => {
        const bytes = tableBytes(entries);
        const { table, consumed } = decodeTable(bytes);
        assert.equal(consumed, bytes.length);
        assert.deepEqual(encodeTable(retagTable(entries, table)), bytes);
      },
    ),
    runs(1000),
  );
});

test('NaN, ±Infinity and float32 overflow are refused, naming the field, plain or typed, at any depth', () => {
  // RabbitMQ 3.10 cannot store them: it crashes the channel and closes the whole connection (541).
  const bad: [string, FieldValue][] = [
    ['plain NaN', Number.NaN],
    ['plain Infinity', Number.POSITIVE_INFINITY],
    ['plain -Infinity', Number.NEGATIVE_INFINITY],
    ["'d' NaN", new TypedValue('d', Number.NaN)],
    ["'d' Infinity", new TypedValue('d', Number.POSITIVE_INFINITY)],
    ["'f' NaN", new TypedValue('f', Number.NaN)],
    ["'f' -Infinity", new TypedValue('f', Number.NEGATIVE_INFINITY)],
    ["'f' 1e39", new TypedValue('f', 1e39)],
    ["'f' -Number.MAX_VALUE", new TypedValue('f', -Number.MAX_VALUE)],
    ['in an array', [1, Number.NaN]],
    ['in a nested table', { inner: { deeper: Number.POSITIVE_INFINITY } }],
  ];
  for (const [label, value] of bad) {
    assert.throws(
      () => encodeTable({ 'the-field': value }),
      (err: unknown) =>
        err instanceof InvalidArgumentError &&
        /cannot store NaN or Infinity/.test(err.message) &&
        /'(the-field|deeper)'/.test(err.message),
      label,
    );
  }
  // The largest float32 and the smallest subnormals still go out as 'f'.
  for (const v of [3.4028234663852886e38, -3.4028234663852886e38, 1e-45, 0]) {
    assert.equal(decodeTable(encodeTable({ k: new TypedValue('f', v) })).table.k, Math.fround(v));
  }
});

test('decode→encode reproduces any valid table byte for byte, with no help', () => {
  // A shovel, retry republisher or dead-letter reprocessor publishes the headers it consumed: the
  // wire types JS loses (an integral 'd', a 'b', an 'f', a non-UTF-8 'S', a timestamp beyond Date)
  // travel with the decoded table, also through a spread copy.
  fc.assert(
    fc.property(tableArb, (entries) => {
      const bytes = tableBytes(entries);
      const { table } = decodeTable(bytes);
      assert.deepEqual(encodeTable(table), bytes, 'decoded table re-encoded');
      assert.deepEqual(encodeTable({ ...table }), bytes, 'spread copy re-encoded');
    }),
    runs(1000),
  );
});

test('recorded wire types stay out of JSON, for…in and Object.keys', () => {
  const { table } = decodeTable(encodeTable({ n: new TypedValue('d', 3), b: new TypedValue('b', 1) }));
  assert.equal(JSON.stringify(table), '{"n":3,"b":1}');
  assert.deepEqual(Object.keys(table), ['n', 'b']);
  const seen: string[] = [];
  for (const k in table) seen.push(k);
  assert.deepEqual(seen, ['n', 'b']);
  assert.equal(fieldTypeOf(table, 'n'), 'd');
  assert.equal(fieldTypeOf(table, 'missing'), undefined);
});

test('a changed value keeps its recorded type when it fits, else takes its natural type', () => {
  const { table } = decodeTable(encodeTable({ n: new TypedValue('b', 1), f: new TypedValue('f', 0.5) }));
  const tags = (t: FieldTable) => {
    const b = encodeTable(t);
    const back = decodeTable(b).table;
    return Object.keys(back).map((k) => fieldTypeOf(back, k));
  };
  assert.deepEqual(tags({ ...table, n: 2 }), ['b', 'f'], 'fits: same wire types');
  assert.deepEqual(tags({ ...table, n: 300, f: 0.1 }), ['I', 'd'], 'does not fit: natural types');
  assert.deepEqual(tags({ ...table, n: 'text' }), ['S', 'f']);
});

test('array-index keys keep their values though JS reorders them', () => {
  const entries: [string, Node][] = [
    ['b', { tag: 'B', input: 1, expected: 1, payload: Buffer.from([1]) }],
    ['10', { tag: 'B', input: 2, expected: 2, payload: Buffer.from([2]) }],
    ['2', { tag: 'V', input: null, expected: null, payload: Buffer.alloc(0) }],
  ];
  const { table } = decodeTable(tableBytes(entries));
  assert.deepStrictEqual(untyped(table), { b: 1, 10: 2, 2: null });
});

test('a __proto__ key is an ordinary key in both directions', () => {
  const t = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as FieldTable;
  const bytes = encodeTable(t);
  const { table } = decodeTable(bytes);
  assert.equal(Object.getPrototypeOf(table), Object.prototype);
  assert.deepEqual(Object.keys(table), ['__proto__', 'a']);
  assert.deepStrictEqual(Object.getOwnPropertyDescriptor(table, '__proto__')?.value, { polluted: true });
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

// -------------------------------------------------------------------- plain values pick a type
test('plain JS values choose the wire type RabbitMQ expects', () => {
  const cases: [FieldValue, string, FieldValue][] = [
    [0, 'I', 0],
    [-0, 'I', 0],
    [0x7fffffff, 'I', 0x7fffffff],
    [-0x80000000, 'I', -0x80000000],
    [0x80000000, 'l', 0x80000000],
    [-0x80000001, 'l', -0x80000001],
    [Number.MAX_SAFE_INTEGER, 'l', Number.MAX_SAFE_INTEGER],
    [Number.MIN_SAFE_INTEGER, 'l', Number.MIN_SAFE_INTEGER],
    [2 ** 60, 'd', 2 ** 60],
    [1.5, 'd', 1.5],
    ['', 'S', ''],
    ['héllo', 'S', 'héllo'],
    [true, 't', true],
    [false, 't', false],
    [Buffer.from('ab'), 'x', Buffer.from('ab')],
    // FieldValue does not admit Uint8Array, but the writer accepts one as 'x'
    [new Uint8Array([1, 2]) as unknown as FieldValue, 'x', Buffer.from([1, 2])],
    [new Date(86400000), 'T', new Date(86400000)],
    [[1, 'a'], 'A', [1, 'a']],
    [[undefined], 'A', [null]],
    [{ a: 1 }, 'F', { a: 1 }],
    [null, 'V', null],
    [5n, 'l', 5],
    [2n ** 62n, 'l', 2n ** 62n],
    [new Decimal(3, -7), 'D', new Decimal(3, -7)],
  ];
  for (const [value, tag, decoded] of cases) {
    assert.equal(tagOfSingle(value), tag, `tag of ${String(value)}`);
    assert.deepStrictEqual(decodeTable(encodeTable({ k: value })).table.k, decoded, `decoded ${String(value)}`);
  }
});

test('plain values: tag chosen by kind, for any generated value', () => {
  const plain: fc.Arbitrary<[FieldValue, string]> = fc.oneof(
    fc.integer().map((v): [FieldValue, string] => [v, 'I']),
    fc
      .maxSafeInteger()
      .filter((v) => v < -0x80000000 || v > 0x7fffffff)
      .map((v): [FieldValue, string] => [v, 'l']),
    fc
      .double({ noNaN: true, noDefaultInfinity: true })
      .filter((v) => !Number.isSafeInteger(v))
      .map((v): [FieldValue, string] => [v, 'd']),
    fc.bigInt({ min: INT64_MIN, max: INT64_MAX }).map((v): [FieldValue, string] => [v, 'l']),
    fc.string().map((v): [FieldValue, string] => [v, 'S']),
    fc.boolean().map((v): [FieldValue, string] => [v, 't']),
    fc.uint8Array().map((v): [FieldValue, string] => [Buffer.from(v), 'x']),
    dateArb.map((v): [FieldValue, string] => [v, 'T']),
    fc.array(fc.integer(), { maxLength: 3 }).map((v): [FieldValue, string] => [v, 'A']),
    fc
      .dictionary(fc.string({ maxLength: 5 }), fc.boolean(), { noNullPrototype: true })
      .map((v): [FieldValue, string] => [v, 'F']),
  );
  fc.assert(
    fc.property(plain, ([value, tag]) => {
      assert.equal(tagOfSingle(value), tag);
    }),
    runs(1000),
  );
});

test('undefined entries of a table are not sent; undefined table is empty', () => {
  assert.deepEqual(encodeTable({ a: undefined, b: 1 }), encodeTable({ b: 1 }));
  assert.deepEqual(encodeTable(undefined), Buffer.from([0, 0, 0, 0]));
  assert.deepEqual(encodeTable({}), Buffer.from([0, 0, 0, 0]));
});

// ------------------------------------------------------------------------------- malformed input
test('random bytes decode to a table or throw FrameError 502, nothing else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (raw, fixLength) => {
      const bytes = Buffer.from(raw);
      // Half the time make the declared length match, so the parser gets past the first check.
      if (fixLength && bytes.length >= 4) bytes.writeUInt32BE(bytes.length - 4, 0);
      decodeUntrusted(bytes);
    }),
    runs(3000),
  );
});

type Mutation =
  | { kind: 'set'; at: number; byte: number }
  | { kind: 'u32'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; n: number };
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({
    kind: fc.constant('u32' as const),
    at: fc.nat(),
    value: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 0xffffffff })),
  }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 6 }),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 6 }) }),
);
function mutate(bytes: Buffer, m: Mutation): Buffer {
  if (bytes.length === 0) return bytes;
  const at = m.at % bytes.length;
  switch (m.kind) {
    case 'set': {
      const out = Buffer.from(bytes);
      out[at] = m.byte;
      return out;
    }
    case 'u32': {
      const out = Buffer.from(bytes);
      if (at + 4 <= out.length) out.writeUInt32BE(m.value, at);
      return out;
    }
    case 'truncate':
      return bytes.subarray(0, at);
    case 'insert':
      return Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
    case 'delete':
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.n)]);
  }
}

test('mutated valid tables decode or throw FrameError 502, nothing else', () => {
  fc.assert(
    fc.property(
      tableArb,
      fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
      fc.boolean(),
      (entries, mutations, fixLength) => {
        let bytes = tableBytes(entries);
        for (const m of mutations) bytes = mutate(bytes, m);
        if (fixLength && bytes.length >= 4) bytes.writeUInt32BE(bytes.length - 4, 0);
        decodeUntrusted(bytes);
      },
    ),
    runs(3000),
  );
});

test('every strict prefix of a valid table is rejected with FrameError 502', () => {
  fc.assert(
    fc.property(tableArb, (entries) => {
      const bytes = tableBytes(entries);
      for (let len = 0; len < bytes.length; len++) {
        assert.throws(() => new Reader(bytes, 0, len).table(), isSyntaxError, `prefix of ${len} bytes accepted`);
      }
    }),
    runs(200),
  );
});

test('a table declared shorter than its contents is rejected even when more bytes follow', () => {
  fc.assert(
    fc.property(
      tableArb.filter((e) => e.length > 0),
      fc.nat(),
      (entries, cut) => {
        const bytes = tableBytes(entries);
        const declared = bytes.readUInt32BE(0);
        const shorter = cut % declared; // 0 ≤ shorter < declared
        const out = Buffer.from(bytes);
        out.writeUInt32BE(shorter, 0);
        // Every byte of the original stays readable after the declared end.
        const result = decodeUntrusted(out);
        if (result !== 'rejected') {
          // Only acceptable if the shorter table is itself a valid prefix of whole entries.
          const r = new Reader(out, 0, out.length);
          r.table();
          assert.equal(r.pos, 4 + shorter);
        }
      },
    ),
    runs(500),
  );
});

test('specific malformations are FrameError 502', () => {
  const expectRejected = (bytes: Buffer, what: string) =>
    assert.throws(() => new Reader(bytes, 0, bytes.length).table(), isSyntaxError, what);
  // unknown tag bytes
  for (let tag = 0; tag < 256; tag++) {
    if (TAG_BYTES.has(tag)) continue;
    expectRejected(Buffer.from([0, 0, 0, 3, 1, 0x6b, tag]), `tag 0x${tag.toString(16)}`);
  }
  // table length past the end of the buffer
  expectRejected(Buffer.from([0, 0, 0, 9, 1, 0x6b, 0x56]), 'table length past end');
  expectRejected(Buffer.from([0xff, 0xff, 0xff, 0xff]), 'huge table length');
  expectRejected(Buffer.from([0, 0, 0]), 'truncated length');
  // key longer than the table
  expectRejected(Buffer.from([0, 0, 0, 2, 5, 0x6b, 0x6b, 0x6b, 0x6b, 0x6b, 0x56]), 'key past table end');
  // key ends exactly at the table end: the value is missing
  expectRejected(Buffer.from([0, 0, 0, 2, 1, 0x6b, 0x56]), 'value missing');
  // an int32 value straddling the table end, with bytes after it in the buffer
  expectRejected(Buffer.from([0, 0, 0, 5, 1, 0x6b, 0x49, 0, 0, 0, 1]), 'value past table end');
  // nested table longer than its parent, still inside the buffer
  expectRejected(
    Buffer.from([0, 0, 0, 7, 1, 0x6b, 0x46, 0, 0, 0, 3, 1, 0x6a, 0x56, 0, 0, 0]),
    'nested table past parent',
  );
  // nested array longer than its parent, still inside the buffer
  expectRejected(Buffer.from([0, 0, 0, 7, 1, 0x6b, 0x41, 0, 0, 0, 2, 0x56, 0x56, 0, 0]), 'nested array past parent');
  // array element straddling the array end
  expectRejected(Buffer.from([0, 0, 0, 9, 1, 0x6b, 0x41, 0, 0, 0, 1, 0x62, 5]), 'element past array end');
  // longstr and bytes lengths past the end
  expectRejected(Buffer.from([0, 0, 0, 7, 1, 0x6b, 0x53, 0, 0, 0, 9]), 'longstr past end');
  expectRejected(Buffer.from([0, 0, 0, 7, 1, 0x6b, 0x78, 0xff, 0xff, 0xff, 0xff]), 'bytes past end');
});

/** A one-key table whose value is `depth` levels of nested arrays ('A') or tables ('F', key "k"). */
function nested(tag: 'A' | 'F', depth: number): Buffer {
  const keyed = tag === 'F';
  const size = 4 + 2 + depth * 5 + (keyed ? (depth - 1) * 2 : 0);
  const b = Buffer.alloc(size);
  b.writeUInt32BE(size - 4, 0);
  b[4] = 1;
  b[5] = 0x6b;
  let pos = 6;
  for (let i = 0; i < depth; i++) {
    b[pos] = tag.charCodeAt(0);
    b.writeUInt32BE(size - pos - 5, pos + 1);
    pos += 5;
    if (keyed && i < depth - 1) {
      b[pos] = 1;
      b[pos + 1] = 0x6b;
      pos += 2;
    }
  }
  assert.equal(pos, size);
  return b;
}

test('moderately nested input decodes', () => {
  const { table } = decodeTable(nested('A', 50));
  let v: FieldValue = table.k;
  for (let i = 1; i < 50; i++) {
    assert.ok(Array.isArray(v) && v.length === 1);
    v = v[0];
  }
  assert.deepStrictEqual(v, []);
  assert.equal(decodeUntrusted(nested('F', 50)) === 'rejected', false);
});

test('deeply nested input is rejected with FrameError, not a stack overflow', () => {
  // BUG (src/protocol/primitives.ts Reader): table/array/fieldValue recurse without a depth limit,
  // so ~5,000 levels of nested arrays (25 KB, well under the default frame-max of 128 KB) overflow
  // the stack and a RangeError escapes the decoder instead of a FrameError.
  for (const tag of ['A', 'F'] as const) {
    const depth = 20000;
    let outcome: unknown;
    try {
      new Reader(nested(tag, depth), 0, nested(tag, depth).length).table();
      outcome = 'decoded';
    } catch (err) {
      outcome = err;
    }
    assert.ok(
      outcome === 'decoded' || isSyntaxError(outcome),
      `nesting '${tag}' ${depth} deep: ${outcome instanceof Error ? `${outcome.name}: ${outcome.message}` : String(outcome)}`,
    );
  }
});

// --------------------------------------------------------------------------- refused user values
test('out-of-range typed integers are refused with InvalidArgumentError', () => {
  const ranges: [FieldTypeTag, number, number][] = [
    ['b', -128, 127],
    ['B', 0, 255],
    ['s', -32768, 32767],
    ['u', 0, 65535],
    ['I', -0x80000000, 0x7fffffff],
    ['i', 0, 0xffffffff],
  ];
  for (const [tag, min, max] of ranges) {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer({ min: -(2 ** 40), max: min - 1 }),
          fc.integer({ min: max + 1, max: 2 ** 40 }),
          fc.constantFrom(min - 1, max + 1, 0.5, min + 0.5, Number.NaN, Number.POSITIVE_INFINITY),
          fc.constantFrom<FieldValue>('1', null, true, BigInt(max) + 1n),
        ),
        (bad) => {
          assert.throws(
            () => encodeTable({ k: new TypedValue(tag, bad) }),
            InvalidArgumentError,
            `${tag} ${String(bad)}`,
          );
        },
      ),
      runs(100),
    );
    // the bounds themselves are fine
    assert.doesNotThrow(() => encodeTable({ lo: new TypedValue(tag, min), hi: new TypedValue(tag, max) }));
  }
  for (const bad of [2n ** 63n, -(2n ** 63n) - 1n, 2 ** 63, 1.5, 'x', Number.NaN] as FieldValue[]) {
    assert.throws(() => encodeTable({ k: new TypedValue('l', bad) }), InvalidArgumentError, `l ${String(bad)}`);
  }
});

test('values of the wrong kind for their tag are refused with InvalidArgumentError', () => {
  const bad: [FieldTypeTag, FieldValue][] = [
    ['f', 'x'],
    ['d', 1n],
    ['D', 1.5],
    ['D', new Decimal(256, 1)],
    ['D', new Decimal(-1, 1)],
    ['D', new Decimal(2, 2 ** 31)],
    ['S', 5],
    ['x', 5],
    ['A', 'not an array'],
    ['T', 0],
    ['T', new Date(-1000)],
    ['T', new Date(Number.NaN)],
    ['F', 'not a table'],
    ['F', [1, 2]],
    ['Z' as FieldTypeTag, 1],
  ];
  for (const [tag, v] of bad) {
    assert.throws(() => encodeTable({ k: new TypedValue(tag, v) }), InvalidArgumentError, `${tag} ${String(v)}`);
  }
  // deep inside arrays and tables too
  assert.throws(() => encodeTable({ a: [{ b: [new TypedValue('b', 300)] }] }), InvalidArgumentError);
  for (const v of [Symbol('s'), () => 1] as unknown as FieldValue[]) {
    assert.throws(() => encodeTable({ k: v }), InvalidArgumentError);
  }
  assert.throws(() => encodeTable({ k: new Date(-1) }), InvalidArgumentError, 'plain Date before 1970');
});

test('keys longer than 255 UTF-8 bytes are refused with InvalidArgumentError', () => {
  assert.doesNotThrow(() => encodeTable({ ['k'.repeat(255)]: 1, ['€'.repeat(85)]: 2 }));
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ unit: 'binary-ascii', minLength: 256, maxLength: 400 }),
        fc.string({ unit: 'binary', minLength: 128, maxLength: 200 }).filter((s) => Buffer.byteLength(s) > 255),
        fc.constantFrom('é'.repeat(128), '€'.repeat(86)),
      ),
      (key) => {
        assert.throws(() => encodeTable({ [key]: 1 }), InvalidArgumentError);
        assert.throws(() => encodeTable({ ok: { [key]: 1 } }), InvalidArgumentError, 'nested');
      },
    ),
    runs(100),
  );
});
