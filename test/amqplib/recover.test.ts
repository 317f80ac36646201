/**
 * warren/amqplib with `recover`: the same amqplib application code survives a cut connection. Channels
 * are not closed; their exchanges, queues (server-named ones under their new names), bindings,
 * prefetch and consumers come back; publishes made meanwhile and unconfirmed ones are delivered;
 * acknowledgements of messages from the dead connection are dropped instead of closing the channel.
 * Without `recover` the model closes as amqplib's does.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import amqp, { type ChannelModel, type ConsumeMessage } from '../../src/amqplib/index.js';
import { AMQP_URL, uniqueName } from '../support/broker.js';
import { startProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { waitFor, nextEvent } from '../support/wait.js';

describe('warren/amqplib recover', () => {
  let proxy: TcpProxy;
  const models: ChannelModel[] = [];
  before(async () => {
    const u = new URL(AMQP_URL);
    proxy = await startProxy({ target: { host: u.hostname, port: Number(u.port || 5672) } });
  });
  after(async () => {
    for (const m of models) await m.close().catch(() => {});
    await proxy.close();
  });

  test('a cut connection: topology, consumers, prefetch and confirm publishes come back; nothing closes', async () => {
    const conn = await amqp.connect(proxy.url(), { recover: { initialDelay: 20, maxDelay: 100 } });
    models.push(conn);
    const events: string[] = [];
    conn.on('close', () => events.push('model close'));
    conn.on('disconnect', () => events.push('disconnect'));
    conn.on('reconnect', () => events.push('reconnect'));
    const ch = await conn.createChannel();
    const pub = await conn.createConfirmChannel();
    for (const c of [ch, pub]) c.on('close', () => events.push('channel close'));
    const ex = uniqueName('recover-ex');
    await ch.assertExchange(ex, 'direct', { durable: false, autoDelete: false });
    const { queue } = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue(queue, ex, 'k');
    await ch.prefetch(1);
    const got: ConsumeMessage[] = [];
    const { consumerTag } = await ch.consume(queue, (m) => {
      if (m !== null) got.push(m);
    });

    const confirmed: (Error | null)[] = [];
    pub.publish(ex, 'k', Buffer.from('before'), {}, (err) => confirmed.push(err));
    await waitFor(() => got.length === 1, { timeout: 5000, what: 'the first delivery' });
    const beforeCut = got[0]!;

    proxy.cutAll();
    // Published while the channel is down: held, then sent on the new channel.
    pub.publish(ex, 'k', Buffer.from('during'), {}, (err) => confirmed.push(err));
    await nextEvent(conn, 'reconnect');
    // The ack of a message from the dead connection is dropped (the broker requeued it), not sent
    // on the new channel where its tag would be unknown (406).
    ch.ack(beforeCut);
    pub.publish(ex, 'k', Buffer.from('after'), {}, (err) => confirmed.push(err));
    await pub.waitForConfirms();
    assert.deepEqual(confirmed, [null, null, null]);

    // prefetch(1) came back: one unacked delivery at a time.
    await waitFor(() => got.length === 2, { timeout: 5000, what: 'a delivery after the reconnect' });
    await sleep(150);
    assert.equal(got.length, 2, 'prefetch 1 is in force again');
    ch.ack(got[1]!);
    await waitFor(() => got.length === 3, { timeout: 5000, what: 'the third delivery' });
    ch.ack(got[2]!);
    // 'before' was unacked in the old exclusive queue, which the broker deleted with the connection.
    assert.deepEqual(
      got.map((m) => m.content.toString()),
      ['before', 'during', 'after'],
    );
    assert.ok(
      got.slice(1).every((m) => m.fields.consumerTag === consumerTag),
      'the consumer keeps its tag',
    );
    assert.ok(!events.includes('channel close') && !events.includes('model close'), events.join(', '));
    assert.deepEqual(
      events.filter((e) => e === 'disconnect' || e === 'reconnect'),
      ['disconnect', 'reconnect'],
    );
    // The server-named queue has a new name now; the channel maps the old one for the application.
    assert.equal((await ch.checkQueue(queue)).consumerCount, 1);
    await ch.deleteExchange(ex);
    await conn.close();
    assert.ok(events.includes('model close'));
  });

  test('operations made during the outage wait and complete; a surviving server-named queue is used again', async () => {
    const conn = await amqp.connect(proxy.url(), { recover: { initialDelay: 20, maxDelay: 100 } });
    models.push(conn);
    const ch = await conn.createChannel();
    const { queue } = await ch.assertQueue('', { exclusive: false, autoDelete: false, durable: false });
    ch.sendToQueue(queue, Buffer.from('kept'));
    await sleep(50);
    proxy.cutAll();
    const declared = ch.assertQueue(uniqueName('recover-during'), { exclusive: true });
    await nextEvent(conn, 'reconnect');
    assert.match((await declared).queue, /recover-during/);
    // Not exclusive, so it outlived the connection: the same queue, with its message, not a new one.
    assert.equal((await ch.checkQueue(queue)).queue, queue);
    const m = await ch.get(queue, { noAck: true });
    assert.ok(m !== false);
    assert.equal(m.content.toString(), 'kept');
    await ch.deleteQueue(queue);
    await conn.close();
  });

  test("without recover a cut closes the channels and the model, with the error on 'close'", async () => {
    const conn = await amqp.connect(proxy.url());
    models.push(conn);
    const ch = await conn.createChannel();
    const chClosed = nextEvent(ch, 'close');
    const closed = nextEvent(conn, 'close');
    proxy.cutAll();
    const [err] = await closed;
    await chClosed;
    assert.ok(err instanceof Error);
    assert.throws(
      () => ch.sendToQueue('q', Buffer.from('x')),
      (e) => (e as Error).name === 'IllegalOperationError',
    );
  });

  test("close() during an outage stops recovering: 'close', channels closed, no reconnect", async () => {
    await proxy.refuse(false);
    const conn = await amqp.connect(proxy.url(), { recover: { initialDelay: 200, maxDelay: 200 } });
    const ch = await conn.createChannel();
    await proxy.refuse(true, 'reset');
    proxy.cutAll();
    await nextEvent(conn, 'disconnect');
    const chClosed = nextEvent(ch, 'close');
    await conn.close();
    await chClosed;
    await proxy.refuse(false);
    await sleep(100); // an attempt started before close() may still reach the proxy
    const accepted = proxy.acceptedCount;
    await sleep(600);
    assert.equal(proxy.acceptedCount, accepted, 'no reconnect attempt after close()');
  });
});
