/**
 * Bad input from the user, against the real broker: every call that takes a value the protocol cannot
 * carry (a body that is not a Buffer, a short string over 255 bytes, a property of the wrong type or
 * range, an integer out of range, a table that contains itself) throws or rejects with a clear
 * InvalidArgumentError before a single byte is written — proved with the connection's own frame trace
 * and its encoder — and the connection and channel stay usable. Channels and connections used after
 * close refuse with ClosedError, also without writing.
 */
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import {
  type BasicProperties,
  type Channel,
  ChannelClosedByServer,
  ClosedError,
  type Connection,
  connect,
  Decimal,
  InvalidArgumentError,
  TypedValue,
} from '../../src/index.js';
import { AMQP_URL, drain, rejection, Resources } from '../support/broker.js';
import { within } from '../support/wait.js';

const res = new Resources();
let conn: Connection;
/** Lines of the frame trace; `warren > ...` are frames written. */
const trace: string[] = [];
let ch: Channel;
let queue: string;
let closeEvents = 0;

before(async () => {
  conn = await connect(AMQP_URL, { name: 'warren-bad-input', debug: (line) => trace.push(line) });
  conn.on('close', () => closeEvents++);
  ch = await conn.openChannel();
  await ch.confirmSelect();
  queue = res.queue('bad-input');
  await ch.queueDeclare(queue);
});

after(async () => {
  await conn.close();
  await res.cleanup();
});

const written = () => trace.filter((l) => l.startsWith('warren >')).length;

/** What a refused call must look like: this error class, and a message that says what was wrong. */
interface Refusal {
  error: typeof InvalidArgumentError | typeof ClosedError;
  message: RegExp;
}

/**
 * Calls `fn`, which must throw or reject as `refusal` says, and checks that nothing reached the
 * encoder or the socket, and that the connection is still open.
 */
async function refused(what: string, fn: () => unknown, refusal: Refusal): Promise<void> {
  const framesBefore = written();
  const pendingBefore = conn.transport.encoder.pending;
  let error: unknown;
  try {
    const result = fn();
    if (result instanceof Promise) error = await rejection(result);
    else assert.fail(`${what}: returned instead of throwing`);
  } catch (err) {
    error ??= err;
  }
  assert.ok(error instanceof refusal.error, `${what}: expected ${refusal.error.name}, got ${String(error)}`);
  assert.match(error.message, refusal.message, `${what}: unclear message`);
  assert.equal(conn.transport.encoder.pending, pendingBefore, `${what}: bytes were left in the encoder`);
  await tick();
  await tick();
  assert.equal(written(), framesBefore, `${what}: frames were written`);
  assert.equal(conn.isOpen, true, `${what}: the connection closed`);
}

const invalid = (message: RegExp): Refusal => ({ error: InvalidArgumentError, message });
const body = Buffer.from('x');

