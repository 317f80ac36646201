/**
 * Interoperability with amqplib through the real broker: messages published by warren and read by
 * amqplib, and published by amqplib and read by warren, carry identical bodies, properties and headers.
 *
 * amqplib represents some field types its own way, so each direction compares against what the other
 * library can represent:
 * - 64-bit integers ('l'): amqplib decodes them with Number(), so values beyond 2^53 arrive rounded;
 *   it encodes them exactly from a bigint only through its `{ '!': 'int64', value }` form (a plain
 *   bigint header throws "Unknown type to encode: bigint").
 * - decimals ('D'): amqplib reads and writes the 32-bit value as unsigned, so a negative warren Decimal
 *   arrives as its two's complement and amqplib cannot send one at all (RangeError).
 * - timestamps ('T'): amqplib reads `{ '!': 'timestamp', value: seconds }`; it has no Date mapping, and a
 *   Date given as a header value is encoded as an empty table.
 * - the timestamp property is a number of seconds in amqplib, a Date in warren.
 * - amqplib always sends a headers table (empty when none is given) and never sends cluster-id.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type * as Amqplib from 'amqplib';
import { connect as amqplibConnect } from 'amqplib';
import { type BasicProperties, Decimal, type FieldTable, fieldTypeOf, TypedValue } from '../../src/index.js';
import { untyped } from '../support/arbitraries.js';
import { AMQP_URL, brokerFixture } from '../support/broker.js';

let model: Amqplib.ChannelModel;
let ach: Amqplib.Channel;

// Registered before the fixture, so that amqplib's connection closes first.
before(async () => {
  model = await amqplibConnect(AMQP_URL);
  ach = await model.createChannel();
});

after(async () => {
  await model.close();
});

const fx = brokerFixture();
const { res } = fx;

/** The header values both libraries represent alike: bytes, void, nested tables and arrays (fresh each call). */
const containers = () => ({
  buffer: Buffer.from([0, 0xff, 0x10]),
  nothing: null,
  nested: { a: { b: [1, 'two', { three: 3 }] } },
  array: [1, 'a', true, null, 2.5, [1, [2]], { k: 'v' }, Buffer.from('b')],
  emptyArray: [],
  emptyTable: {},
});

const seconds = Math.floor(Date.now() / 1000);
const when = new Date(seconds * 1000);

async function newQueue(): Promise<string> {
  const q = res.queue();
  await fx.ch.queueDeclare(q);
  return q;
}

/** amqplib's properties without the keys it sets to undefined. */
function defined(props: Amqplib.MessageProperties): Record<string, unknown> {
  return Object.fromEntries(Object.entries(props).filter(([, v]) => v !== undefined));
}

/** Publishes with amqplib and waits until the broker has it (amqplib's publish is fire-and-forget). */
async function amqplibPublish(queue: string, body: Buffer, options: Amqplib.Options.Publish): Promise<void> {
  const confirm = await model.createConfirmChannel();
  try {
    confirm.sendToQueue(queue, body, options);
    await confirm.waitForConfirms();
  } finally {
    await confirm.close();
  }
}

async function amqplibGet(queue: string): Promise<Amqplib.GetMessage> {
  const m = await ach.get(queue, { noAck: true });
  assert.ok(m !== false, 'amqplib got no message');
  return m;
}

