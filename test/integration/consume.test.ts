/**
 * Consuming against the real broker: basic.qos, consume and cancel (client and server side),
 * exclusive consumers, basic.get, ack / nack / reject (single and multiple, requeue and dead-letter),
 * basic.recover, and acknowledgements after the channel is gone.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import {
  type Channel,
  ChannelClosedByServer,
  ConnectionClosedByServer,
  connect,
  type FieldTable,
  type Message,
} from '../../src/index.js';
import {
  AMQP_URL,
  consumeN,
  deferred,
  drain,
  readyCount,
  rejection,
  settledReadyCount,
  brokerFixture,
} from '../support/broker.js';
import { waitFor, within } from '../support/wait.js';

/** One connection and a confirm-mode channel `fx.ch` for the whole file, to set up and inspect. */
const fx = brokerFixture();
const { res } = fx;

async function queueWith(n: number, args: FieldTable = {}): Promise<string> {
  const q = res.queue();
  await fx.ch.queueDeclare(q, { arguments: args });
  await Promise.all(Array.from({ length: n }, (_, i) => fx.ch.basicPublish('', q, Buffer.from(`m${i}`))));
  return q;
}

const bodies = (msgs: readonly Message[]) => msgs.map((m) => m.body.toString());

describe('basic.qos', () => {
  test('prefetch 2: a consumer that does not ack receives exactly 2, and one more per ack', async () => {
    const q = await queueWith(5);
    const c = await fx.conn.openChannel();
    try {
      await c.basicQos(2);
      const got: Message[] = [];
      await c.basicConsume(q, {}, (m) => {
        got.push(m);
      });
      await waitFor(() => got.length === 2, { timeout: 2000, what: 'two deliveries' });
      await sleep(100);
      assert.equal(got.length, 2);
      assert.equal(await readyCount(fx.ch, q), 3);
      assert.equal(got[0]!.ack(), true);
      await waitFor(() => got.length === 3, { timeout: 2000, what: 'a third delivery after one ack' });
      await sleep(50);
      assert.equal(got.length, 3);
      assert.deepEqual(bodies(got), ['m0', 'm1', 'm2']);
    } finally {
      await c.close();
    }
  });

  test('global prefetch limits the channel as a whole across consumers', async () => {
    const q1 = await queueWith(3);
    const q2 = await queueWith(3);
    const c = await fx.conn.openChannel();
    try {
      await c.basicQos(3, { global: true });
      const got: Message[] = [];
      await c.basicConsume(q1, {}, (m) => {
        got.push(m);
      });
      await c.basicConsume(q2, {}, (m) => {
        got.push(m);
      });
      await waitFor(() => got.length === 3, { timeout: 2000, what: 'three deliveries' });
      await sleep(100);
      assert.equal(got.length, 3);
      assert.equal((await readyCount(fx.ch, q1)) + (await readyCount(fx.ch, q2)), 3);
    } finally {
      await c.close();
    }
  });
});

