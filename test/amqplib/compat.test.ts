/**
 * Differential compatibility tests: the same tests, written from amqplib's documented behaviour, run
 * against amqplib itself and against warren/amqplib, on the real broker. A difference fails on one side.
 * `AMQPLIB_TARGET=amqplib` or `AMQPLIB_TARGET=warren` runs one side only.
 *
 * The targets are typed with amqplib's own declarations (its index.d.ts), so this file also checks at
 * compile time that warren/amqplib fits code typed against them (types-compat.ts does @types/amqplib).
 */
import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import amqplib from 'amqplib';
import amqplibCallback from 'amqplib/callback_api';
import * as warren from '../../src/amqplib/index.js';
import * as warrenCallback from '../../src/amqplib/callback-api.js';
import { AMQP_URL, rabbitmqctl, uniqueName } from '../support/broker.js';

/** What this file uses of a library, in amqplib's own types (its index.d.ts). */
interface Lib {
  connect(url: string | amqplib.Options.Connect, socketOptions?: amqplib.SocketOptions): Promise<amqplib.ChannelModel>;
}
type CallbackLib = typeof amqplibCallback;
type ChannelModel = amqplib.ChannelModel;
type Channel = amqplib.Channel;
type Msg = amqplib.ConsumeMessage;

const ALL: [string, Lib, CallbackLib][] = [
  ['amqplib', amqplib, amqplibCallback],
  ['warren/amqplib', warren, warrenCallback as unknown as CallbackLib],
];
const only = process.env.AMQPLIB_TARGET;
const TARGETS = ALL.filter(([name]) => only === undefined || name.includes(only));

/** Every code/classId/methodId an amqplib user tests for, from a broker-caused error. */
function assertBrokerError(err: unknown, code: number, classId: number, methodId: number, text: RegExp): void {
  const e = err as { code: number; classId: number; methodId: number; message: string };
  assert.ok(err instanceof Error, 'an Error');
  assert.equal(e.code, code, `code of ${e.message}`);
  assert.equal(e.classId, classId, `classId of ${e.message}`);
  assert.equal(e.methodId, methodId, `methodId of ${e.message}`);
  assert.match(e.message, text);
}

/** The next `event` (unlike events.once, an 'error' meanwhile does not reject it). */
function when(emitter: EventEmitter, event: string): Promise<unknown[]> {
  return new Promise((resolve) => emitter.once(event, (...args: unknown[]) => resolve(args)));
}

async function getWithin(ch: Channel, queue: string, ms = 3000): Promise<amqplib.GetMessage> {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = await ch.get(queue, { noAck: true });
    if (m !== false) return m;
    if (Date.now() > deadline) throw new Error(`no message in ${queue} within ${ms} ms`);
    await sleep(20);
  }
}

function nextMessages(ch: Channel, queue: string, n: number, options: amqplib.Options.Consume = {}) {
  const got: (Msg | null)[] = [];
  let resolve!: (v: (Msg | null)[]) => void;
  const done = new Promise<(Msg | null)[]>((r) => (resolve = r));
  const started = ch.consume(
    queue,
    (m) => {
      got.push(m);
      if (got.length === n) resolve(got);
    },
    options,
  );
  const timed = Promise.race([
    done,
    sleep(5000).then(() => {
      throw new Error(`only ${got.length} of ${n} messages from ${queue}`);
    }),
  ]);
  return { started, done: timed, got };
}

