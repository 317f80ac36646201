/**
 * 64-bit values: a timestamp is data and decodes faithfully whatever its size (an `AmqpTimestamp`
 * beyond what a Date holds, re-encoded to the same 8 bytes); a delivery tag or a body size is a
 * count whose inexact value would ack another message or misread the framing, and stays refused (502).
 */
import { decodeContentHeader } from '../../src/protocol/content-header.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ContentAssembler } from '../../src/channel/inbound.js';
import { FrameError, InvalidArgumentError } from '../../src/errors.js';
import { decodeMethod } from '../../src/protocol/generated/methods.js';
import { decodeBasicProperties, encodeBasicProperties } from '../../src/protocol/generated/properties.js';
import { AmqpTimestamp } from '../../src/protocol/field-values.js';
import { Reader } from '../../src/protocol/reader.js';
import { Writer } from '../../src/protocol/writer.js';

/** Property bytes holding only a timestamp of `seconds`. */
function timestampProperties(seconds: bigint): Buffer {
  const b = Buffer.alloc(10);
  b.writeUInt16BE(0x0040, 0);
  b.writeBigUInt64BE(seconds, 2);
  return b;
}
const decode = (bytes: Buffer) => decodeBasicProperties(new Reader(bytes, 0, bytes.length));
function encode(p: Parameters<typeof encodeBasicProperties>[1]): Buffer {
  const w = new Writer(64);
  encodeBasicProperties(w, p);
  return Buffer.from(w.buf.subarray(0, w.pos));
}

test('every 64-bit timestamp decodes and re-encodes to the same bytes', () => {
  const LAST_DATE_SECONDS = 8_640_000_000_000n;
  for (const seconds of [
    0n,
    1_700_000_000n,
    LAST_DATE_SECONDS,
    LAST_DATE_SECONDS + 1n,
    2n ** 53n,
    10n ** 13n,
    2n ** 60n,
    2n ** 64n - 1n,
  ]) {
    const bytes = timestampProperties(seconds);
    const { timestamp } = decode(bytes);
    assert.ok(timestamp instanceof Date, `${seconds}: a Date`);
    if (seconds <= LAST_DATE_SECONDS) {
      assert.ok(!(timestamp instanceof AmqpTimestamp), `${seconds}: a plain Date`);
      assert.equal(timestamp.getTime(), Number(seconds) * 1000);
    } else {
      assert.ok(timestamp instanceof AmqpTimestamp, `${seconds}: an AmqpTimestamp`);
      assert.equal(timestamp.seconds, seconds);
      assert.equal(timestamp.getTime(), 8.64e15, 'as a Date: the latest one');
      assert.ok(timestamp > new Date(), 'compares as far future');
      assert.equal(typeof timestamp.toISOString(), 'string', 'prints without throwing');
    }
    assert.deepEqual(encode({ timestamp }), bytes, `${seconds}: same bytes again`);
  }
});

test('an AmqpTimestamp changed with setTime is written as the Date it now holds', () => {
  const ts = new AmqpTimestamp(2n ** 60n);
  ts.setTime(86_400_000);
  assert.deepEqual(encode({ timestamp: ts }), timestampProperties(86_400n));
  assert.throws(() => new AmqpTimestamp(-1n), InvalidArgumentError);
  assert.throws(() => new AmqpTimestamp(2n ** 64n), InvalidArgumentError);
});

test('a delivery tag above 2^53 − 1 is still refused with FrameError 502', () => {
  // basic.deliver: class 60 method 60, consumer-tag, delivery-tag (u64), redelivered, exchange, routing-key
  const payload = Buffer.from([0, 60, 0, 60, 1, 0x63, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.throws(
    () => decodeMethod(new Reader(payload, 0, payload.length)),
    (err: unknown) => {
      return err instanceof FrameError && err.replyCode === 502 && /above 2\^53/.test(err.message);
    },
  );
  payload[7] = 0x1f; // 2^53 − 2^48 and below: exact, accepted
  assert.equal(decodeMethod(new Reader(payload, 0, payload.length))?.name, 'basic.deliver');
});

test('a content header announcing a body above 2^53 − 1 bytes is still refused with FrameError 502', () => {
  const assembler = new ContentAssembler(1);
  const deliver = decodeMethod(
    new Reader(Buffer.from([0, 60, 0, 60, 1, 0x63, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]), 0, 17),
  );
  assert.ok(deliver);
  assembler.start(deliver);
  const header = Buffer.alloc(14);
  header.writeUInt16BE(60, 0);
  header.writeBigUInt64BE(2n ** 60n, 4);
  assert.throws(
    () => assembler.header(decodeContentHeader(new Reader(header, 0, header.length))),
    (err: unknown) => {
      return err instanceof FrameError && err.replyCode === 502;
    },
  );
});
