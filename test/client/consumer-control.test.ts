/**
 * Consumer control against the real broker: noAck, consumer priority, runtime setPrefetch (kept
 * across reconnects), single-active-consumer with its 'active' event, and stream consumers that
 * resume after the last message handled across forced cuts (every message handled exactly once).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError } from '../../src/index.js';
import { type CtlTable, ctlTable, rabbitmqctlJson, withChannel } from '../support/broker.js';
import { fileFixture } from '../support/client.js';
import { startProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait.js';

const { clients, resources } = fileFixture();

const fast = { backoff: { initialDelay: 20, maxDelay: 200 } };

interface ConsumerRow {
  queue_name: string;
  consumer_tag: string;
  ack_required: boolean;
  prefetch_count: number;
  active: boolean;
  arguments: CtlTable | Record<string, unknown>;
}

async function consumersOf(queue: string): Promise<ConsumerRow[]> {
  const rows = await rabbitmqctlJson<ConsumerRow[]>(
    'list_consumers',
    'queue_name',
    'consumer_tag',
    'ack_required',
    'prefetch_count',
    'active',
    'arguments',
  );
  return rows.filter((r) => r.queue_name === queue);
}

async function queueCounts(queue: string): Promise<{ ready: number; unacked: number }> {
  const rows = await rabbitmqctlJson<{ name: string; messages_ready: number; messages_unacknowledged: number }[]>(
    'list_queues',
    'name',
    'messages_ready',
    'messages_unacknowledged',
  );
  const row = rows.find((r) => r.name === queue);
  assert.ok(row, `no queue ${queue}`);
  return { ready: row.messages_ready, unacked: row.messages_unacknowledged };
}

async function fill(queue: string, n: number, from = 0): Promise<void> {
  await withChannel(async (ch) => {
    await ch.confirmSelect();
    await Promise.all(Array.from({ length: n }, (_, i) => ch.basicPublish('', queue, Buffer.from(`m${from + i}`))));
  });
}

describe('noAck', () => {
  test('the broker forgets each message as it sends it: nothing unacked while handlers run', async () => {
    const client = clients.make({ name: 'noack', ...fast });
    const queue = resources.queue('noack');
    await client.declareQueue(queue);
    await fill(queue, 5);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const seen: string[] = [];
    const sub = client.consume(
      queue,
      async (msg) => {
        seen.push(msg.body.toString());
        await gate;
      },
      { noAck: true, prefetch: 1 },
    );
    await waitFor(() => seen.length === 1, { what: 'the first delivery' });
    const [row] = await consumersOf(queue);
    assert.equal(row?.ack_required, false);
    // With acks, prefetch 1 would hold 4 ready and 1 unacked; with noAck all 5 left the queue.
    assert.deepEqual(await queueCounts(queue), { ready: 0, unacked: 0 });
    release();
    await waitFor(() => seen.length === 5, { what: 'all five handled' });
    await sub.cancel();
  });

  test('the iterator takes noAck too', async () => {
    const client = clients.make({ name: 'noack-iter', ...fast });
    const queue = resources.queue('noack-iter');
    await client.declareQueue(queue);
    await fill(queue, 3);
    const messages = client.consumer(queue, { noAck: true, prefetch: 1 });
    const got: string[] = [];
    for await (const msg of messages) {
      got.push(msg.body.toString());
      if (got.length === 1) assert.deepEqual(await queueCounts(queue), { ready: 0, unacked: 0 });
      if (got.length === 3) break;
    }
    assert.deepEqual(got, ['m0', 'm1', 'm2']);
    assert.deepEqual(await queueCounts(queue), { ready: 0, unacked: 0 }, 'nothing went back on break');
  });
});

describe('consumer priority', () => {
  test('priority becomes x-priority; the higher-priority consumer gets the messages', async () => {
    const client = clients.make({ name: 'prio', ...fast });
    const queue = resources.queue('prio');
    await client.declareQueue(queue);
    const got: Record<string, number> = { low: 0, high: 0 };
    const low = client.consume(queue, () => void got.low!++, { priority: 1 });
    // Prefetch large enough that the high-priority consumer can always take more.
    const high = client.consume(queue, () => void got.high!++, { priority: 10, prefetch: 100 });
    await Promise.all([low.ready(), high.ready()]);
    const priorities = (await consumersOf(queue))
      .map((r) => (Array.isArray(r.arguments) ? ctlTable(r.arguments) : r.arguments)['x-priority'])
      .sort();
    assert.deepEqual(priorities, [1, 10]);
    await fill(queue, 20);
    await waitFor(() => got.low! + got.high! === 20, { what: '20 handled' });
    assert.deepEqual(got, { low: 0, high: 20 });
    assert.throws(() => client.consume(queue, () => {}, { priority: 1.5 }), InvalidArgumentError);
    await Promise.all([low.cancel(), high.cancel()]);
  });
});

describe('setPrefetch', () => {
  test('applies to the live consumer at once and is kept after a reconnect', async () => {
    const proxy = await startProxy({ target: { host: '127.0.0.1', port: 5672 } });
    try {
      const client = clients.make({ name: 'prefetch', urls: [proxy.url()], ...fast });
      const queue = resources.queue('prefetch');
      await client.declareQueue(queue);
      await fill(queue, 20);
      const gates: (() => void)[] = [];
      let flowing = false;
      const handled: string[] = [];
      const sub = client.consume(
        queue,
        async (msg) => {
          if (!flowing) await new Promise<void>((r) => gates.push(r));
          handled.push(msg.body.toString());
        },
        { prefetch: 2 },
      );
      await sub.ready();
      await waitFor(async () => (await queueCounts(queue)).unacked === 2, { what: '2 unacked', interval: 100 });
      await sub.setPrefetch(6);
      assert.equal(sub.prefetchCount, 6);
      // The 2 of the old consumer stay in hand beside the 6 the new prefetch lets through.
      let unacked = 0;
      await waitFor(async () => (unacked = (await queueCounts(queue)).unacked) === 8, {
        what: '8 unacked',
        interval: 100,
      }).catch((err: Error) => assert.fail(`${err.message}: ${unacked}`));
      assert.deepEqual(
        (await consumersOf(queue)).map((r) => r.prefetch_count),
        [6],
        'one consumer, with the new prefetch',
      );
      // The messages delivered to the old consumer are still acked on the same channel.
      flowing = true;
      for (const g of gates.splice(0)) g();
      await waitFor(() => handled.length === 20, { what: 'all 20 handled' });
      assert.deepEqual(await queueCounts(queue), { ready: 0, unacked: 0 });
      const reconnected = new Promise((r) => client.once('connect', r));
      proxy.cutAll();
      await reconnected;
      await sub.ready();
      await waitFor(async () => (await consumersOf(queue)).map((r) => r.prefetch_count).join() === '6', {
        what: 'prefetch 6 after the reconnect',
        interval: 100,
      });
      await assert.rejects(sub.setPrefetch(0), InvalidArgumentError);
      await sub.cancel();
    } finally {
      await clients.closeAll();
      await proxy.close();
    }
  });
});

describe('single active consumer', () => {
  test("one consumer gets everything; 'active' tells which; the next takes over on cancel", async () => {
    const client = clients.make({ name: 'sac', ...fast });
    const queue = resources.queue('sac');
    await client.declareQueue(queue, { singleActiveConsumer: true });
    const log: string[] = [];
    const first = client.consume(queue, (msg) => void log.push(`first ${msg.body}`));
    await first.ready();
    const second = client.consume(queue, (msg) => void log.push(`second ${msg.body}`));
    await second.ready();
    first.on('active', () => log.push('first active'));
    second.on('active', () => log.push('second active'));
    await fill(queue, 3);
    await waitFor(() => log.length === 4, { what: 'three deliveries' });
    const active = (await consumersOf(queue)).map((r) => [r.consumer_tag === first.consumerTag, r.active]);
    assert.deepEqual(active.sort(), [
      [false, false],
      [true, true],
    ]);
    await first.cancel();
    await fill(queue, 2, 3);
    await waitFor(() => log.length === 7, { what: 'two more deliveries' });
    assert.deepEqual(log, [
      'first active',
      'first m0',
      'first m1',
      'first m2',
      'second active',
      'second m3',
      'second m4',
    ]);
    await second.cancel();
  });
});

describe('stream consumer', () => {
  test('resumes after the last message handled across forced cuts: each handled exactly once', async () => {
    const proxy = await startProxy({ target: { host: '127.0.0.1', port: 5672 } });
    try {
      const client = clients.make({ name: 'stream', urls: [proxy.url()], ...fast });
      const queue = resources.queue('stream');
      await client.declareQueue(queue, { durable: true, queueType: 'stream' });
      const total = 60;
      await fill(queue, total);
      const counts = new Map<string, number>();
      const offsets: number[] = [];
      let cuts = 0;
      const sub = client.consume(
        queue,
        async (msg) => {
          const body = msg.body.toString();
          counts.set(body, (counts.get(body) ?? 0) + 1);
          offsets.push(Number(msg.properties.headers?.['x-stream-offset']));
          await sleep(2);
        },
        { streamOffset: 'first', prefetch: 5, concurrency: 2 },
      );
      sub.on('error', () => {});
      for (const at of [10, 25, 40]) {
        await waitFor(() => counts.size >= at, { what: `${at} handled`, timeout: 15_000 });
        proxy.cutAll();
        cuts++;
      }
      await waitFor(() => counts.size === total, { what: 'all handled', timeout: 15_000 });
      await sleep(300); // a repeat would show up here
      assert.equal(cuts, 3);
      const repeated = [...counts].filter(([, n]) => n !== 1);
      assert.deepEqual(repeated, [], 'no message handled twice');
      assert.equal(counts.size, total, 'none skipped');
      await sub.cancel();
    } finally {
      await clients.closeAll();
      await proxy.close();
    }
  });

  test('noAck cannot be combined with a stream offset', () => {
    const client = clients.make({ name: 'stream-noack', urls: ['amqp://guest:guest@127.0.0.1:1'] });
    assert.throws(() => client.consume('s', () => {}, { streamOffset: 'first', noAck: true }), /needs acks/);
    assert.throws(() => client.consume('s', () => {}, { streamOffset: -1 }), /streamOffset must be/);
  });
});
