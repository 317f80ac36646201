/** The content assembler on its own: method, header, bodies in that order, or a 505. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ContentAssembler } from '../../src/channel/inbound.js';
import { FrameError } from '../../src/errors.js';
import type { ContentHeader } from '../../src/protocol/content-header.js';
import { type AMQPMethod, METHOD_IDS } from '../../src/protocol/generated/methods.js';

const DELIVER: AMQPMethod = {
  id: METHOD_IDS['basic.deliver'],
  name: 'basic.deliver',
  args: { consumerTag: 'c', deliveryTag: 1, redelivered: false, exchange: '', routingKey: 'q' },
} as AMQPMethod;

function header(bodySize: number, properties = {}): ContentHeader {
  return { bodySize, properties, decodeError: undefined };
}

const is505 = (err: unknown) => err instanceof FrameError && err.replyCode === 505;

test('an empty body completes on the header', () => {
  const a = new ContentAssembler(1);
  a.start(DELIVER);
  const done = a.header(header(0, { messageId: 'm' }));
  assert.ok(done);
  assert.equal(done.method, DELIVER);
  assert.equal(done.body.length, 0);
  assert.deepEqual(done.properties, { messageId: 'm' });
  assert.equal(a.busy, false);
});

test('a body in one frame is handed on as that very buffer (no copy)', () => {
  const a = new ContentAssembler(1);
  a.start(DELIVER);
  assert.equal(a.header(header(5)), undefined);
  assert.equal(a.busy, true);
  const payload = Buffer.from('hello');
  const done = a.body(payload);
  assert.equal(done?.body, payload);
});

test('a body in several frames is joined in order once complete', () => {
  const a = new ContentAssembler(1);
  a.start(DELIVER);
  a.header(header(11));
  assert.equal(a.body(Buffer.from('hello')), undefined);
  assert.equal(a.body(Buffer.from(' ')), undefined);
  const done = a.body(Buffer.from('world'));
  assert.equal(done?.body.toString(), 'hello world');
  assert.equal(a.busy, false);
});

test('out-of-order frames are 505s: header without method, body without header, body too long', () => {
  const a = new ContentAssembler(7);
  assert.throws(() => a.header(header(1)), is505);
  assert.throws(() => a.body(Buffer.from('x')), is505);
  a.start(DELIVER);
  assert.throws(() => a.body(Buffer.from('x')), is505);
  a.header(header(2));
  assert.throws(() => a.header(header(2)), is505, 'a second header');
  assert.throws(
    () => a.body(Buffer.from('xyz')),
    (e: unknown) => is505(e) && /channel 7/.test((e as Error).message),
  );
});

test('a decode error of the properties travels with the otherwise intact content', () => {
  const a = new ContentAssembler(1);
  a.start(DELIVER);
  const decodeError = new FrameError('bad table', 502);
  a.header({ ...header(2), decodeError });
  const done = a.body(Buffer.from('ok'));
  assert.equal(done?.decodeError, decodeError);
  assert.equal(done?.body.toString(), 'ok');
});

test('reset drops a half-assembled message: the next one starts clean', () => {
  const a = new ContentAssembler(1);
  a.start(DELIVER);
  a.header(header(4));
  a.body(Buffer.from('ab'));
  a.reset();
  assert.equal(a.busy, false);
  a.start(DELIVER);
  a.header(header(2));
  assert.equal(a.body(Buffer.from('cd'))?.body.toString(), 'cd');
});
