/**
 * Message properties and header tables through the real broker: every basic property and every
 * field-table type RabbitMQ carries, read back identical by warren (through a consumer, basic.get, a
 * headers exchange that makes the broker decode and re-encode the header, and basic.return), plus
 * properties the broker acts on (priority, expiration).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import {
  type BasicProperties,
  Decimal,
  type FieldTable,
  fieldTypeOf,
  MessageReturned,
  TypedValue,
} from '../../src/index.js';
import { untyped } from '../support/arbitraries.js';
import { consumeN, drain, rejection, brokerFixture } from '../support/broker.js';

/** One connection and a confirm-mode channel `fx.ch` for the whole file, to set up and inspect. */
const fx = brokerFixture();
const { res } = fx;

const when = new Date(Math.floor(Date.now() / 1000) * 1000);
const earlier = new Date(1_000_000_000_000);

/** Headers with every field type, and what they read back as. */
const sentHeaders: FieldTable = {
  string: 'ünïcødé ✓ text',
  empty: '',
  yes: true,
  no: false,
  int: 42,
  negative: -7,
  int32Max: 2147483647,
  int32Min: -2147483648,
  int64: 2 ** 40,
  negativeInt64: -(2 ** 50),
  bigPositive: 2n ** 62n + 1n,
  bigNegative: -(2n ** 63n),
  smallBigint: 5n,
  double: Math.PI,
  negativeDouble: -0.5,
  tb: new TypedValue('b', -128),
  tB: new TypedValue('B', 255),
  ts: new TypedValue('s', -32768),
  tu: new TypedValue('u', 65535),
  tI: new TypedValue('I', -5),
  ti: new TypedValue('i', 4294967295),
  tl: new TypedValue('l', 2n ** 63n - 1n),
  tlSmall: new TypedValue('l', 3),
  tf: new TypedValue('f', 1.5),
  tfInexact: new TypedValue('f', 0.1),
  td: new TypedValue('d', 2.5),
  tt: new TypedValue('t', true),
  tS: new TypedValue('S', 'typed'),
  tx: new TypedValue('x', Buffer.from([0, 1, 2, 255])),
  tT: new TypedValue('T', earlier),
  tV: new TypedValue('V', null),
  tA: new TypedValue('A', [1, 'a']),
  tF: new TypedValue('F', { a: 1 }),
  tD: new TypedValue('D', new Decimal(3, -12345)),
  decimal: new Decimal(2, 12345),
  date: when,
  buffer: Buffer.from([0, 0xff, 0x10, 0x80]),
  emptyBuffer: Buffer.alloc(0),
  nothing: null,
  skipped: undefined,
  nested: { level: 1, inner: { level: 2, list: [1, 'two', { three: 3 }], deeper: { x: null } } },
  emptyTable: {},
  array: [1, 'a', true, null, 2.5, [1, [2]], { k: 'v' }, Buffer.from('b'), when, new Decimal(1, 5), 2n ** 60n],
  emptyArray: [],
  'key with spaces & ünïcødé': 'ok',
};

const expectedHeaders: FieldTable = {
  string: 'ünïcødé ✓ text',
  empty: '',
  yes: true,
  no: false,
  int: 42,
  negative: -7,
  int32Max: 2147483647,
  int32Min: -2147483648,
  int64: 2 ** 40,
  negativeInt64: -(2 ** 50),
  bigPositive: 2n ** 62n + 1n,
  bigNegative: -(2n ** 63n),
  smallBigint: 5,
  double: Math.PI,
  negativeDouble: -0.5,
  tb: -128,
  tB: 255,
  ts: -32768,
  tu: 65535,
  tI: -5,
  ti: 4294967295,
  tl: 2n ** 63n - 1n,
  tlSmall: 3,
  tf: 1.5,
  tfInexact: Math.fround(0.1),
  td: 2.5,
  tt: true,
  tS: 'typed',
  tx: Buffer.from([0, 1, 2, 255]),
  tT: earlier,
  tV: null,
  tA: [1, 'a'],
  tF: { a: 1 },
  tD: new Decimal(3, -12345),
  decimal: new Decimal(2, 12345),
  date: when,
  buffer: Buffer.from([0, 0xff, 0x10, 0x80]),
  emptyBuffer: Buffer.alloc(0),
  nothing: null,
  nested: { level: 1, inner: { level: 2, list: [1, 'two', { three: 3 }], deeper: { x: null } } },
  emptyTable: {},
  array: [1, 'a', true, null, 2.5, [1, [2]], { k: 'v' }, Buffer.from('b'), when, new Decimal(1, 5), 2n ** 60n],
  emptyArray: [],
  'key with spaces & ünïcødé': 'ok',
};

const sentProperties: BasicProperties = {
  contentType: 'application/json',
  contentEncoding: 'gzip',
  headers: sentHeaders,
  deliveryMode: 2,
  priority: 7,
  correlationId: 'corr-42',
  replyTo: 'reply-queue',
  expiration: '600000',
  messageId: 'msg-1',
  timestamp: when,
  type: 'order.created',
  userId: 'guest',
  appId: 'warren-tests',
  clusterId: 'cluster-1',
};

const expectedProperties: BasicProperties = { ...sentProperties, headers: expectedHeaders };

