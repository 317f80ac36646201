/**
 * Queue methods against the real broker: declare (server-named, flags, arguments, passive counts,
 * inequivalent arguments, exclusive locking), bind/unbind, purge and delete.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { type Channel, ChannelClosedByServer, connect, TypedValue } from '../../src/index.js';
import {
  AMQP_URL,
  type CtlTable,
  ctlTable,
  deferred,
  drain,
  rabbitmqctlJson,
  readyCount,
  rejection,
  brokerFixture,
} from '../support/broker.js';
import { waitFor, within } from '../support/wait.js';

/** One connection and a confirm-mode channel `fx.ch` for the whole file, to set up and inspect. */
const fx = brokerFixture();
const { res } = fx;

async function closedWith(channel: Channel, p: Promise<unknown>, code: number, method: string): Promise<void> {
  const err = await rejection(p);
  assert.ok(err instanceof ChannelClosedByServer, String(err));
  assert.equal(err.replyCode, code, err.message);
  assert.equal(err.method, method);
  assert.equal(channel.isOpen, false);
}

async function publishN(queue: string, n: number, prefix = 'm'): Promise<void> {
  await Promise.all(Array.from({ length: n }, (_, i) => fx.ch.basicPublish('', queue, Buffer.from(`${prefix}${i}`))));
}

interface CtlQueue {
  name: string;
  durable: boolean;
  auto_delete: boolean;
  exclusive: boolean;
  arguments: CtlTable;
}