for (const [name, lib, callbackLib] of TARGETS) {
  describe(`amqplib API on ${name}`, { concurrency: 4 }, () => {
    const models: ChannelModel[] = [];
    const open = async (): Promise<ChannelModel> => {
      const m = await lib.connect(AMQP_URL);
      models.push(m);
      return m;
    };
    const scratch = async (): Promise<Channel> => (await open()).createChannel();
    after(async () => {
      for (const m of models) await m.close().catch(() => {});
    });

    test('connect with a URL and with an object; serverProperties; close; close twice rejects', async () => {
      const a = await lib.connect(AMQP_URL);
      const u = new URL(AMQP_URL);
      const b = await lib.connect({
        protocol: 'amqp',
        hostname: u.hostname,
        port: Number(u.port || 5672),
        username: decodeURIComponent(u.username),
        password: decodeURIComponent(u.password),
        vhost: '/',
        heartbeat: 10,
      });
      assert.equal(a.connection.serverProperties.product, 'RabbitMQ');
      const closed = when(a, 'close');
      await a.close();
      const [err] = await closed;
      assert.equal(err, undefined, "'close' has no error after close()");
      await assert.rejects(a.close());
      await b.close();
    });

    test("connect refused: rejects with the system error (code 'ECONNREFUSED')", async () => {
      await assert.rejects(lib.connect('amqp://guest:guest@127.0.0.1:1'), (err) => {
        assert.equal((err as { code: string }).code, 'ECONNREFUSED');
        return true;
      });
    });

    test('wrong password: rejects', async () => {
      const u = new URL(AMQP_URL);
      u.password = 'definitely-wrong';
      await assert.rejects(lib.connect(u.toString()), (err) => {
        assert.match((err as Error).message, /ACCESS_REFUSED|refused|authentication/i);
        return true;
      });
    });

    test('assertQueue: server-named, reply shape, durable by default; checkQueue', async () => {
      const ch = await scratch();
      const q = await ch.assertQueue('', { exclusive: true });
      assert.match(q.queue, /^amq\.gen-/);
      assert.deepEqual(q, { queue: q.queue, messageCount: 0, consumerCount: 0 });
      const named = uniqueName('compat-durable');
      assert.deepEqual(await ch.assertQueue(named, { autoDelete: false }), {
        queue: named,
        messageCount: 0,
        consumerCount: 0,
      });
      ch.sendToQueue(named, Buffer.from('x'));
      await getWithin(ch, named).then(() => ch.sendToQueue(named, Buffer.from('y')));
      await sleep(50);
      assert.deepEqual(await ch.checkQueue(named), { queue: named, messageCount: 1, consumerCount: 0 });
      // durable: true is the default: declaring it again as non-durable is a different queue (406).
      const errors: unknown[] = [];
      ch.on('error', (e) => errors.push(e));
      const closed = when(ch, 'close');
      await assert.rejects(ch.assertQueue(named, { durable: false }), (err) => {
        assertBrokerError(err, 406, 50, 10, /PRECONDITION_FAILED - inequivalent arg 'durable'/);
        return true;
      });
      await closed;
      assert.equal(errors.length, 1);
      assertBrokerError(errors[0], 406, 50, 10, /PRECONDITION_FAILED/);
      const ch2 = await scratch();
      assert.deepEqual(await ch2.deleteQueue(named), { messageCount: 1 });
    });

    test('checkQueue on a missing queue: 404 on the promise and the channel; the channel is closed after', async () => {
      const ch = await scratch();
      const errors: unknown[] = [];
      ch.on('error', (e) => errors.push(e));
      const closed = when(ch, 'close');
      await assert.rejects(ch.checkQueue(uniqueName('missing')), (err) => {
        assertBrokerError(err, 404, 50, 10, /NOT_FOUND - no queue/);
        return true;
      });
      await closed;
      assertBrokerError(errors[0], 404, 50, 10, /NOT_FOUND - no queue/);
      await assert.rejects(ch.assertQueue(''), (err) => (err as Error).name === 'IllegalOperationError');
      assert.throws(
        () => ch.sendToQueue('x', Buffer.from('x')),
        (err) => (err as Error).name === 'IllegalOperationError',
      );
    });

    test('assertQueue options: messageTtl and deadLetterExchange/RoutingKey dead-letter an expired message', async () => {
      const ch = await scratch();
      const dlq = (await ch.assertQueue('', { exclusive: true })).queue;
      const q = uniqueName('compat-ttl');
      await ch.assertQueue(q, {
        exclusive: true,
        messageTtl: 30,
        deadLetterExchange: '',
        deadLetterRoutingKey: dlq,
        maxLength: 10,
        arguments: { 'x-overflow': 'drop-head' },
      });
      ch.sendToQueue(q, Buffer.from('expiring'), { messageId: 'm1' });
      const dead = await getWithin(ch, dlq);
      assert.equal(dead.content.toString(), 'expiring');
      assert.equal(dead.properties.messageId, 'm1');
      const death = dead.properties.headers?.['x-death'] as { reason: string; queue: string }[];
      assert.equal(death[0]?.reason, 'expired');
      assert.equal(death[0]?.queue, q);
      assert.equal(dead.properties.headers?.['x-first-death-reason'], 'expired');
      // Timestamps in tables come tagged, as amqplib decodes them.
      const time = (death[0] as unknown as { time: { '!': string; value: number } }).time;
      assert.equal(time['!'], 'timestamp');
      assert.ok(Math.abs(time.value - Date.now() / 1000) < 600, `seconds since the epoch: ${time.value}`);
    });

    test('maxPriority queue and priority messages; consumer priority option accepted', async () => {
      const ch = await scratch();
      const q = (await ch.assertQueue('', { exclusive: true, maxPriority: 10 })).queue;
      ch.sendToQueue(q, Buffer.from('low'), { priority: 1 });
      ch.sendToQueue(q, Buffer.from('high'), { priority: 9 });
      await sleep(50);
      assert.equal(((await ch.get(q, { noAck: true })) as amqplib.GetMessage).content.toString(), 'high');
      const c = nextMessages(ch, q, 1, { priority: 5, noAck: true });
      await c.started;
      const [m] = (await c.done) as Msg[];
      assert.equal(m!.content.toString(), 'low');
    });

    test("updateSecret resolves and emits 'update-secret-ok'", async () => {
      const conn = await open();
      let events = 0;
      conn.on('update-secret-ok', () => events++);
      await conn.updateSecret(Buffer.from(decodeURIComponent(new URL(AMQP_URL).password) || 'guest'), 'compat test');
      await sleep(20);
      assert.equal(events, 1);
      assert.ok((await conn.createChannel()) !== undefined, 'the connection is still usable');
    });

    test('purgeQueue and deleteQueue reply with message counts; deleteQueue ifEmpty refuses (406)', async () => {
      const conn = await open();
      const ch = await conn.createChannel();
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      for (let i = 0; i < 3; i++) ch.sendToQueue(q, Buffer.from(String(i)));
      await getWithin(ch, q); // all three routed; one taken
      assert.deepEqual(await ch.purgeQueue(q), { messageCount: 2 });
      ch.sendToQueue(q, Buffer.from('one'));
      await sleep(50);
      ch.on('error', () => {});
      await assert.rejects(ch.deleteQueue(q, { ifEmpty: true }), (err) => {
        assertBrokerError(err, 406, 50, 40, /PRECONDITION_FAILED/);
        return true;
      });
      const ch2 = await conn.createChannel();
      assert.deepEqual(await ch2.deleteQueue(q), { messageCount: 1 });
    });

    test('assertExchange/bindQueue/unbindQueue/deleteExchange: routing follows the bindings', async () => {
      const ch = await scratch();
      const ex = uniqueName('compat-direct');
      assert.deepEqual(await ch.assertExchange(ex, 'direct', { durable: false, autoDelete: false }), { exchange: ex });
      assert.deepEqual(await ch.checkExchange(ex), {});
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      assert.deepEqual(await ch.bindQueue(q, ex, 'k'), {});
      assert.equal(ch.publish(ex, 'k', Buffer.from('bound')), true);
      assert.equal((await getWithin(ch, q)).content.toString(), 'bound');
      assert.deepEqual(await ch.unbindQueue(q, ex, 'k'), {});
      ch.publish(ex, 'k', Buffer.from('unbound'));
      await sleep(100);
      assert.equal(await ch.get(q), false);
      assert.deepEqual(await ch.deleteExchange(ex), {});
      ch.on('error', () => {});
      await assert.rejects(ch.checkExchange(ex), (err) => {
        assertBrokerError(err, 404, 40, 10, /NOT_FOUND - no exchange/);
        return true;
      });
    });

    test('bindExchange/unbindExchange, topic patterns, alternateExchange, headers binding arguments', async () => {
      const ch = await scratch();
      const src = uniqueName('compat-src');
      const dst = uniqueName('compat-dst');
      const ae = uniqueName('compat-ae');
      const hdr = uniqueName('compat-hdr');
      await ch.assertExchange(ae, 'fanout', { durable: false });
      await ch.assertExchange(src, 'topic', { durable: false, alternateExchange: ae });
      await ch.assertExchange(dst, 'fanout', { durable: false });
      await ch.assertExchange(hdr, 'headers', { durable: false });
      const viaDst = (await ch.assertQueue('', { exclusive: true })).queue;
      const viaAe = (await ch.assertQueue('', { exclusive: true })).queue;
      const viaHdr = (await ch.assertQueue('', { exclusive: true })).queue;
      await ch.bindQueue(viaDst, dst, '');
      await ch.bindQueue(viaAe, ae, '');
      await ch.bindQueue(viaHdr, hdr, '', { 'x-match': 'all', kind: 'report' });
      assert.deepEqual(await ch.bindExchange(dst, src, 'a.*'), {});
      ch.publish(src, 'a.b', Buffer.from('matched'));
      ch.publish(src, 'z', Buffer.from('unmatched'));
      ch.publish(hdr, '', Buffer.from('with header'), { headers: { kind: 'report' } });
      ch.publish(hdr, '', Buffer.from('without'), { headers: { kind: 'other' } });
      assert.equal((await getWithin(ch, viaDst)).content.toString(), 'matched');
      assert.equal((await getWithin(ch, viaAe)).content.toString(), 'unmatched');
      assert.equal((await getWithin(ch, viaHdr)).content.toString(), 'with header');
      assert.deepEqual(await ch.unbindExchange(dst, src, 'a.*'), {});
      ch.publish(src, 'a.b', Buffer.from('now to ae'));
      assert.equal((await getWithin(ch, viaAe)).content.toString(), 'now to ae');
      assert.equal(await ch.get(viaDst), false);
      assert.equal(await ch.get(viaHdr), false);
      for (const e of [src, dst, ae, hdr]) await ch.deleteExchange(e);
    });

    test('publish options become properties; the message shape of get', async () => {
      const ch = await scratch();
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      ch.sendToQueue(q, Buffer.from('{"a":1}'), {
        persistent: true,
        expiration: 60000,
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        headers: { h: 'v', n: 7 },
        priority: 3,
        correlationId: 'c1',
        replyTo: 'r1',
        messageId: 'id1',
        timestamp: 1700000000,
        type: 't1',
        appId: 'app1',
        userId: 'guest',
      });
      const m = await getWithin(ch, q);
      assert.deepEqual(m.fields, { deliveryTag: 1, redelivered: false, exchange: '', routingKey: q, messageCount: 0 });
      assert.deepEqual(m.properties, {
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        headers: { h: 'v', n: 7 },
        deliveryMode: 2,
        priority: 3,
        correlationId: 'c1',
        replyTo: 'r1',
        expiration: '60000',
        messageId: 'id1',
        timestamp: 1700000000,
        type: 't1',
        userId: 'guest',
        appId: 'app1',
        clusterId: undefined,
      });
      assert.deepEqual(m.content, Buffer.from('{"a":1}'));
      ch.sendToQueue(q, Buffer.from(''), { deliveryMode: true });
      const empty = await getWithin(ch, q);
      assert.equal(empty.content.length, 0);
      assert.equal(empty.properties.deliveryMode, 2);
      assert.deepEqual(empty.properties.headers, {}, 'headers is always a table');
      ch.sendToQueue(q, Buffer.from('plain'));
      const plain = await getWithin(ch, q);
      assert.equal(plain.properties.deliveryMode, undefined);
      assert.equal(plain.properties.contentType, undefined);
    });

    test('CC and BCC: routed to every key; BCC removed before delivery', async () => {
      const ch = await scratch();
      const [a, b, c] = [
        (await ch.assertQueue('', { exclusive: true })).queue,
        (await ch.assertQueue('', { exclusive: true })).queue,
        (await ch.assertQueue('', { exclusive: true })).queue,
      ];
      ch.sendToQueue(a, Buffer.from('multi'), { CC: b, BCC: [c] });
      const ma = await getWithin(ch, a);
      const mb = await getWithin(ch, b);
      const mc = await getWithin(ch, c);
      for (const m of [ma, mb, mc]) assert.equal(m.content.toString(), 'multi');
      assert.deepEqual(ma.properties.headers?.CC, [b]);
      assert.equal(ma.properties.headers?.BCC, undefined);
    });

    test('consume: message shape, consumerTag given or made up, cancel; noAck', async () => {
      const ch = await scratch();
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      const tag = uniqueName('ctag');
      const c1 = nextMessages(ch, q, 2, { consumerTag: tag });
      assert.deepEqual(await c1.started, { consumerTag: tag });
      ch.sendToQueue(q, Buffer.from('one'), { headers: { k: 'v' } });
      ch.sendToQueue(q, Buffer.from('two'));
      const [m1, m2] = (await c1.done) as Msg[];
      assert.deepEqual(m1!.fields, {
        consumerTag: tag,
        deliveryTag: 1,
        redelivered: false,
        exchange: '',
        routingKey: q,
      });
      assert.equal(m1!.content.toString(), 'one');
      assert.deepEqual(m1!.properties.headers, { k: 'v' });
      assert.equal(m2!.fields.deliveryTag, 2);
      ch.ack(m2!, true);
      assert.deepEqual(await ch.cancel(tag), { consumerTag: tag });
      // noAck: messages are settled when sent; a recover later has nothing to give back.
      const c2 = nextMessages(ch, q, 1, { noAck: true });
      const { consumerTag } = await c2.started;
      assert.match(consumerTag, /^amq\.ctag-/);
      ch.sendToQueue(q, Buffer.from('three'));
      const [m3] = (await c2.done) as Msg[];
      assert.equal(m3!.fields.consumerTag, consumerTag);
      await ch.cancel(consumerTag);
      await ch.recover();
      await sleep(100);
      assert.deepEqual(await ch.checkQueue(q), { queue: q, messageCount: 0, consumerCount: 0 });
    });

    test('consume: the callback gets null when the broker cancels the consumer (queue deleted)', async () => {
      const ch = await scratch();
      const q = (await ch.assertQueue(uniqueName('compat-cancel'), { exclusive: false, durable: false })).queue;
      const c = nextMessages(ch, q, 1);
      await c.started;
      const other = await scratch();
      await other.deleteQueue(q);
      const [m] = await c.done;
      assert.equal(m, null);
      // The channel stays usable.
      assert.match((await ch.assertQueue('', { exclusive: true })).queue, /^amq\.gen-/);
    });

    test('exclusive consumer refuses a second one (403); an exclusive queue is locked to its connection (405)', async () => {
      const conn = await open();
      const ch = await conn.createChannel();
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      await ch.consume(q, () => {}, { exclusive: true });
      const ch2 = await conn.createChannel();
      ch2.on('error', () => {});
      await assert.rejects(
        ch2.consume(q, () => {}),
        (err) => {
          assertBrokerError(err, 403, 60, 20, /ACCESS_REFUSED/);
          return true;
        },
      );
      const elsewhere = await scratch();
      elsewhere.on('error', () => {});
      await assert.rejects(elsewhere.checkQueue(q), (err) => {
        assertBrokerError(err, 405, 50, 10, /RESOURCE_LOCKED/);
        return true;
      });
    });

    test('get: false when empty; messageCount; noAck false leaves it unacked until ack', async () => {
      const ch = await scratch();
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      assert.equal(await ch.get(q), false);
      ch.sendToQueue(q, Buffer.from('a'));
      ch.sendToQueue(q, Buffer.from('b'));
      await sleep(50);
      const m = await ch.get(q);
      assert.ok(m);
      assert.deepEqual(m.fields, { deliveryTag: 1, redelivered: false, exchange: '', routingKey: q, messageCount: 1 });
      ch.ack(m);
      const n = await ch.get(q);
      assert.ok(n);
      ch.reject(n, true);
      const again = await ch.get(q);
      assert.ok(again);
      assert.equal(again.fields.redelivered, true);
      assert.equal(again.content.toString(), 'b');
      ch.ack(again);
      assert.equal((await ch.checkQueue(q)).messageCount, 0);
    });

    test('nack requeues by default, nack(requeue false) and reject(false) drop; nackAll and ackAll', async () => {
      const ch = await scratch();
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      for (const s of ['a', 'b', 'c', 'd']) ch.sendToQueue(q, Buffer.from(s));
      await sleep(50);
      const a = (await ch.get(q)) as amqplib.GetMessage;
      ch.nack(a);
      const b = (await ch.get(q)) as amqplib.GetMessage;
      ch.nack(b, false, false);
      const c = (await ch.get(q)) as amqplib.GetMessage;
      ch.reject(c, false);
      await sleep(50);
      assert.equal((await ch.checkQueue(q)).messageCount, 2, 'a requeued, b and c dropped, d waiting');
      await ch.get(q);
      await ch.get(q);
      ch.nackAll();
      await sleep(50);
      assert.equal((await ch.checkQueue(q)).messageCount, 2, 'nackAll requeues both');
      await ch.get(q);
      await ch.get(q);
      ch.ackAll();
      await sleep(50);
      assert.equal((await ch.checkQueue(q)).messageCount, 0);
      // nackAll(false) drops.
      ch.sendToQueue(q, Buffer.from('e'));
      await sleep(50);
      await ch.get(q);
      ch.nackAll(false);
      await sleep(50);
      assert.equal((await ch.checkQueue(q)).messageCount, 0);
    });

    test('acking an unknown delivery tag: the broker closes the channel with 406, emitted as error', async () => {
      const ch = await scratch();
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      ch.sendToQueue(q, Buffer.from('x'));
      await sleep(50);
      const m = (await ch.get(q)) as amqplib.GetMessage;
      const error = when(ch, 'error');
      const closed = when(ch, 'close');
      ch.ack(m);
      ch.ack(m); // twice: the second tag is unknown
      const [err] = await error;
      assertBrokerError(err, 406, 60, 80, /PRECONDITION_FAILED - unknown delivery tag 1/);
      await closed;
      assert.throws(
        () => ch.ack(m),
        (e) => (e as Error).name === 'IllegalOperationError',
      );
    });

    test('prefetch limits unacked deliveries per consumer; recover redelivers unacked', async () => {
      const ch = await scratch();
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      assert.deepEqual(await ch.prefetch(2), {});
      for (let i = 0; i < 5; i++) ch.sendToQueue(q, Buffer.from(String(i)));
      const got: Msg[] = [];
      await ch.consume(q, (m) => {
        if (m) got.push(m);
      });
      await sleep(300);
      assert.equal(got.length, 2, 'prefetch 2');
      assert.deepEqual(await ch.recover(), {});
      await sleep(300);
      assert.equal(got.length, 4, 'the two unacked ones again');
      assert.deepEqual(
        got.slice(2).map((m) => m.fields.redelivered),
        [true, true],
      );
      ch.ack(got[3]!, true);
      await sleep(300);
      assert.equal(got.length, 6);
      ch.ackAll();
      assert.deepEqual(await ch.prefetch(0, true), {});
    });

    test('confirm channel: callbacks, waitForConfirms, mandatory unroutable comes back on return and is acked', async () => {
      const conn = await open();
      const ch = await conn.createConfirmChannel();
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      const results: (Error | null)[] = [];
      for (let i = 0; i < 20; i++) {
        assert.equal(
          ch.sendToQueue(q, Buffer.from(String(i)), {}, (err) => results.push(err)),
          true,
        );
      }
      await ch.waitForConfirms();
      assert.equal(results.length, 20);
      assert.ok(results.every((r) => r === null));
      const returned = when(ch, 'return');
      let mandatoryResult: unknown = 'pending';
      ch.publish('', uniqueName('nowhere'), Buffer.from('lost'), { mandatory: true, messageId: 'r1' }, (err) => {
        mandatoryResult = err;
      });
      const [msg] = (await returned) as [amqplib.Message];
      assert.equal(msg.content.toString(), 'lost');
      assert.equal(msg.properties.messageId, 'r1');
      assert.equal((msg.fields as unknown as { replyCode: number }).replyCode, 312);
      assert.equal((msg.fields as unknown as { replyText: string }).replyText, 'NO_ROUTE');
      await ch.waitForConfirms();
      assert.equal(mandatoryResult, null);
      assert.equal((await ch.checkQueue(q)).messageCount, 20);
    });

    test('confirm channel: a publish that closes the channel fails its callback and waitForConfirms', async () => {
      const conn = await open();
      const ch = await conn.createConfirmChannel();
      ch.on('error', () => {});
      let result: unknown = 'pending';
      const closed = when(ch, 'close');
      ch.publish(uniqueName('no-exchange'), 'k', Buffer.from('x'), {}, (err) => {
        result = err;
      });
      await closed;
      await sleep(10);
      assert.ok(result instanceof Error, 'the callback got an error');
      await assert.rejects(ch.waitForConfirms());
    });

    test("publish returns false when the buffer is full, then 'drain'", async () => {
      const ch = await scratch();
      const big = Buffer.alloc(64 * 1024);
      let sent = 0;
      let full = false;
      while (sent < 20_000) {
        sent++;
        if (!ch.publish('', uniqueName('void'), big)) {
          full = true;
          break;
        }
      }
      assert.ok(full, `publish returned false within ${sent} publishes of 64 KiB`);
      await Promise.race([
        when(ch, 'drain'),
        sleep(10_000).then(() => {
          throw new Error('no drain');
        }),
      ]);
      assert.equal(ch.publish('', uniqueName('void'), Buffer.from('small')), true);
    });

    test("channel close: 'close' once, then operations throw IllegalOperationError", async () => {
      const ch = await scratch();
      const closed = when(ch, 'close');
      await ch.close();
      await closed;
      await assert.rejects(ch.close());
      assert.throws(
        () => ch.publish('', 'q', Buffer.from('x')),
        (e) => (e as Error).name === 'IllegalOperationError',
      );
    });

    test("connection closed by the broker (320): channels and the model emit 'close', the model's error has code 320", async () => {
      const connectionName = uniqueName(`compat-forced-${name.replace('/', '-')}`);
      const conn = await lib.connect(AMQP_URL, { clientProperties: { connection_name: connectionName } });
      const ch = await conn.createChannel();
      const chClosed = when(ch, 'close');
      const modelErrors: unknown[] = [];
      conn.on('error', (e) => modelErrors.push(e));
      const closed = when(conn, 'close');
      let pid = '';
      for (let i = 0; i < 50 && pid === ''; i++) {
        const out = await rabbitmqctl('list_connections', 'pid', 'client_properties', '--no-table-headers', '-q');
        pid =
          out
            .split('\n')
            .find((l) => l.includes(connectionName))
            ?.split('\t')[0] ?? '';
        if (pid === '') await sleep(100);
      }
      assert.notEqual(pid, '', 'the broker lists the connection');
      await rabbitmqctl('close_connection', pid, 'compat test');
      const [err] = (await closed) as [{ code: number; message: string }];
      await chClosed;
      assert.equal(err.code, 320);
      assert.match(err.message, /CONNECTION_FORCED - compat test/);
      assert.equal(modelErrors.length, 0, "a forced close is not an 'error'");
    });

    test('callback API: connect, channels, declare, publish, consume, ack, confirms, close', async () => {
      const model = await new Promise<amqplibCallback.Connection>((resolve, reject) =>
        callbackLib.connect(AMQP_URL, (err: unknown, c: amqplibCallback.Connection) =>
          err ? reject(err) : resolve(c),
        ),
      );
      const ch = await new Promise<amqplibCallback.Channel>((resolve, reject) =>
        model.createChannel((err: unknown, c: amqplibCallback.Channel) => (err ? reject(err) : resolve(c))),
      );
      const q = await new Promise<string>((resolve, reject) =>
        ch.assertQueue('', { exclusive: true }, (err, ok) => (err ? reject(err) : resolve(ok.queue))),
      );
      const got = new Promise<amqplib.ConsumeMessage>((resolve) => {
        ch.consume(q, (m) => {
          if (m) resolve(m);
        });
      });
      ch.sendToQueue(q, Buffer.from('cb'));
      const m = await got;
      assert.equal(m.content.toString(), 'cb');
      assert.equal(ch.ack(m), ch, 'ack returns the channel');
      const missing = await new Promise<unknown>((resolve) => {
        ch.on('error', () => {});
        ch.checkQueue(uniqueName('missing'), (err) => resolve(err));
      });
      assertBrokerError(missing, 404, 50, 10, /NOT_FOUND/);
      const cc = await new Promise<amqplibCallback.ConfirmChannel>((resolve, reject) =>
        model.createConfirmChannel((err: unknown, c: amqplibCallback.ConfirmChannel) =>
          err ? reject(err) : resolve(c),
        ),
      );
      const confirmed: (Error | null)[] = [];
      const q2 = await new Promise<string>((resolve, reject) =>
        cc.assertQueue('', { exclusive: true }, (err, ok) => (err ? reject(err) : resolve(ok.queue))),
      );
      cc.sendToQueue(q2, Buffer.from('c'), {}, (err) => confirmed.push(err));
      await new Promise<void>((resolve, reject) => cc.waitForConfirms((err) => (err ? reject(err) : resolve())));
      assert.deepEqual(confirmed, [null]);
      await new Promise<void>((resolve, reject) => model.close((err) => (err ? reject(err) : resolve())));
    });
  });
}
