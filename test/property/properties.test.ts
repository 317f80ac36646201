/**
 * Content header properties (basic class): any subset of the 14 properties round-trips, the flag
 * word and field order match the spec, and bad input is refused with typed errors.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FrameError, InvalidArgumentError } from '../../src/errors.js';
import {
  type BasicProperties,
  decodeBasicProperties,
  encodeBasicProperties,
  PROPERTY_NAMES,
} from '../../src/protocol/generated/properties.js';
import type { FieldTable } from '../../src/protocol/field-values.js';
import { Reader } from '../../src/protocol/reader.js';
import { Writer } from '../../src/protocol/writer.js';
import { roundTripTable, wholeSecondDate } from '../support/arbitraries.js';
import { camel, loadSpec, runs } from '../support/spec.js';

const basicSpec = loadSpec().classes.find((c) => c.name === 'basic')!;
const WIRE_TYPE = new Map((basicSpec.properties ?? []).map((p) => [camel(p.name), p.type ?? p.domain ?? '']));

// ----------------------------------------------------------------------------------- arbitraries
const shortstrArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 63 }),
  fc.string({ unit: 'binary-ascii', maxLength: 255 }),
  fc.constantFrom('', 'application/json', '€'.repeat(85), 'y'.repeat(255)),
);
const dateArb = wholeSecondDate;
const headersArb = roundTripTable(shortstrArb);

const octetArb = fc.integer({ min: 0, max: 255 });

const propertiesArb: fc.Arbitrary<BasicProperties> = fc.record(
  {
    contentType: shortstrArb,
    contentEncoding: shortstrArb,
    headers: headersArb,
    deliveryMode: octetArb,
    priority: octetArb,
    correlationId: shortstrArb,
    replyTo: shortstrArb,
    expiration: shortstrArb,
    messageId: shortstrArb,
    timestamp: dateArb,
    type: shortstrArb,
    userId: shortstrArb,
    appId: shortstrArb,
    clusterId: shortstrArb,
  },
  { requiredKeys: [], noNullPrototype: true },
);

// ------------------------------------------------------------------------------------- helpers
function encode(p: BasicProperties): Buffer {
  const w = new Writer(16);
  encodeBasicProperties(w, p);
  return Buffer.from(w.buf.subarray(0, w.pos));
}

function decode(bytes: Buffer, start = 0): { props: BasicProperties; consumed: number } {
  const r = new Reader(bytes, start, bytes.length);
  const props = decodeBasicProperties(r);
  return { props, consumed: r.pos - start };
}

/** The spec's layout: a flag word (bit 15 = first property), then present fields in order. */
function referenceEncode(p: BasicProperties): Buffer {
  let flags = 0;
  const parts: Buffer[] = [];
  PROPERTY_NAMES.forEach((name, i) => {
    const v = p[name];
    if (v === undefined) return;
    flags |= 1 << (15 - i);
    switch (WIRE_TYPE.get(name)) {
      case 'shortstr': {
        const s = Buffer.from(v as string);
        parts.push(Buffer.from([s.length]), s);
        break;
      }
      case 'octet':
        parts.push(Buffer.from([v as number]));
        break;
      case 'timestamp': {
        const b = Buffer.alloc(8);
        b.writeBigUInt64BE(BigInt(Math.floor((v as Date).getTime() / 1000)));
        parts.push(b);
        break;
      }
      case 'table': {
        const w = new Writer(16);
        w.table(v as FieldTable);
        parts.push(Buffer.from(w.buf.subarray(0, w.pos)));
        break;
      }
      default:
        throw new Error(`no reference encoding for property ${name}`);
    }
  });
  const head = Buffer.alloc(2);
  head.writeUInt16BE(flags);
  return Buffer.concat([head, ...parts]);
}

const isCodeError = (code: number) => (err: unknown) => err instanceof FrameError && err.replyCode === code;

// ---------------------------------------------------------------------------------------- tests
test('PROPERTY_NAMES lists the 14 basic properties of the spec, in wire order', () => {
  assert.equal(PROPERTY_NAMES.length, 14);
  assert.deepEqual([...PROPERTY_NAMES], [...WIRE_TYPE.keys()]);
});