describe('queue.declare', () => {
  test('an empty name gets a server-generated amq.gen- name that really exists', async () => {
    const { queue, messageCount, consumerCount } = await fx.ch.queueDeclare('', { exclusive: true });
    res.trackQueue(queue);
    assert.match(queue, /^amq\.gen-[\w-]+$/);
    assert.equal(messageCount, 0);
    assert.equal(consumerCount, 0);
    assert.equal((await fx.ch.queueDeclare(queue, { passive: true })).queue, queue);
  });

  test('flags and arguments as the broker lists them', async () => {
    const durable = res.queue('durable');
    const auto = res.queue('auto');
    const excl = res.queue('excl');
    const withArgs = res.queue('args');
    await fx.ch.queueDeclare(durable, { durable: true });
    await fx.ch.queueDeclare(auto, { autoDelete: true });
    await fx.ch.queueDeclare(excl, { exclusive: true });
    await fx.ch.queueDeclare(withArgs, {
      arguments: { 'x-message-ttl': 60000, 'x-max-length': 10, 'x-dead-letter-exchange': 'amq.fanout' },
    });
    const rows = await rabbitmqctlJson<CtlQueue[]>(
      'list_queues',
      'name',
      'durable',
      'auto_delete',
      'exclusive',
      'arguments',
    );
    const view = (name: string) => {
      const row = rows.find((r) => r.name === name);
      assert.ok(row, `${name} is not listed by the broker`);
      return {
        durable: row.durable,
        autoDelete: row.auto_delete,
        exclusive: row.exclusive,
        args: ctlTable(row.arguments),
      };
    };
    assert.deepEqual(view(durable), { durable: true, autoDelete: false, exclusive: false, args: {} });
    assert.deepEqual(view(auto), { durable: false, autoDelete: true, exclusive: false, args: {} });
    assert.deepEqual(view(excl), { durable: false, autoDelete: false, exclusive: true, args: {} });
    assert.deepEqual(view(withArgs), {
      durable: false,
      autoDelete: false,
      exclusive: false,
      args: { 'x-message-ttl': 60000, 'x-max-length': 10, 'x-dead-letter-exchange': 'amq.fanout' },
    });
  });

  test('x-max-length is enforced: the oldest message is dropped', async () => {
    const q = res.queue();
    await fx.ch.queueDeclare(q, { arguments: { 'x-max-length': 2 } });
    await publishN(q, 3);
    const got = await drain(fx.ch, q);
    assert.deepEqual(
      got.map((m) => m.body.toString()),
      ['m1', 'm2'],
    );
  });

  test('x-message-ttl is enforced: an expired message is never delivered', async () => {
    const q = res.queue();
    await fx.ch.queueDeclare(q, { arguments: { 'x-message-ttl': new TypedValue('l', 1) } });
    await publishN(q, 2);
    await sleep(30);
    assert.equal(await fx.ch.basicGet(q), null);
  });

  test('passive declare reports ready messages and consumers', async () => {
    const q = res.queue();
    await fx.ch.queueDeclare(q);
    await publishN(q, 3);
    const c = await fx.conn.openChannel();
    await c.basicQos(1);
    const first = deferred<void>();
    await c.basicConsume(q, {}, () => first.resolve()); // holds one unacked message
    await within(first.promise, 2000, 'the first delivery');
    const r = await fx.ch.queueDeclare(q, { passive: true });
    assert.deepEqual(r, { queue: q, messageCount: 2, consumerCount: 1 });
    await c.close();
    // The closed channel's unacked message is requeued asynchronously.
    await waitFor(async () => (await readyCount(fx.ch, q)) === 3, {
      timeout: 2000,
      what: 'the held message to be requeued',
    });
    const again = await fx.ch.queueDeclare(q, { passive: true });
    assert.deepEqual(again, { queue: q, messageCount: 3, consumerCount: 0 });
  });

  test('passive on a missing queue: 404', async () => {
    const c = await fx.conn.openChannel();
    await closedWith(c, c.queueDeclare(res.queue('missing'), { passive: true }), 404, 'queue.declare');
  });

  test('different arguments: 406 with method queue.declare; a second channel on the same connection works', async () => {
    const q = res.queue();
    await fx.ch.queueDeclare(q, { arguments: { 'x-max-length': 5 } });
    const c = await fx.conn.openChannel();
    const closeEvent = deferred<unknown>();
    c.on('close', (e) => closeEvent.resolve(e));
    const err = await rejection(c.queueDeclare(q, { arguments: { 'x-max-length': 6 } }));
    assert.ok(err instanceof ChannelClosedByServer, String(err));
    assert.equal(err.replyCode, 406);
    assert.equal(err.method, 'queue.declare');
    assert.match(err.replyText, /PRECONDITION_FAILED/);
    assert.equal(await within(closeEvent.promise, 2000, 'close event'), err);
    assert.equal(fx.conn.isOpen, true);
    const other = await fx.conn.openChannel();
    const r = await other.queueDeclare(q, { arguments: { 'x-max-length': 5 } });
    assert.equal(r.queue, q);
    await other.close();
  });

  test('different durability: 406', async () => {
    const q = res.queue();
    await fx.ch.queueDeclare(q, { durable: false });
    const c = await fx.conn.openChannel();
    await closedWith(c, c.queueDeclare(q, { durable: true }), 406, 'queue.declare');
  });

  test("another connection's exclusive queue: 405 RESOURCE_LOCKED", async () => {
    const q = res.queue();
    await fx.ch.queueDeclare(q, { exclusive: true });
    const other = await connect(AMQP_URL);
    try {
      const c = await other.openChannel();
      await closedWith(c, c.queueDeclare(q, { passive: true }), 405, 'queue.declare');
    } finally {
      await other.close();
    }
  });

  test('autoDelete: the queue goes away when its last consumer is cancelled', async () => {
    const q = res.queue();
    await fx.ch.queueDeclare(q, { autoDelete: true });
    const consumer = await fx.ch.basicConsume(q, { noAck: true }, () => {});
    await consumer.cancel();
    const c = await fx.conn.openChannel();
    await closedWith(c, c.queueDeclare(q, { passive: true }), 404, 'queue.declare');
  });
});

