/**
 * The robust client's publisher and topology methods against the real broker: confirms, nacks,
 * returns, a broker channel close caused by one publish, the unconfirmed limit, abort, drain on
 * close, ClosedError after close, `await using`, and isolation of a failing declare.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortError,
  ChannelClosedByServer,
  ClosedError,
  createClient,
  HandshakeError,
  MessageReturned,
  PublishNacked,
} from '../../src/index.js';
import { withChannel } from '../support/broker.js';
import { AMQP_URL, fileFixture } from '../support/client.js';
import { waitFor, nextEvent } from '../support/wait.js';

const { clients, resources } = fileFixture();

async function readyCount(queue: string): Promise<number> {
  return withChannel(async (ch) => (await ch.queueDeclare(queue, { passive: true })).messageCount);
}

describe('publisher', () => {
  test('publish resolves once confirmed; the message is in the queue', async () => {
    const client = clients.make({ name: 'pub-basic' });
    const queue = resources.queue('pub');
    await client.declareQueue(queue);
    const pub = client.publisher();
    await pub.publish('', queue, Buffer.from('one'), { messageId: 'm1' });
    await pub.publish('', queue, 'two (a string body)');
    assert.equal(pub.unconfirmedCount, 0);
    assert.equal(await readyCount(queue), 2);
  });

  test('a nack rejects with PublishNacked; a mandatory unroutable message with MessageReturned', async () => {
    const client = clients.make({ name: 'pub-nack' });
    const queue = resources.queue('full');
    await client.declareQueue(queue, { arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } });
    const pub = client.publisher();
    await pub.publish('', queue, 'fits');
    await assert.rejects(pub.publish('', queue, 'overflows'), PublishNacked);
    const err = await pub.publish('', resources.queue('nobody'), 'lost?', {}, { mandatory: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof MessageReturned, `expected MessageReturned, got ${String(err)}`);
    assert.equal(err.replyCode, 312);
    // The publisher goes on working.
    await pub.publish('', resources.queue('unrouted'), 'fine without mandatory');
  });

  test('a publish to a missing exchange rejects alone; others on the same publisher still confirm', async () => {
    const client = clients.make({ name: 'pub-404' });
    const queue = resources.queue('ok');
    await client.declareQueue(queue);
    const pub = client.publisher();
    const good = Array.from({ length: 20 }, (_, i) => pub.publish('', queue, `m${i}`));
    const bad = pub.publish(resources.exchange('missing'), 'rk', 'x');
    const more = Array.from({ length: 20 }, (_, i) => pub.publish('', queue, `n${i}`));
    const err = await bad.then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof ChannelClosedByServer, `expected ChannelClosedByServer, got ${String(err)}`);
    assert.equal(err.replyCode, 404);
    await Promise.all([...good, ...more]);
    // Messages sent before the bad one may have been stored without their confirm reaching us before
    // the channel closed: they are sent again (at-least-once). None is lost.
    const bodies = await withChannel(async (ch) => {
      const out: string[] = [];
      for (
        let m = await ch.basicGet(queue, { noAck: true });
        m !== null;
        m = await ch.basicGet(queue, { noAck: true })
      ) {
        out.push(m.body.toString());
      }
      return out;
    });
    const expected = [
      ...Array.from({ length: 20 }, (_, i) => `m${i}`),
      ...Array.from({ length: 20 }, (_, i) => `n${i}`),
    ];
    assert.deepEqual([...new Set(bodies)].sort(), expected.sort());
    assert.ok(bodies.length <= 60, `at most one extra copy each, got ${bodies.length}`);
  });

  test('at most maxUnconfirmed messages are in flight; the rest wait', async () => {
    const client = clients.make({ name: 'pub-bound' });
    const queue = resources.queue('bound');
    await client.declareQueue(queue);
    const pub = client.publisher({ maxUnconfirmed: 5 });
    let highest = 0;
    const all: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      all.push(pub.publish('', queue, `m${i}`));
      highest = Math.max(highest, pub.unconfirmedCount);
    }
    const sampler = setInterval(() => {
      highest = Math.max(highest, pub.unconfirmedCount);
    }, 1);
    await Promise.all(all);
    clearInterval(sampler);
    assert.ok(highest <= 5, `at most 5 in flight, saw ${highest}`);
    assert.ok(highest >= 1);
    assert.equal(pub.pendingCount, 0);
    assert.equal(await readyCount(queue), 200);
  });

  test('a waiting publish can be abandoned with an AbortSignal; it is never sent', async () => {
    // Nothing listens on port 1: the client keeps trying and the publish waits.
    const client = clients.make({
      urls: ['amqp://guest:guest@127.0.0.1:1'],
      backoff: { initialDelay: 50, maxDelay: 100 },
    });
    const pub = client.publisher();
    const controller = new AbortController();
    const waiting = pub.publish('', 'q', 'x', {}, { signal: controller.signal });
    await sleep(50);
    assert.equal(pub.pendingCount, 1);
    controller.abort();
    await assert.rejects(waiting, AbortError);
    assert.equal(pub.pendingCount, 0);
    const already = AbortSignal.abort();
    await assert.rejects(pub.publish('', 'q', 'x', {}, { signal: already }), AbortError);
    await client.close({ timeout: 500 });
  });

  test('close() waits for in-flight publishes; afterwards every method rejects with ClosedError', async () => {
    const client = createClient({ urls: [AMQP_URL], name: 'pub-close' });
    const queue = resources.queue('drain');
    await client.declareQueue(queue);
    const pub = client.publisher();
    const results = Array.from({ length: 300 }, (_, i) =>
      pub.publish('', queue, `m${i}`).then(
        () => 'ok',
        (e: unknown) => String(e),
      ),
    );
    await client.close();
    assert.deepEqual(new Set(await Promise.all(results)), new Set(['ok']));
    assert.equal(await readyCount(queue), 300);
    assert.ok(client.isClosed);
    await assert.rejects(pub.publish('', queue, 'late'), ClosedError);
    await assert.rejects(client.declareQueue(queue), ClosedError);
    await assert.rejects(client.bindQueue(queue, 'amq.direct', 'k'), ClosedError);
    await assert.rejects(client.rpc(queue, 'x'), ClosedError);
    await assert.rejects(client.ready(), ClosedError);
    assert.throws(() => client.publisher(), ClosedError);
    assert.throws(() => client.consume(queue, () => {}), ClosedError);
    assert.throws(() => client.consumer(queue), ClosedError);
    await client.close(); // idempotent
  });

  test('await using closes the client at the end of the scope', async () => {
    assert.equal(typeof Symbol.asyncDispose, 'symbol', 'Node 20.20 has Symbol.asyncDispose');
    let outside: ReturnType<typeof createClient> | undefined;
    {
      await using client = createClient(AMQP_URL, { name: 'pub-using' });
      outside = client;
      await client.ready();
      assert.ok(client.isConnected);
    }
    assert.ok(outside.isClosed);
    assert.ok(!outside.isConnected);
  });

  test('a refused declare closes only its own short-lived channel', async () => {
    const client = clients.make({ name: 'pub-isolation' });
    const queue = resources.queue('iso');
    await client.declareQueue(queue, { durable: false });
    const seen: string[] = [];
    const sub = client.consume(queue, (msg) => {
      seen.push(msg.body.toString());
    });
    await sub.ready();
    const pub = client.publisher();
    await pub.publish('', queue, 'before');
    const err = await client.declareQueue(queue, { durable: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof ChannelClosedByServer, `expected a 406, got ${String(err)}`);
    assert.equal(err.replyCode, 406);
    await client.declareQueue(resources.queue('passive-miss'), { passive: true }).then(
      () => assert.fail('a passive declare of a missing queue must fail'),
      (e: unknown) => assert.ok(e instanceof ChannelClosedByServer && e.replyCode === 404),
    );
    await pub.publish('', queue, 'after');
    await waitFor(() => seen.length === 2, { what: 'both messages' });
    assert.deepEqual(seen, ['before', 'after']);
    assert.ok(sub.isActive);
    const recorded = client.recordedTopology;
    assert.equal(recorded.queues, 1, 'the refused and passive declares were not recorded');
  });

  test('deleting and unbinding remove records; an auto-delete queue is forgotten with its last consumer', async () => {
    const client = clients.make({ name: 'records' });
    const exchange = resources.exchange('records');
    const queue = resources.queue('records');
    const transient = resources.queue('records-auto');
    await client.declareExchange(exchange, 'direct');
    await client.declareQueue(queue);
    await client.bindQueue(queue, exchange, 'a');
    await client.bindQueue(queue, exchange, 'b');
    assert.deepEqual(client.recordedTopology, { exchanges: 1, queues: 1, bindings: 2 });
    await client.unbindQueue(queue, exchange, 'a');
    assert.deepEqual(client.recordedTopology, { exchanges: 1, queues: 1, bindings: 1 });
    await client.deleteExchange(exchange);
    assert.deepEqual(client.recordedTopology, { exchanges: 0, queues: 1, bindings: 0 });
    await client.deleteQueue(queue);
    assert.deepEqual(client.recordedTopology, { exchanges: 0, queues: 0, bindings: 0 });
    await client.declareQueue(transient, { autoDelete: true });
    const sub = client.consume(transient, () => {});
    await sub.ready();
    assert.equal(client.recordedTopology.queues, 1);
    await sub.cancel();
    assert.equal(client.recordedTopology.queues, 0, 'the broker deleted it with its last consumer');
  });

  test('a refused virtual host is fatal too', async () => {
    const client = createClient('amqp://guest:guest@127.0.0.1:5672/warren-no-such-vhost');
    const [err] = await nextEvent<[Error]>(client, 'error');
    assert.ok(err instanceof HandshakeError, String(err));
    await client.close();
  });
});