/**
 * The properties read back equal what was sent, and each header sent as a TypedValue reports the
 * wire type it was sent with (kept so that forwarding the headers changes nothing).
 */
function assertReadBack(actual: BasicProperties | undefined): void {
  assert.ok(actual);
  const headers = actual.headers!;
  assert.deepEqual({ ...actual, headers: untyped(headers) }, expectedProperties);
  for (const [k, v] of Object.entries(sentHeaders)) {
    if (v instanceof TypedValue) assert.equal(fieldTypeOf(headers, k), v.type, `wire type of header ${k}`);
  }
}

describe('every property and header type reads back identical', () => {
  test('through the default exchange, basic.get', async () => {
    const q = res.queue();
    await fx.ch.queueDeclare(q);
    await fx.ch.basicPublish('', q, Buffer.from('props'), sentProperties);
    const m = await fx.ch.basicGet(q, { noAck: true });
    assert.ok(m);
    assertReadBack(m.properties);
    assert.equal(m.body.toString(), 'props');
  });

  test('through a headers exchange (the broker decodes and routes on the header), consumer', async () => {
    const x = res.exchange();
    const q = res.queue();
    await fx.ch.exchangeDeclare(x, 'headers');
    await fx.ch.queueDeclare(q);
    await fx.ch.queueBind(q, x, '', { 'x-match': 'all', string: 'ünïcødé ✓ text', tB: 255 });
    await fx.ch.basicPublish(x, '', Buffer.from('props'), sentProperties);
    const [m] = await consumeN(fx.ch, q, 1);
    assertReadBack(m?.properties);
  });

  test('in a basic.return', async () => {
    const c = await fx.conn.openChannel();
    try {
      await c.confirmSelect();
      const err = await rejection(
        c.basicPublish('', res.queue('nowhere'), Buffer.from('r'), sentProperties, { mandatory: true }),
      );
      assert.ok(err instanceof MessageReturned, String(err));
      assertReadBack(err.returned.properties);
    } finally {
      await c.close();
    }
  });

  test('no properties, empty properties and undefined properties all read back as {}', async () => {
    const q = res.queue();
    await fx.ch.queueDeclare(q);
    await fx.ch.basicPublish('', q, Buffer.from('a'));
    await fx.ch.basicPublish('', q, Buffer.from('b'), {});
    await fx.ch.basicPublish('', q, Buffer.from('c'), { contentType: undefined, headers: undefined });
    await fx.ch.basicPublish('', q, Buffer.from('d'), { headers: {} });
    const got = await drain(fx.ch, q);
    assert.deepEqual(
      got.map((m) => m.properties),
      [{}, {}, {}, { headers: {} }],
    );
  });

  test('timestamps are sent with one-second precision', async () => {
    const q = res.queue();
    await fx.ch.queueDeclare(q);
    await fx.ch.basicPublish('', q, Buffer.from('t'), { timestamp: new Date(1_700_000_000_999) });
    const m = await fx.ch.basicGet(q, { noAck: true });
    assert.deepEqual(m?.properties.timestamp, new Date(1_700_000_000_000));
  });

  test('empty strings in every short-string property survive', async () => {
    const q = res.queue();
    await fx.ch.queueDeclare(q);
    const props: BasicProperties = { contentType: '', correlationId: '', messageId: '', type: '', appId: '' };
    await fx.ch.basicPublish('', q, Buffer.from('e'), props);
    const m = await fx.ch.basicGet(q, { noAck: true });
    assert.deepEqual(m?.properties, props);
  });

  test('255-byte property and header key (the short-string maximum) survive', async () => {
    const q = res.queue();
    await fx.ch.queueDeclare(q);
    const long = 'k'.repeat(255);
    await fx.ch.basicPublish('', q, Buffer.from('l'), { messageId: long, headers: { [long]: long } });
    const m = await fx.ch.basicGet(q, { noAck: true });
    assert.equal(m?.properties.messageId, long);
    assert.deepEqual(m?.properties.headers, { [long]: long });
  });
});

describe('properties the broker acts on', () => {
  test('priority: a priority queue delivers the higher priority first', async () => {
    const q = res.queue();
    await fx.ch.queueDeclare(q, { arguments: { 'x-max-priority': 10 } });
    await fx.ch.basicPublish('', q, Buffer.from('low'), { priority: 1 });
    await fx.ch.basicPublish('', q, Buffer.from('high'), { priority: 9 });
    await fx.ch.basicPublish('', q, Buffer.from('none'));
    const got = await drain(fx.ch, q);
    assert.deepEqual(
      got.map((m) => [m.body.toString(), m.properties.priority]),
      [
        ['high', 9],
        ['low', 1],
        ['none', undefined],
      ],
    );
  });

  test('expiration: an expired message is never delivered, a live one is', async () => {
    const q = res.queue();
    await fx.ch.queueDeclare(q);
    await fx.ch.basicPublish('', q, Buffer.from('short'), { expiration: '1' });
    await fx.ch.basicPublish('', q, Buffer.from('long'), { expiration: '600000' });
    await sleep(30);
    const got = await drain(fx.ch, q);
    assert.deepEqual(
      got.map((m) => m.body.toString()),
      ['long'],
    );
  });
});