test('any subset of the properties round-trips, byte-identical to the spec layout', () => {
  fc.assert(
    fc.property(propertiesArb, (p) => {
      const bytes = encode(p);
      assert.deepEqual(bytes, referenceEncode(p));
      const { props, consumed } = decode(bytes);
      assert.deepStrictEqual(props, p);
      assert.equal(consumed, bytes.length, 'decoder did not consume exactly the properties');
    }),
    runs(1000),
  );
});

test('the flag word has one bit per present property and never the continuation bit', () => {
  fc.assert(
    fc.property(propertiesArb, (p) => {
      const flags = encode(p).readUInt16BE(0);
      const expected = PROPERTY_NAMES.reduce((f, name, i) => (p[name] !== undefined ? f | (1 << (15 - i)) : f), 0);
      assert.equal(flags, expected);
      assert.equal(flags & 0x0003, 0);
    }),
    runs(300),
  );
});

test('properties decode from the middle of a buffer (after a content header prefix)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 20 }), propertiesArb, fc.uint8Array({ maxLength: 8 }), (pre, p, post) => {
      const bytes = encode(p);
      const framed = Buffer.concat([pre, bytes, post]);
      const r = new Reader(framed, pre.length, pre.length + bytes.length);
      assert.deepStrictEqual(decodeBasicProperties(r), p);
      assert.equal(r.pos, pre.length + bytes.length);
    }),
    runs(200),
  );
});

test('properties explicitly set to undefined are absent', () => {
  const p: BasicProperties = { contentType: undefined, priority: 3, headers: undefined, timestamp: undefined };
  const bytes = encode(p);
  assert.deepEqual(bytes, Buffer.from([0x08, 0x00, 3]));
  assert.deepStrictEqual(decode(bytes).props, { priority: 3 });
  assert.deepEqual(encode({}), Buffer.from([0, 0]));
  assert.deepStrictEqual(decode(Buffer.from([0, 0])).props, {});
});

test('timestamps are sent at whole-second precision (milliseconds are dropped)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 253402300799999 }), (ms) => {
      const { props } = decode(encode({ timestamp: new Date(ms) }));
      assert.deepStrictEqual(props.timestamp, new Date(Math.floor(ms / 1000) * 1000));
    }),
    runs(300),
  );
});

test('every strict prefix of encoded properties is rejected with FrameError 502', () => {
  fc.assert(
    fc.property(propertiesArb, (p) => {
      const bytes = encode(p);
      for (let len = 0; len < bytes.length; len++) {
        assert.throws(() => decodeBasicProperties(new Reader(bytes, 0, len)), isCodeError(502), `prefix ${len}`);
      }
    }),
    runs(100),
  );
});

test('invalid property values are refused with InvalidArgumentError', () => {
  const refuse = (p: BasicProperties, why: string) =>
    assert.throws(() => encode(p), InvalidArgumentError, `${why} was accepted`);
  for (const name of PROPERTY_NAMES.filter((n) => WIRE_TYPE.get(n) === 'shortstr')) {
    refuse(Object.fromEntries([[name, 'x'.repeat(256)]]) as BasicProperties, `${name} of 256 bytes`);
    refuse(Object.fromEntries([[name, 'é'.repeat(128)]]) as BasicProperties, `${name} of 128 two-byte characters`);
  }
  refuse({ timestamp: new Date(-1000) }, 'a timestamp before 1970');
  refuse({ timestamp: new Date(Number.NaN) }, 'an invalid Date');
  refuse({ headers: { ['k'.repeat(256)]: 1 } }, 'a header key of 256 bytes');
});

test('out-of-range octet properties are refused, not truncated (deliveryMode 258 must not become 2)', () => {
  // BUG (src/protocol/primitives.ts Writer.u8): `this.buf[this.pos++] = v` stores v & 0xff, so
  // { deliveryMode: 258 } goes out as 2 (persistent) and { priority: -1 } as 255 without any error.
  for (const p of [{ deliveryMode: 258 }, { deliveryMode: 1.5 }, { priority: -1 }, { priority: 256 }]) {
    assert.throws(() => encode(p), InvalidArgumentError, `${JSON.stringify(p)} was accepted`);
  }
});