describe('warren → amqplib', () => {
  test('every property and header type, as amqplib represents it', async () => {
    const q = await newQueue();
    const headers: FieldTable = {
      string: 'ünïcødé ✓',
      empty: '',
      yes: true,
      no: false,
      int: 42,
      negative: -70000,
      int64: 2 ** 52,
      beyondSafe: 2n ** 62n + 1n,
      smallBigint: 5n,
      double: Math.PI,
      tb: new TypedValue('b', -128),
      tB: new TypedValue('B', 255),
      ts: new TypedValue('s', -32768),
      tu: new TypedValue('u', 65535),
      tI: new TypedValue('I', -5),
      ti: new TypedValue('i', 4294967295),
      tf: new TypedValue('f', 1.5),
      decimal: new Decimal(2, 12345),
      negativeDecimal: new Decimal(3, -12345),
      date: when,
      ...containers(),
    };
    const props: BasicProperties = {
      contentType: 'application/json',
      contentEncoding: 'gzip',
      headers,
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
    const body = randomBytes(1000);
    await fx.ch.basicPublish('', q, body, props);
    const m = await amqplibGet(q);
    assert.ok(m.content.equals(body));
    assert.equal(m.fields.routingKey, q);
    assert.equal(m.fields.redelivered, false);
    assert.deepEqual(defined(m.properties), {
      contentType: 'application/json',
      contentEncoding: 'gzip',
      headers: {
        string: 'ünïcødé ✓',
        empty: '',
        yes: true,
        no: false,
        int: 42,
        negative: -70000,
        int64: 2 ** 52,
        beyondSafe: Number(2n ** 62n + 1n), // amqplib rounds: 4611686018427387904
        smallBigint: 5,
        double: Math.PI,
        tb: -128,
        tB: 255,
        ts: -32768,
        tu: 65535,
        tI: -5,
        ti: 4294967295,
        tf: 1.5,
        decimal: { '!': 'decimal', value: { places: 2, digits: 12345 } },
        negativeDecimal: { '!': 'decimal', value: { places: 3, digits: 2 ** 32 - 12345 } }, // amqplib: unsigned
        date: { '!': 'timestamp', value: seconds },
        ...containers(),
      },
      deliveryMode: 2,
      priority: 7,
      correlationId: 'corr-42',
      replyTo: 'reply-queue',
      expiration: '600000',
      messageId: 'msg-1',
      timestamp: seconds,
      type: 'order.created',
      userId: 'guest',
      appId: 'warren-tests',
      clusterId: 'cluster-1',
    });
  });

  test('no properties: amqplib sees none', async () => {
    const q = await newQueue();
    await fx.ch.basicPublish('', q, Buffer.alloc(0));
    const m = await amqplibGet(q);
    assert.equal(m.content.length, 0);
    assert.deepEqual(defined(m.properties), {});
  });

  test('bodies of 0 B, 1 B, one and two frames, and 1 MiB arrive identical', async () => {
    const q = await newQueue();
    const bodies = [0, 1, 131064, 131065, 1024 * 1024].map((n) => randomBytes(n));
    for (const b of bodies) await fx.ch.basicPublish('', q, b);
    for (const b of bodies) {
      const m = await amqplibGet(q);
      assert.ok(m.content.equals(b), `body of ${b.length} bytes differs`);
    }
  });
});

describe('amqplib → warren', () => {
  test('every property and header type amqplib can send, as warren represents it', async () => {
    const q = await newQueue();
    const body = randomBytes(1000);
    await amqplibPublish(q, body, {
      contentType: 'text/plain',
      contentEncoding: 'identity',
      headers: {
        string: 'ünïcødé ✓',
        empty: '',
        yes: true,
        no: false,
        byte: 5, // amqplib picks 'b'
        short: 300, // 's'
        int: 70000, // 'I'
        negative: -70000,
        long: 2 ** 52, // 'l' (amqplib uses it from 2^50)
        double: 2.5, // 'd'
        float: { '!': 'float', value: 1.5 },
        unsignedbyte: { '!': 'unsignedbyte', value: 255 },
        unsignedshort: { '!': 'unsignedshort', value: 65535 },
        unsignedint: { '!': 'unsignedint', value: 4294967295 },
        int64: { '!': 'int64', value: 2n ** 62n + 1n },
        int64Min: { '!': 'int64', value: -(2n ** 63n) },
        timestamp: { '!': 'timestamp', value: seconds },
        decimal: { '!': 'decimal', value: { places: 2, digits: 12345 } },
        ...containers(),
      },
      deliveryMode: 2,
      priority: 3,
      correlationId: 'corr-7',
      replyTo: 'reply-queue',
      expiration: 600000, // amqplib turns it into the string '600000'
      messageId: 'msg-7',
      timestamp: seconds,
      type: 'order.shipped',
      userId: 'guest',
      appId: 'amqplib-tests',
    });
    const m = await fx.ch.basicGet(q, { noAck: true });
    assert.ok(m);
    assert.ok(m.body.equals(body));
    // The wire types JS loses are kept for forwarding (see fieldTypeOf); the values read naturally.
    const headers = m.properties.headers!;
    const wireTypes = Object.fromEntries(Object.keys(headers).map((k) => [k, fieldTypeOf(headers, k)]));
    assert.deepEqual(
      { byte: wireTypes.byte, short: wireTypes.short, float: wireTypes.float, ub: wireTypes.unsignedbyte },
      { byte: 'b', short: 's', float: 'f', ub: 'B' },
    );
    assert.deepEqual(
      { us: wireTypes.unsignedshort, ui: wireTypes.unsignedint, int: wireTypes.int, long: wireTypes.long },
      { us: 'u', ui: 'i', int: 'I', long: 'l' },
    );
    assert.deepEqual(
      { ...m.properties, headers: untyped(headers) },
      {
        contentType: 'text/plain',
        contentEncoding: 'identity',
        headers: {
          string: 'ünïcødé ✓',
          empty: '',
          yes: true,
          no: false,
          byte: 5,
          short: 300,
          int: 70000,
          negative: -70000,
          long: 2 ** 52,
          double: 2.5,
          float: 1.5,
          unsignedbyte: 255,
          unsignedshort: 65535,
          unsignedint: 4294967295,
          int64: 2n ** 62n + 1n, // exact: warren keeps 64-bit values beyond 2^53 as bigint
          int64Min: -(2n ** 63n),
          timestamp: when,
          decimal: new Decimal(2, 12345),
          ...containers(),
        },
        deliveryMode: 2,
        priority: 3,
        correlationId: 'corr-7',
        replyTo: 'reply-queue',
        expiration: '600000',
        messageId: 'msg-7',
        timestamp: when,
        type: 'order.shipped',
        userId: 'guest',
        appId: 'amqplib-tests',
      },
    );
  });

  test('no options: amqplib still sends an empty headers table', async () => {
    const q = await newQueue();
    await amqplibPublish(q, Buffer.from('x'), {});
    const m = await fx.ch.basicGet(q, { noAck: true });
    assert.deepEqual(m?.properties, { headers: {} });
  });

  test('bodies of 0 B, 1 B, one and two frames, and 1 MiB arrive identical', async () => {
    const q = await newQueue();
    const bodies = [0, 1, 131064, 131065, 1024 * 1024].map((n) => randomBytes(n));
    const confirm = await model.createConfirmChannel();
    for (const b of bodies) confirm.sendToQueue(q, b);
    await confirm.waitForConfirms();
    await confirm.close();
    for (const b of bodies) {
      const m = await fx.ch.basicGet(q, { noAck: true });
      assert.ok(m?.body.equals(b), `body of ${b.length} bytes differs`);
    }
  });

  test('what amqplib cannot express: a Date header arrives as an empty table; bigint and negative decimals throw', async () => {
    const q = await newQueue();
    await amqplibPublish(q, Buffer.from('d'), { headers: { when: new Date() } });
    const m = await fx.ch.basicGet(q, { noAck: true });
    assert.deepEqual(untyped(m?.properties.headers), { when: {} });
    const probe = await model.createChannel();
    try {
      assert.throws(() => probe.sendToQueue(q, Buffer.from('b'), { headers: { big: 1n } }), TypeError);
      assert.throws(
        () =>
          probe.sendToQueue(q, Buffer.from('n'), {
            headers: { d: { '!': 'decimal', value: { places: 1, digits: -5 } } },
          }),
        RangeError,
      );
    } finally {
      await probe.close();
    }
  });
});