describe('queue.bind / queue.unbind', () => {
  test('only matching routing keys arrive; after unbind nothing does', async () => {
    const x = res.exchange();
    const q = res.queue();
    await fx.ch.exchangeDeclare(x, 'direct');
    await fx.ch.queueDeclare(q);
    await fx.ch.queueBind(q, x, 'a');
    await fx.ch.basicPublish(x, 'a', Buffer.from('to a'));
    await fx.ch.basicPublish(x, 'b', Buffer.from('to b'));
    const got = await drain(fx.ch, q);
    assert.deepEqual(
      got.map((m) => [m.body.toString(), m.exchange, m.routingKey]),
      [['to a', x, 'a']],
    );
    await fx.ch.queueUnbind(q, x, 'a');
    await fx.ch.basicPublish(x, 'a', Buffer.from('to a again'));
    assert.equal(await readyCount(fx.ch, q), 0);
  });

  test('topic patterns', async () => {
    const x = res.exchange();
    const q = res.queue();
    await fx.ch.exchangeDeclare(x, 'topic');
    await fx.ch.queueDeclare(q);
    await fx.ch.queueBind(q, x, 'logs.*.error');
    await fx.ch.queueBind(q, x, 'audit.#');
    for (const rk of ['logs.db.error', 'logs.db.info', 'logs.error', 'audit', 'audit.a.b', 'other']) {
      await fx.ch.basicPublish(x, rk, Buffer.from(rk));
    }
    const got = await drain(fx.ch, q);
    assert.deepEqual(got.map((m) => m.body.toString()).sort(), ['audit', 'audit.a.b', 'logs.db.error']);
  });

  test('binding arguments: headers exchange with x-match any', async () => {
    const x = res.exchange();
    const q = res.queue();
    await fx.ch.exchangeDeclare(x, 'headers');
    await fx.ch.queueDeclare(q);
    const args = { 'x-match': 'any', region: 'eu', tier: new TypedValue('s', 1) };
    await fx.ch.queueBind(q, x, '', args);
    await fx.ch.basicPublish(x, '', Buffer.from('eu'), { headers: { region: 'eu' } });
    await fx.ch.basicPublish(x, '', Buffer.from('tier1'), { headers: { tier: 1, region: 'us' } });
    await fx.ch.basicPublish(x, '', Buffer.from('none'), { headers: { region: 'us', tier: 2 } });
    const got = await drain(fx.ch, q);
    assert.deepEqual(
      got.map((m) => m.body.toString()),
      ['eu', 'tier1'],
    );
    await fx.ch.queueUnbind(q, x, '', args);
    await fx.ch.basicPublish(x, '', Buffer.from('eu'), { headers: { region: 'eu' } });
    assert.equal(await readyCount(fx.ch, q), 0);
  });

  test('binding a missing queue: 404', async () => {
    const c = await fx.conn.openChannel();
    await closedWith(c, c.queueBind(res.queue('missing'), 'amq.direct', 'k'), 404, 'queue.bind');
  });
});

describe('queue.purge', () => {
  test('returns how many it removed and leaves the queue empty', async () => {
    const q = res.queue();
    await fx.ch.queueDeclare(q);
    await publishN(q, 7);
    assert.deepEqual(await fx.ch.queuePurge(q), { messageCount: 7 });
    assert.equal(await readyCount(fx.ch, q), 0);
    assert.equal(await fx.ch.basicGet(q), null);
    assert.deepEqual(await fx.ch.queuePurge(q), { messageCount: 0 });
  });
});

describe('queue.delete', () => {
  test('returns how many messages the queue held; then it is gone', async () => {
    const q = res.queue();
    await fx.ch.queueDeclare(q);
    await publishN(q, 4);
    assert.deepEqual(await fx.ch.queueDelete(q), { messageCount: 4 });
    const c = await fx.conn.openChannel();
    await closedWith(c, c.queueDeclare(q, { passive: true }), 404, 'queue.declare');
  });

  test('ifEmpty on a non-empty queue: 406 and the queue keeps its messages', async () => {
    const q = res.queue();
    await fx.ch.queueDeclare(q);
    await publishN(q, 2);
    const c = await fx.conn.openChannel();
    await closedWith(c, c.queueDelete(q, { ifEmpty: true }), 406, 'queue.delete');
    assert.equal(await readyCount(fx.ch, q), 2);
  });

  test('ifUnused on a queue with a consumer: 406; once the consumer is gone it deletes', async () => {
    const q = res.queue();
    await fx.ch.queueDeclare(q);
    const consumer = await fx.ch.basicConsume(q, { noAck: true }, () => {});
    const c = await fx.conn.openChannel();
    await closedWith(c, c.queueDelete(q, { ifUnused: true }), 406, 'queue.delete');
    await consumer.cancel();
    assert.deepEqual(await fx.ch.queueDelete(q, { ifUnused: true, ifEmpty: true }), { messageCount: 0 });
  });
});