describe('basic.consume / basic.cancel', () => {
  test('delivers with the right fields; cancel stops delivery and a second consumer gets the rest', async () => {
    const q = await queueWith(3);
    const c = await fx.conn.openChannel();
    try {
      const first = await consumeN(c, q, 3);
      assert.deepEqual(bodies(first), ['m0', 'm1', 'm2']);
      const m = first[0]!;
      assert.equal(m.exchange, '');
      assert.equal(m.routingKey, q);
      assert.equal(m.redelivered, false);
      assert.equal(typeof m.consumerTag, 'string');
      assert.deepEqual(
        first.map((x) => x.deliveryTag),
        [1, 2, 3],
      );

      // A cancelled consumer gets nothing more.
      const late: Message[] = [];
      const consumer = await c.basicConsume(q, { consumerTag: 'warren-tag-a' }, (x) => {
        late.push(x);
        x.ack();
      });
      assert.equal(consumer.consumerTag, 'warren-tag-a');
      assert.equal(consumer.queue, q);
      const cancelEvent = deferred<{ serverCancelled: boolean }>();
      consumer.on('cancel', (info) => cancelEvent.resolve(info));
      await consumer.cancel();
      assert.equal(consumer.isActive, false);
      assert.deepEqual(await consumer.cancelled, { serverCancelled: false, error: undefined });
      assert.equal((await cancelEvent.promise).serverCancelled, false);
      await consumer.cancel(); // idempotent
      await Promise.all(['n0', 'n1', 'n2'].map((b) => fx.ch.basicPublish('', q, Buffer.from(b))));
      await sleep(100);
      assert.equal(late.length, 0);
      assert.equal(await readyCount(fx.ch, q), 3);
      const second = await consumeN(c, q, 3);
      assert.deepEqual(bodies(second), ['n0', 'n1', 'n2']);
      assert.equal(await readyCount(fx.ch, q), 0);
    } finally {
      await c.close();
    }
  });

  test('noAck consumer: messages need no ack (ack() is a no-op) and leave the queue at once', async () => {
    const q = await queueWith(2);
    const c = await fx.conn.openChannel();
    try {
      const got: Message[] = [];
      const done = deferred<void>();
      const consumer = await c.basicConsume(q, { noAck: true }, (m) => {
        got.push(m);
        if (got.length === 2) done.resolve();
      });
      await within(done.promise, 2000, 'two deliveries');
      assert.equal(got[0]!.isSettled, true);
      assert.equal(got[0]!.ack(), false);
      await consumer.cancel();
      await c.close(); // nothing unacked to requeue
      assert.equal(await settledReadyCount(fx.ch, q), 0);
    } finally {
      await c.close();
    }
  });

  test("an exclusive consumer blocks others: 403 ACCESS_REFUSED with method 'basic.consume'", async () => {
    const q = await queueWith(0);
    const a = await fx.conn.openChannel();
    const b = await fx.conn.openChannel();
    try {
      await a.basicConsume(q, { exclusive: true }, () => {});
      const err = await rejection(b.basicConsume(q, {}, () => {}));
      assert.ok(err instanceof ChannelClosedByServer, String(err));
      assert.equal(err.replyCode, 403);
      assert.equal(err.method, 'basic.consume');
      assert.equal(b.isOpen, false);
      assert.equal(a.isOpen, true);
      // And the other way round: an exclusive consumer cannot join a queue that has one.
      const d = await fx.conn.openChannel();
      const err2 = await rejection(d.basicConsume(q, { exclusive: true }, () => {}));
      assert.ok(err2 instanceof ChannelClosedByServer);
      assert.equal(err2.replyCode, 403);
    } finally {
      await a.close();
    }
  });

  test('cancelling mid-stream loses nothing: every message was handled or is still in the queue', async () => {
    const n = 2000;
    const q = await queueWith(n);
    const c = await fx.conn.openChannel();
    try {
      await c.basicQos(50);
      let handled = 0;
      const enough = deferred<void>();
      const consumer = await c.basicConsume(q, {}, (m) => {
        handled++;
        m.ack();
        if (handled === 100) enough.resolve();
      });
      await within(enough.promise, 5000, '100 deliveries');
      await consumer.cancel();
      const atCancel = handled;
      await sleep(100);
      assert.equal(handled, atCancel, 'deliveries after cancel-ok');
      // Deliveries in flight during the cancel were handled (and acked) or given back.
      await waitFor(async () => (await readyCount(c, q)) + handled === n, {
        timeout: 2000,
        what: `ready + ${handled} = ${n}`,
      });
    } finally {
      await c.close();
    }
  });

  test('consumer priority (x-priority argument) reaches the broker', async () => {
    const q = await queueWith(0);
    const c = await fx.conn.openChannel();
    try {
      const low: string[] = [];
      const high: string[] = [];
      await c.basicConsume(q, { noAck: true, arguments: { 'x-priority': 0 } }, (m) => {
        low.push(m.body.toString());
      });
      await c.basicConsume(q, { noAck: true, arguments: { 'x-priority': 10 } }, (m) => {
        high.push(m.body.toString());
      });
      await Promise.all(Array.from({ length: 10 }, (_, i) => fx.ch.basicPublish('', q, Buffer.from(`p${i}`))));
      await waitFor(() => low.length + high.length === 10, { timeout: 2000, what: 'ten deliveries' });
      assert.equal(high.length, 10);
      assert.equal(low.length, 0);
    } finally {
      await c.close();
    }
  });

  test('closing the channel stops its consumers: cancelled resolves without error', async () => {
    const q = await queueWith(0);
    const c = await fx.conn.openChannel();
    const consumer = await c.basicConsume(q, {}, () => {});
    await c.close();
    assert.deepEqual(await within(consumer.cancelled, 1000, 'cancelled'), { serverCancelled: false, error: undefined });
    assert.equal(consumer.isActive, false);
    await consumer.cancel(); // a no-op
  });

  test('a channel error stops its consumers with that error', async () => {
    const q = await queueWith(0);
    const c = await fx.conn.openChannel();
    const consumer = await c.basicConsume(q, {}, () => {});
    const err = await rejection(c.queueDeclare(res.queue('missing'), { passive: true }));
    assert.ok(err instanceof ChannelClosedByServer);
    const info = await within(consumer.cancelled, 1000, 'cancelled');
    assert.equal(info.serverCancelled, false);
    assert.equal(info.error, err);
  });

  test('consuming from a missing queue: 404', async () => {
    const c = await fx.conn.openChannel();
    const err = await rejection(c.basicConsume(res.queue('missing'), {}, () => {}));
    assert.ok(err instanceof ChannelClosedByServer, String(err));
    assert.equal(err.replyCode, 404);
    assert.equal(err.method, 'basic.consume');
  });

  test('server-side cancel: deleting the queue from another channel cancels the consumer', async () => {
    const q = await queueWith(0);
    const c = await fx.conn.openChannel();
    try {
      const consumer = await c.basicConsume(q, {}, () => {});
      const cancelEvent = deferred<{ serverCancelled: boolean; error: unknown }>();
      consumer.on('cancel', (info) => cancelEvent.resolve(info));
      await fx.ch.queueDelete(q);
      const info = await within(cancelEvent.promise, 2000, 'the cancel event');
      assert.deepEqual(info, { serverCancelled: true, error: undefined });
      assert.deepEqual(await consumer.cancelled, info);
      assert.equal(consumer.isActive, false);
      await consumer.cancel(); // a no-op now
      assert.equal(c.isOpen, true);
      const { queue } = await c.queueDeclare('', { exclusive: true });
      assert.match(queue, /^amq\.gen-/);
    } finally {
      await c.close();
    }
  });

  test('a handler that throws is reported as handlerError with the message; the consumer goes on', async () => {
    const q = await queueWith(0);
    const c = await fx.conn.openChannel();
    try {
      const errors: [unknown, string][] = [];
      const seen: string[] = [];
      const consumer = await c.basicConsume(q, {}, async (m) => {
        seen.push(m.body.toString());
        m.ack();
        if (m.body.toString() === 'm0') throw new Error('boom');
      });
      consumer.on('handlerError', (err, m) => errors.push([err, m.body.toString()]));
      await fx.ch.basicPublish('', q, Buffer.from('m0'));
      await fx.ch.basicPublish('', q, Buffer.from('m1'));
      await waitFor(() => seen.length === 2 && errors.length === 1, {
        timeout: 2000,
        what: 'two deliveries and one error',
      });
      assert.equal((errors[0]![0] as Error).message, 'boom');
      assert.equal(errors[0]![1], 'm0');
      assert.deepEqual(seen, ['m0', 'm1']);
    } finally {
      await c.close();
    }
  });

  test('handlerError can be observed for the very first deliveries of a consumer on a non-empty queue', async () => {
    const q = await queueWith(1);
    const c = await fx.conn.openChannel();
    try {
      const errors: unknown[] = [];
      const consumer = await c.basicConsume(q, {}, (m) => {
        m.ack();
        throw new Error('boom');
      });
      consumer.on('handlerError', (err) => errors.push(err));
      await sleep(100);
      assert.equal(errors.length, 1, 'the error of the first delivery was not reported to the listener');
    } finally {
      await c.close();
    }
  });
});

