import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FrameDecoder } from '../../src/protocol/frame-decoder.js';
import { FrameEncoder, LARGE_BODY } from '../../src/protocol/frame-encoder.js';
import { decodeMethod } from '../../src/protocol/generated/methods.js';
import { decodeBasicProperties } from '../../src/protocol/generated/properties.js';
import { Reader } from '../../src/protocol/reader.js';

interface Frame {
  type: number;
  channel: number;
  payload: Buffer;
}

function decodeAll(chunks: Buffer[], frameMax = 131072): Frame[] {
  const frames: Frame[] = [];
  const d = new FrameDecoder(frameMax, (type, channel, buf, start, end) =>
    frames.push({ type, channel, payload: Buffer.from(buf.subarray(start, end)) }),
  );
  for (const c of chunks) d.push(c);
  return frames;
}

test('publish is encoded as method, header and body frames split at frame-max - 8', () => {
  const enc = new FrameEncoder(4096);
  const body = Buffer.alloc(4096 * 2 + 5, 7);
  enc.publish(3, 'ex', 'rk', true, { contentType: 'text/plain', deliveryMode: 2 }, body);
  const frames = decodeAll(enc.take());
  assert.deepEqual(
    frames.map((f) => [f.type, f.channel, f.payload.length]),
    [
      [1, 3, 4 + 2 + 3 + 3 + 1],
      [2, 3, 14 + 1 + 10 + 1],
      [3, 3, 4088],
      [3, 3, 4088],
      [3, 3, 4096 * 2 + 5 - 2 * 4088],
    ],
  );
  const m = decodeMethod(new Reader(frames[0]!.payload, 0, frames[0]!.payload.length));
  assert.equal(m?.name, 'basic.publish');
  assert.deepEqual(m?.args, { ticket: 0, exchange: 'ex', routingKey: 'rk', mandatory: true, immediate: false });
  const h = frames[1]!.payload;
  assert.equal(h.readUInt16BE(0), 60);
  assert.equal(h.readUInt32BE(8), body.length);
  assert.deepEqual(decodeBasicProperties(new Reader(h, 12, h.length)), { contentType: 'text/plain', deliveryMode: 2 });
  assert.deepEqual(Buffer.concat(frames.slice(2).map((f) => f.payload)), body);
});

test('a large body is passed through as views of the caller buffer', () => {
  const enc = new FrameEncoder(131072);
  const body = Buffer.alloc(LARGE_BODY * 3, 1);
  enc.publish(1, '', 'q', false, undefined, body);
  const chunks = enc.take();
  assert.ok(
    chunks.some((c) => c.buffer === body.buffer),
    'body is not copied',
  );
  const frames = decodeAll(chunks);
  assert.deepEqual(Buffer.concat(frames.slice(2).map((f) => f.payload)), body);
});

test('an invalid publish throws and leaves nothing half-written', () => {
  const enc = new FrameEncoder(131072);
  enc.publish(1, '', 'a', false, undefined, Buffer.from('first'));
  assert.throws(() => enc.publish(1, 'x'.repeat(300), 'a', false, undefined, Buffer.from('bad')), /255 bytes/);
  assert.throws(() => enc.publish(1, '', 'a', false, { messageId: 'y'.repeat(256) }, Buffer.from('bad')), /255/);
  enc.publish(1, '', 'b', false, undefined, Buffer.from('second'));
  const frames = decodeAll(enc.take());
  assert.deepEqual(
    frames.filter((f) => f.type === 3).map((f) => f.payload.toString()),
    ['first', 'second'],
  );
});

test('many frames across arena growth stay intact', () => {
  const enc = new FrameEncoder(131072);
  const n = 20000;
  for (let i = 0; i < n; i++) enc.publish(1, '', 'q', false, { messageId: String(i) }, Buffer.from(`m${i}`));
  const frames = decodeAll(enc.take());
  const bodies = frames.filter((f) => f.type === 3).map((f) => f.payload.toString());
  assert.equal(bodies.length, n);
  assert.equal(bodies[n - 1], `m${n - 1}`);
});

test('alternating destinations, channels and mandatory flags each get their own method frame', () => {
  const enc = new FrameEncoder(131072);
  const plan = [
    { channel: 1, exchange: '', routingKey: 'a', mandatory: false },
    { channel: 1, exchange: '', routingKey: 'a', mandatory: false },
    { channel: 2, exchange: '', routingKey: 'a', mandatory: false },
    { channel: 2, exchange: 'x', routingKey: 'a', mandatory: false },
    { channel: 2, exchange: 'x', routingKey: 'b', mandatory: false },
    { channel: 2, exchange: 'x', routingKey: 'b', mandatory: true },
    { channel: 1, exchange: '', routingKey: 'a', mandatory: false },
  ];
  for (const p of plan) enc.publish(p.channel, p.exchange, p.routingKey, p.mandatory, undefined, Buffer.from('b'));
  const methods = decodeAll(enc.take())
    .filter((f) => f.type === 1)
    .map((f) => {
      const m = decodeMethod(new Reader(f.payload, 0, f.payload.length));
      const args = m?.args as { exchange: string; routingKey: string; mandatory: boolean };
      return { channel: f.channel, exchange: args.exchange, routingKey: args.routingKey, mandatory: args.mandatory };
    });
  assert.deepEqual(methods, plan);
});

test('header tables and property flags stay right when the arena moves in the middle of a message', () => {
  // Taking now and then (as every flush does) leaves the arena's base away from 0, so when it runs out
  // the pending bytes move to the start of a new buffer; with ~1 KiB of headers per message the moves
  // fall inside property tables (the bug: lengths and flags written at the old offsets).
  const enc = new FrameEncoder(131072);
  const n = 2000;
  const chunks: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const headers = { seq: i, pad: 'p'.repeat(700 + (i % 97)), nested: { list: [i, String(i)] } };
    enc.publish(1, 'ex', 'rk', false, { messageId: `m${i}`, headers, deliveryMode: 2 }, Buffer.from(`b${i}`));
    if (i % 7 === 0) chunks.push(...enc.take());
  }
  chunks.push(...enc.take());
  const frames = decodeAll(chunks);
  const headersFrames = frames.filter((f) => f.type === 2);
  assert.equal(headersFrames.length, n);
  headersFrames.forEach((f, i) => {
    const props = decodeBasicProperties(new Reader(f.payload, 12, f.payload.length));
    assert.equal(props.messageId, `m${i}`);
    assert.equal(props.deliveryMode, 2);
    assert.deepEqual(props.headers, { seq: i, pad: 'p'.repeat(700 + (i % 97)), nested: { list: [i, String(i)] } });
  });
});
