/**
 * The content-header codec: what `encodeContentHeader` writes `decodeContentHeader` reads back,
 * byte layout as the spec gives it (4.2.6.1), and the three ways a header can be bad: framing
 * (502/505, the connection closes) versus properties (the message alone carries `decodeError`).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FrameError } from '../../src/errors.js';
import { decodeContentHeader, encodeContentHeader } from '../../src/protocol/content-header.js';
import { Reader } from '../../src/protocol/reader.js';
import { Writer } from '../../src/protocol/writer.js';

function encode(bodySize: number, properties?: Parameters<typeof encodeContentHeader>[2], classId?: number): Buffer {
  const w = new Writer(64);
  encodeContentHeader(w, bodySize, properties, classId);
  return Buffer.from(w.buf.subarray(0, w.pos));
}
const decode = (bytes: Buffer) => decodeContentHeader(new Reader(bytes, 0, bytes.length));
const replyCode = (code: number) => (err: unknown) => err instanceof FrameError && err.replyCode === code;

test('encode then decode gives back the body size and properties', () => {
  const properties = { contentType: 'text/plain', deliveryMode: 2, headers: { a: 1, b: 'x' }, messageId: 'm-1' };
  const h = decode(encode(123_456, properties));
  assert.equal(h.bodySize, 123_456);
  assert.deepEqual(h.properties, properties);
  assert.equal(h.decodeError, undefined);
});

test('layout: class 60, weight 0, 64-bit body size, then the property flags (0 for none)', () => {
  assert.deepEqual([...encode(5)], [0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0]);
  assert.deepEqual([...encode(5, {})], [0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0]);
});

test('a class other than basic is an unexpected frame (505)', () => {
  assert.throws(() => decode(encode(1, {}, 50)), replyCode(505));
});

test('a header cut before its body size is a syntax error (502)', () => {
  const bytes = encode(1);
  for (let n = 0; n < 12; n++) assert.throws(() => decode(bytes.subarray(0, n)), replyCode(502), `cut at ${n}`);
});

test('properties that do not decode come back as decodeError, with the body size intact', () => {
  const bytes = encode(3, { headers: { k: 'v' } });
  // The headers table's first value tag (after flags, table length, key length and key) becomes unknown.
  const tagAt = 12 + 2 + 4 + 1 + 1;
  assert.equal(bytes[tagAt], 0x53);
  bytes[tagAt] = 0x01;
  const h = decode(bytes);
  assert.equal(h.bodySize, 3);
  assert.deepEqual(h.properties, {});
  assert.ok(h.decodeError instanceof FrameError && h.decodeError.replyCode === 502, String(h.decodeError));
});