describe('basic.get', () => {
  test('null when empty; messageCount counts what is left; fields are set', async () => {
    const q = await queueWith(0);
    assert.equal(await fx.ch.basicGet(q), null);
    await Promise.all(['a', 'b', 'c'].map((b) => fx.ch.basicPublish('', q, Buffer.from(b), { messageId: b })));
    const c = await fx.conn.openChannel();
    try {
      const m1 = await c.basicGet(q);
      assert.ok(m1);
      assert.equal(m1.body.toString(), 'a');
      assert.equal(m1.messageCount, 2);
      assert.equal(m1.properties.messageId, 'a');
      assert.equal(m1.redelivered, false);
      assert.equal(m1.exchange, '');
      assert.equal(m1.routingKey, q);
      assert.equal(m1.consumerTag, undefined);
      const m2 = await c.basicGet(q, { noAck: true });
      assert.equal(m2?.messageCount, 1);
      assert.equal(m2?.isSettled, true);
      assert.equal(m2?.deliveryTag, m1.deliveryTag + 1);
      const m3 = await c.basicGet(q);
      assert.equal(m3?.messageCount, 0);
      assert.equal(await c.basicGet(q), null);
      m1.ack();
      m3?.ack();
    } finally {
      await c.close();
    }
    assert.equal(await settledReadyCount(fx.ch, q), 0);
  });

  test('a JSON body parses with json()', async () => {
    const q = await queueWith(0);
    await fx.ch.basicPublish('', q, Buffer.from(JSON.stringify({ a: [1, 'x'] })));
    const m = await fx.ch.basicGet(q, { noAck: true });
    assert.deepEqual(m?.json(), { a: [1, 'x'] });
  });
});