describe('invalid values are refused before anything is written; the connection stays usable', () => {
  test('message bodies that are not Buffers', async () => {
    const bodies: unknown[] = ['a string', 42, null, undefined, { data: [1] }, [1, 2], new Uint8Array([1]), true];
    for (const b of bodies) {
      await refused(
        `body ${String(b)}`,
        () => ch.basicPublish('', queue, b as Buffer),
        invalid(/body must be a Buffer/),
      );
    }
    assert.equal(ch.unconfirmedCount, 0);
  });

  test('short strings over 255 bytes, in names, keys, tags and properties; 255 bytes are fine', async () => {
    const long = 's'.repeat(256);
    const wide = 'é'.repeat(128); // 256 bytes in UTF-8
    const tooLong = invalid(/256 bytes long; AMQP short strings hold at most 255 bytes/);
    await refused('routing key', () => ch.basicPublish('', long, body), tooLong);
    await refused('multi-byte routing key', () => ch.basicPublish('', wide, body), tooLong);
    await refused('exchange', () => ch.basicPublish(long, queue, body), tooLong);
    await refused('queue.declare', () => ch.queueDeclare(long), tooLong);
    await refused('exchange.declare', () => ch.exchangeDeclare(long, 'direct'), tooLong);
    await refused('exchange type', () => ch.exchangeDeclare('x', long), tooLong);
    await refused('queue.bind', () => ch.queueBind(queue, 'amq.direct', long), tooLong);
    await refused('consumer tag', () => ch.basicConsume(queue, { consumerTag: long }, () => {}), tooLong);
    await refused('basic.get', () => ch.basicGet(long), tooLong);
    for (const prop of ['contentType', 'correlationId', 'replyTo', 'messageId', 'type', 'appId', 'expiration']) {
      await refused(`property ${prop}`, () => ch.basicPublish('', queue, body, { [prop]: long }), tooLong);
    }
    await refused('header key', () => ch.basicPublish('', queue, body, { headers: { [long]: 1 } }), tooLong);
    await refused('argument key', () => ch.queueDeclare('', { exclusive: true, arguments: { [long]: 1 } }), tooLong);
    // The boundary itself is accepted.
    const max = 'k'.repeat(255);
    await ch.basicPublish('', queue, body, { messageId: max, headers: { [max]: max } });
  });

  test('property values of the wrong type or out of range', async () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['deliveryMode 256', { deliveryMode: 256 }, /deliveryMode must be a whole number from 0 to 255/],
      ['deliveryMode -1', { deliveryMode: -1 }, /deliveryMode must be a whole number/],
      ['deliveryMode 1.5', { deliveryMode: 1.5 }, /deliveryMode must be a whole number/],
      ['deliveryMode "2"', { deliveryMode: '2' }, /deliveryMode must be a whole number/],
      ['priority 300', { priority: 300 }, /priority must be a whole number from 0 to 255/],
      ['priority NaN', { priority: Number.NaN }, /priority must be a whole number/],
      ['contentType number', { contentType: 5 }, /contentType must be a string, got number/],
      ['expiration number', { expiration: 60000 }, /expiration must be a string, got number/],
      ['messageId object', { messageId: { id: 1 } }, /messageId must be a string, got object/],
      ['timestamp number', { timestamp: Date.now() }, /timestamp must be a Date, got number/],
      ['timestamp invalid Date', { timestamp: new Date(Number.NaN) }, /timestamp must be a valid Date/],
      ['timestamp before 1970', { timestamp: new Date(-1000) }, /timestamp must be a valid Date after 1970/],
      ['headers array', { headers: [1, 2] }, /field table must be a plain object/],
      ['headers string', { headers: 'a=1' }, /field table must be a plain object/],
      ['header function', { headers: { f: () => 1 } }, /value of type function/],
      ['header symbol', { headers: { s: Symbol('s') } }, /value of type symbol/],
      ['header TypedValue b 1000', { headers: { b: new TypedValue('b', 1000) } }, /type 'b' must be an integer/],
      ['header TypedValue l 2^63', { headers: { l: new TypedValue('l', 2n ** 63n) } }, /outside the signed 64-bit/],
      ['header bigint 2^64', { headers: { l: 2n ** 64n } }, /outside the signed 64-bit/],
      ['header Decimal scale 300', { headers: { d: new Decimal(300, 1) } }, /D scale/],
      ['header unknown tag', { headers: { q: new TypedValue('Q' as 'b', 1) } }, /unknown type tag 'Q'/],
    ];
    for (const [what, properties, message] of cases) {
      await refused(what, () => ch.basicPublish('', queue, body, properties), invalid(message));
    }
    await refused(
      'properties not an object',
      () => ch.basicPublish('', queue, body, 'text/plain' as never),
      invalid(/properties must be an object/),
    );
  });

  test('values RabbitMQ cannot store (NaN, ±Infinity, float32 overflow) are refused, naming the field', async () => {
    // RabbitMQ 3.10 crashes the channel on them and closes the whole connection with 541.
    const cannotStore = (field: string) => invalid(new RegExp(`field '${field}' .*cannot store NaN or Infinity`));
    const cases: [string, BasicProperties, string][] = [
      ['header NaN', { headers: { rate: Number.NaN } }, 'rate'],
      ['header Infinity', { headers: { rate: Number.POSITIVE_INFINITY } }, 'rate'],
      ['header -Infinity', { headers: { rate: Number.NEGATIVE_INFINITY } }, 'rate'],
      ["TypedValue 'd' NaN", { headers: { r: new TypedValue('d', Number.NaN) } }, 'r'],
      ["TypedValue 'f' Infinity", { headers: { r: new TypedValue('f', Number.POSITIVE_INFINITY) } }, 'r'],
      ["TypedValue 'f' NaN", { headers: { r: new TypedValue('f', Number.NaN) } }, 'r'],
      ["TypedValue 'f' 1e300 (overflows float32)", { headers: { r: new TypedValue('f', 1e300) } }, 'r'],
      ['NaN in an array', { headers: { list: [1, Number.NaN] } }, 'list'],
      ['Infinity in a nested table', { headers: { outer: { inner: Number.POSITIVE_INFINITY } } }, 'inner'],
    ];
    for (const [what, properties, field] of cases) {
      await refused(what, () => ch.basicPublish('', queue, body, properties), cannotStore(field));
    }
    await refused(
      'queue argument NaN',
      () => ch.queueDeclare('', { exclusive: true, arguments: { 'x-weird': Number.NaN } }),
      cannotStore('x-weird'),
    );
    // Finite values at the edges still go through (to no queue: the later count stays as it is).
    await ch.basicPublish('', res.queue('edge-floats-unrouted'), body, {
      headers: { max: Number.MAX_VALUE, f: new TypedValue('f', 3.4028234663852886e38), tiny: 5e-324 },
    });
  });

  test('a field table that contains itself', async () => {
    const headers: Record<string, unknown> = { a: 1 };
    headers.self = headers;
    const list: unknown[] = [1];
    list.push(list);
    const nested = invalid(/nested deeper than 64 levels/);
    await refused(
      'headers.self = headers',
      () => ch.basicPublish('', queue, body, { headers: headers as never }),
      nested,
    );
    await refused(
      'an array that contains itself',
      () => ch.basicPublish('', queue, body, { headers: { list } as never }),
      nested,
    );
    await refused(
      'queue arguments that contain themselves',
      () => ch.queueDeclare('', { exclusive: true, arguments: headers as never }),
      nested,
    );
    // The writer's depth count is back to zero: deep but finite nesting still works.
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 30; i++) deep = { next: deep };
    await ch.basicPublish('', queue, body, { headers: deep as never });
  });

  test('integers out of range and of the wrong type', async () => {
    await refused(
      'basicQos 70000',
      () => ch.basicQos(70000),
      invalid(/prefetchCount must be a whole number from 0 to 65535/),
    );
    await refused('basicQos -1', () => ch.basicQos(-1), invalid(/prefetchCount/));
    await refused('basicQos 1.5', () => ch.basicQos(1.5), invalid(/prefetchCount/));
    await refused('basicQos "10"', () => ch.basicQos('10' as never), invalid(/prefetchCount/));
    await refused('prefetchSize -1', () => ch.basicQos(1, { prefetchSize: -1 }), invalid(/prefetch-size/));
    await refused('prefetchSize 2^32', () => ch.basicQos(1, { prefetchSize: 2 ** 32 }), invalid(/prefetch-size/));
    for (const tag of [-1, 1.5, Number.NaN, 2 ** 53, '1']) {
      await refused(`basicAck(${String(tag)})`, () => ch.basicAck(tag as number), invalid(/delivery-tag/));
      await refused(`basicNack(${String(tag)})`, () => ch.basicNack(tag as number), invalid(/delivery-tag/));
      await refused(`basicReject(${String(tag)})`, () => ch.basicReject(tag as number), invalid(/delivery-tag/));
    }
  });

  test('names of the wrong type', async () => {
    const notString = invalid(/must be a string, got/);
    await refused('routing key number', () => ch.basicPublish('', 42 as never, body), notString);
    await refused('exchange object', () => ch.basicPublish({} as never, queue, body), notString);
    await refused('queue name number', () => ch.queueDeclare(7 as never), notString);
    await refused('basic.get queue number', () => ch.basicGet(12 as never), notString);
    await refused('queue.bind exchange number', () => ch.queueBind(queue, 1 as never), notString);
    await refused('update-secret number', () => conn.updateSecret(5 as never), invalid(/must be a string or Buffer/));
    await refused('consume handler', () => ch.basicConsume(queue, {}, 'handler' as never), invalid(/handler function/));
  });

  test('after all of that: same connection, same channel, confirms still line up', async () => {
    assert.equal(closeEvents, 0);
    assert.equal(ch.isOpen, true);
    await within(ch.basicPublish('', queue, Buffer.from('still fine'), { messageId: 'last' }), 5000, 'confirm');
    const got = await drain(ch, queue);
    // Only the publishes that were accepted arrived, and nothing half-written ever reached the broker
    // (it would have closed the connection with a frame error).
    assert.deepEqual(
      got.map((m) => m.body.toString()),
      ['x', 'x', 'still fine'],
    );
    assert.equal(got.at(-1)?.properties.messageId, 'last');
  });
});

