/**
 * Short strings decode to what the bytes say, whatever was decoded before them: the Reader hands
 * back a recently decoded string when the bytes match it, so runs mixing repeated values, values of
 * the same length, non-ASCII text and bytes that are not UTF-8 must all decode as `Buffer.toString`
 * does.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Reader } from '../../src/protocol/reader.js';
import { runs } from '../support/spec.js';

const pool = fc.oneof(
  fc.string({ maxLength: 70 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.uint8Array({ maxLength: 70 }).map((b) => Buffer.from(b).toString('latin1')),
  fc.constantFrom('amq.ctag-AAAAAAAAAAAAAAAAAAAAAA', 'amq.ctag-AAAAAAAAAAAAAAAAAAAAAB', 'jobs', 'jobz', 'é', '\u00e9'),
);

/** A value as short-string bytes: UTF-8 text, or raw bytes when `raw` (any octets the wire allows). */
const shortstr = fc.record({ text: pool, raw: fc.boolean() }).map(({ text, raw }) => {
  const bytes = (raw ? Buffer.from(text, 'latin1') : Buffer.from(text, 'utf8')).subarray(0, 255);
  return Buffer.concat([Buffer.from([bytes.length]), bytes]);
});

test('short strings decode as Buffer.toString does, in any order and repetition', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          shortstr,
          shortstr.map((b) => Buffer.concat([b, b])),
        ),
        { maxLength: 40 },
      ),
      (parts) => {
        const buf = Buffer.concat(parts);
        const r = new Reader(buf, 0, buf.length);
        let at = 0;
        while (at < buf.length) {
          const len = buf[at]!;
          const expected = buf.toString('utf8', at + 1, at + 1 + len);
          assert.equal(r.shortstr(), expected);
          at += 1 + len;
        }
        assert.equal(r.pos, buf.length);
      },
    ),
    runs(2000),
  );
});