describe('ack / nack / reject', () => {
  test('ack removes the message; a second ack is a no-op', async () => {
    const q = await queueWith(1);
    const c = await fx.conn.openChannel();
    const m = await c.basicGet(q);
    assert.ok(m);
    assert.equal(m.ack(), true);
    assert.equal(m.isSettled, true);
    assert.equal(m.ack(), false);
    assert.equal(m.nack(), false);
    await c.close(); // unacked messages would be requeued here
    assert.equal(await settledReadyCount(fx.ch, q), 0);
  });

  for (const kind of ['nack', 'reject'] as const) {
    test(`${kind} with requeue: the message comes back with redelivered set`, async () => {
      const q = await queueWith(1);
      const m = await fx.ch.basicGet(q);
      assert.equal(m?.redelivered, false);
      assert.equal(kind === 'nack' ? m?.nack({ requeue: true }) : m?.reject({ requeue: true }), true);
      const again = await fx.ch.basicGet(q);
      assert.equal(again?.body.toString(), 'm0');
      assert.equal(again?.redelivered, true);
      again?.ack();
    });

    test(`${kind} without requeue: gone, or dead-lettered to the DLX queue with x-death`, async () => {
      const dlq = await queueWith(0);
      const q = await queueWith(1, { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq });
      const plain = await queueWith(1);
      const m = await fx.ch.basicGet(q);
      assert.equal(kind === 'nack' ? m?.nack({ requeue: false }) : m?.reject({ requeue: false }), true);
      const p = await fx.ch.basicGet(plain);
      assert.equal(kind === 'nack' ? p?.nack({ requeue: false }) : p?.reject({ requeue: false }), true);
      assert.equal(await fx.ch.basicGet(plain), null);
      assert.equal(await fx.ch.basicGet(q), null);
      const dead = await fx.ch.basicGet(dlq, { noAck: true });
      assert.equal(dead?.body.toString(), 'm0');
      const xDeath = dead?.properties.headers?.['x-death'];
      assert.ok(Array.isArray(xDeath), `x-death is ${String(xDeath)}`);
      const entry = xDeath[0] as FieldTable;
      assert.equal(entry.queue, q);
      assert.equal(entry.reason, 'rejected');
      assert.equal(entry.count, 1);
      assert.ok(entry.time instanceof Date);
      assert.deepEqual(entry['routing-keys'], [q]);
    });
  }

  test('ack with multiple settles every earlier delivery', async () => {
    const q = await queueWith(3);
    const c = await fx.conn.openChannel();
    const got = [await c.basicGet(q), await c.basicGet(q), await c.basicGet(q)];
    assert.equal(got[2]?.ack({ multiple: true }), true);
    await c.close();
    assert.equal(await settledReadyCount(fx.ch, q), 0);
  });

  test('nack with multiple and requeue returns every earlier delivery', async () => {
    const q = await queueWith(3);
    const c = await fx.conn.openChannel();
    try {
      const got = [await c.basicGet(q), await c.basicGet(q), await c.basicGet(q)];
      assert.equal(got[1]?.nack({ multiple: true, requeue: true }), true);
      // m0 and m1 are back; m2 is still held by this channel. (RabbitMQ requeues asynchronously: even a
      // passive declare on the same channel may answer before the requeue, so poll.)
      await waitFor(async () => (await readyCount(fx.ch, q)) === 2, { timeout: 2000, what: 'two requeued messages' });
      const again = await drain(fx.ch, q);
      assert.deepEqual(
        again.map((m) => [m.body.toString(), m.redelivered]),
        [
          ['m0', true],
          ['m1', true],
        ],
      );
      got[2]?.ack();
    } finally {
      await c.close();
    }
    assert.equal(await settledReadyCount(fx.ch, q), 0);
  });

  test('basic.recover redelivers unacknowledged messages to the consumer, flagged redelivered', async () => {
    const q = await queueWith(2);
    const c = await fx.conn.openChannel();
    try {
      const got: Message[] = [];
      await c.basicConsume(q, {}, (m) => {
        got.push(m);
      });
      await waitFor(() => got.length === 2, { timeout: 2000, what: 'two deliveries' });
      await c.basicRecover({ requeue: true });
      await waitFor(() => got.length === 4, { timeout: 2000, what: 'two redeliveries' });
      assert.deepEqual(
        got.map((m) => [m.body.toString(), m.redelivered]),
        [
          ['m0', false],
          ['m1', false],
          ['m0', true],
          ['m1', true],
        ],
      );
      got[3]!.ack({ multiple: true });
      await sleep(50);
    } finally {
      await c.close();
    }
    assert.equal(await settledReadyCount(fx.ch, q), 0);
  });
});

