/** fast-check arbitraries shared by the codec property tests. */
import fc from 'fast-check';
import type { FieldTable, FieldValue } from '../../src/protocol/field-values.js';

/** Whole seconds between 1970 and 9999, the range a timestamp round-trips exactly. */
export const wholeSecondDate: fc.Arbitrary<Date> = fc
  .integer({ min: 0, max: 253402300799 })
  .map((s) => new Date(s * 1000));

/**
 * Field tables of plain values that decode back to themselves (no -0: it is sent as integer 0;
 * 64-bit integers only beyond the safe range, where they stay bigint; no NaN or ±Infinity, which
 * RabbitMQ cannot store and the writer refuses), keyed by `keyArb`.
 */
export function roundTripTable(keyArb: fc.Arbitrary<string>): fc.Arbitrary<FieldTable> {
  return fc.letrec<{ value: FieldValue; table: FieldTable }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.boolean(),
      fc.integer(),
      fc.maxSafeInteger(),
      fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => (Object.is(d, -0) ? 0 : d)),
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).filter((b) => b < -(2n ** 53n) || b > 2n ** 53n),
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u)),
      wholeSecondDate,
      fc.constant(null),
      fc.array(tie('value'), { maxLength: 4 }),
      tie('table'),
    ),
    table: fc
      .uniqueArray(fc.tuple(keyArb, tie('value')), { maxLength: 5, selector: ([k]) => k })
      .map((entries) => Object.fromEntries(entries) as FieldTable),
  })).table;
}

/**
 * A deep copy of a decoded value without the wire types a decoded table or array records (a
 * symbol-keyed property that `assert.deepStrictEqual` compares): for comparing values alone.
 */
export function untyped(v: FieldValue): FieldValue {
  if (Array.isArray(v)) return v.map(untyped);
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const out: FieldTable = {};
    for (const k of Object.keys(v)) {
      const value = untyped((v as FieldTable)[k]);
      Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return v;
}