describe('use after close is refused with ClosedError, without writing', () => {
  test('a channel closed by the client', async () => {
    const c = await conn.openChannel();
    await c.close();
    const closed = { error: ClosedError, message: /channel \d+ is closed/ };
    await refused('publish', () => c.basicPublish('', queue, body), closed);
    await refused('queueDeclare', () => c.queueDeclare(''), closed);
    await refused('basicConsume', () => c.basicConsume(queue, {}, () => {}), closed);
    await refused('basicGet', () => c.basicGet(queue), closed);
    await refused('basicQos', () => c.basicQos(1), closed);
    await refused('confirmSelect', () => c.confirmSelect(), closed);
    const before = written();
    c.basicAck(1); // fire-and-forget settles are no-ops, never throws
    c.basicNack(1);
    await tick();
    assert.equal(written(), before);
  });

  test('a channel closed by the broker: ClosedError with the broker error as cause; messages settle silently', async () => {
    const c = await conn.openChannel();
    await c.basicPublish('', queue, Buffer.from('to ack late'));
    const msg = await c.basicGet(queue);
    assert.ok(msg);
    const err = await rejection(c.queueDeclare(res.queue('missing'), { passive: true }));
    assert.ok(err instanceof ChannelClosedByServer && err.replyCode === 404, String(err));
    await tick(); // the channel.close-ok the client owes the broker goes out now
    await tick();
    await refused('publish after 404', () => c.basicPublish('', queue, body), {
      error: ClosedError,
      message: /404/,
    });
    const closedErr = await rejection(c.queueDeclare(''));
    assert.ok(closedErr instanceof ClosedError && closedErr.cause instanceof ChannelClosedByServer);
    const before = written();
    msg.ack(); // the channel that delivered it is gone: no-op, no throw
    await tick();
    assert.equal(written(), before);
    assert.equal(conn.isOpen, true);
  });

  test('a closed connection', async () => {
    const own = await connect(AMQP_URL);
    const c = await own.openChannel();
    await own.close();
    await assert.rejects(own.openChannel(), ClosedError);
    await assert.rejects(c.basicPublish('', queue, body), ClosedError);
    await assert.rejects(c.queueDeclare(''), ClosedError);
    await assert.rejects(own.updateSecret('x'), ClosedError);
    await own.close(); // idempotent
  });
});