describe('acknowledgements after the channel is gone', () => {
  test('msg.ack() returns false, throws nothing, and the broker redelivers to another consumer', async () => {
    const q = await queueWith(1);
    const a = await fx.conn.openChannel();
    const held = deferred<Message>();
    await a.basicConsume(q, {}, (m) => held.resolve(m));
    const m = await within(held.promise, 2000, 'the delivery');
    await a.close();
    assert.equal(m.ack(), false);
    assert.equal(m.nack(), false);
    assert.equal(m.reject(), false);

    const b = await fx.conn.openChannel();
    try {
      const [again] = await consumeN(b, q, 1);
      assert.equal(again?.body.toString(), 'm0');
      assert.equal(again?.redelivered, true);
    } finally {
      await b.close();
    }
  });

  test('a stale ack is not sent on a new channel that reuses the id (which would be a 406 there)', async () => {
    // channel_max=1 forces the next channel onto the same id (ids are otherwise handed out round-robin).
    const own = await connect(`${AMQP_URL}?channel_max=1`);
    try {
      const q = await queueWith(1);
      const a = await own.openChannel();
      const m = await a.basicGet(q);
      assert.ok(m);
      const id = a.id;
      await a.close();
      const b = await own.openChannel();
      assert.equal(b.id, id);
      assert.equal(m.ack(), false);
      // A round trip on b: had the ack gone out on b, the broker would have closed b with 406.
      await b.queueDeclare(q, { passive: true });
      await sleep(50);
      assert.equal(b.isOpen, true);
      const again = await b.basicGet(q, { noAck: true });
      assert.equal(again?.redelivered, true);
    } finally {
      await own.close();
    }
  });

  test('acks after the connection is gone are no-ops too', async () => {
    const own = await connect(AMQP_URL);
    const q = await queueWith(1);
    const a = await own.openChannel();
    const m = await a.basicGet(q);
    await own.close();
    assert.equal(m?.ack(), false);
    await waitFor(async () => (await readyCount(fx.ch, q)) === 1, {
      timeout: 2000,
      what: 'the message to be requeued',
    });
    assert.equal(await settledReadyCount(fx.ch, q), 1);
  });
});

describe('what RabbitMQ 3.10 does not implement is a typed connection error (540)', () => {
  const cases: [string, (ch: Channel) => Promise<unknown>, string][] = [
    ['basic.qos with prefetchSize', (c) => c.basicQos(1, { prefetchSize: 1000 }), 'basic.qos'],
    ['basic.recover without requeue', (c) => c.basicRecover({ requeue: false }), 'basic.recover'],
  ];
  for (const [what, run, method] of cases) {
    test(what, async () => {
      const own = await connect(AMQP_URL);
      try {
        const c = await own.openChannel();
        const err = await rejection(run(c));
        assert.ok(err instanceof ConnectionClosedByServer, String(err));
        assert.equal(err.replyCode, 540);
        assert.equal(err.method, method);
        assert.equal(err.recoverable, false);
        assert.equal(await own.closed, err);
      } finally {
        await own.close();
      }
    });
  }
});