describe('bad connection options are refused before a socket is opened', () => {
  const cases: [string, Parameters<typeof connect>[1], RegExp][] = [
    ['heartbeat -1', { heartbeat: -1 }, /heartbeat/],
    ['heartbeat 1.5', { heartbeat: 1.5 }, /heartbeat/],
    ['frameMax 100', { frameMax: 100 }, /frameMax/],
    ['frameMax 2^32', { frameMax: 2 ** 32 }, /frameMax/],
    ['channelMax 70000', { channelMax: 70000 }, /channelMax/],
    ['port 0', { port: 0 }, /port/],
    ['connectionTimeout 0', { connectionTimeout: 0 }, /connectionTimeout/],
  ];
  for (const [what, options, message] of cases) {
    test(what, async () => {
      const err = await rejection(connect(AMQP_URL, options));
      assert.ok(err instanceof InvalidArgumentError, `${what}: ${String(err)}`);
      assert.match(err.message, message);
    });
  }
  test('a URL that is not AMQP, with the password redacted in the message', async () => {
    const err = await rejection(connect('http://guest:s3cret@127.0.0.1:5672'));
    assert.ok(err instanceof InvalidArgumentError, String(err));
    assert.doesNotMatch(err.message, /s3cret/);
  });
});

describe('names and properties the broker would misread', () => {
  test('null or undefined names are refused instead of meaning "the last queue" or the default exchange', async () => {
    const conn = await connect(AMQP_URL);
    try {
      const ch = await conn.openChannel();
      const bad = null as unknown as string;
      for (const attempt of [
        () => ch.basicGet(bad),
        () => ch.queuePurge(bad),
        () => ch.queueDelete(bad),
        () => ch.queueBind(bad, 'amq.direct', 'k'),
        () => ch.exchangeDeclare(bad, 'direct'),
        () => ch.basicPublish(bad, 'k', Buffer.from('x')),
        () => ch.basicPublish('', undefined as unknown as string, Buffer.from('x')),
      ]) {
        await assert.rejects(attempt(), InvalidArgumentError);
      }
      assert.equal(ch.isOpen, true);
      const { queue } = await ch.queueDeclare('', { exclusive: true });
      assert.match(queue, /^amq\.gen-/);
    } finally {
      await conn.close();
    }
  });

  test('an unknown property name (amqplib-style persistent: true) is refused with a hint', async () => {
    const conn = await connect(AMQP_URL);
    try {
      const ch = await conn.openChannel();
      const props = { persistent: true } as unknown as BasicProperties;
      await assert.rejects(ch.basicPublish('', 'nowhere', Buffer.from('x'), props), /deliveryMode: 2/);
      const consumer = await ch.basicConsume(
        (await ch.queueDeclare('', { exclusive: true })).queue,
        null as unknown as undefined,
        () => {},
      );
      assert.ok(consumer.consumerTag.length > 0, 'null options are treated as none');
    } finally {
      await conn.close();
    }
  });
});
