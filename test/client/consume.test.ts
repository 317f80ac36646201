/**
 * Robust subscriptions and the async-iterator consumer against the real broker: concurrency limit,
 * ack on resolve / nack on throw, coalesced acks, cancel() and its requeue count, auto-QoS, broker
 * cancel (queue deleted) with and without resubscribing, and the iterator's ack-on-next rules.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortError, ConsumerCancelled, type Message } from '../../src/index.js';
import { withChannel } from '../support/broker.js';
import { AckAudit, type Clients, fileFixture } from '../support/client.js';
import { waitFor, nextEvent } from '../support/wait.js';

const { clients, resources } = fileFixture();

const fast = { backoff: { initialDelay: 20, maxDelay: 200 } };

async function fill(client: ReturnType<Clients['make']>, queue: string, n: number, prefix = 'm'): Promise<void> {
  const pub = client.publisher();
  await Promise.all(
    Array.from({ length: n }, (_, i) => pub.publish('', queue, `${prefix}${i}`, { messageId: `${prefix}${i}` })),
  );
  await pub.close();
}

async function readyCount(queue: string): Promise<number> {
  return withChannel(async (ch) => (await ch.queueDeclare(queue, { passive: true })).messageCount);
}

describe('consume()', () => {
  test('at most `concurrency` handlers run at once; resolve acks; acks are coalesced', async () => {
    const audit = new AckAudit();
    const client = clients.make({ name: 'sub-conc', debug: audit.line });
    const queue = resources.queue('conc');
    await client.declareQueue(queue);
    await fill(client, queue, 60);
    let running = 0;
    let highest = 0;
    const seen = new Set<string>();
    const sub = client.consume(
      queue,
      async (msg) => {
        running++;
        highest = Math.max(highest, running);
        await sleep(Math.random() * 5);
        seen.add(msg.properties.messageId!);
        running--;
      },
      { concurrency: 3 },
    );
    await waitFor(() => seen.size === 60, { what: '60 messages handled' });
    const { requeued } = await sub.cancel();
    assert.equal(requeued, 0);
    assert.ok(highest <= 3 && highest >= 2, `1..3 handlers at once, saw ${highest}`);
    assert.equal(await readyCount(queue), 0, 'everything acked');
    assert.deepEqual(audit.violations, []);
    assert.ok(audit.ackFrames < 60, `acks coalesced: ${audit.ackFrames} ack frames for 60 messages`);
    assert.ok(audit.multipleAcks > 0);
  });

  // By default a failed message goes through the retry queue with a delay: see retry.test.ts.
  test('a throwing handler nacks: requeued at once with retry: false, dropped (dead-lettered) with requeueOnError: false', async () => {
    const client = clients.make({ name: 'sub-throw' });
    const queue = resources.queue('throw');
    const dlq = resources.queue('dlq');
    await client.declareQueue(dlq);
    await client.declareQueue(queue, {
      arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq },
    });
    await fill(client, queue, 1, 'a');
    const attempts: boolean[] = [];
    const errors: unknown[] = [];
    const sub = client.consume(
      queue,
      (msg) => {
        attempts.push(msg.redelivered);
        if (attempts.length === 1) throw new Error('first try fails');
      },
      { retry: false },
    );
    sub.on('handlerError', (err) => errors.push(err));
    await waitFor(() => attempts.length === 2, { what: 'the redelivery' });
    assert.deepEqual(attempts, [false, true]);
    assert.equal(errors.length, 1);
    await sub.cancel();

    await fill(client, queue, 1, 'b');
    const drop = client.consume(
      queue,
      () => {
        throw new Error('poison');
      },
      { requeueOnError: false },
    );
    drop.on('handlerError', () => {});
    await waitFor(async () => (await readyCount(dlq)) === 1, { what: 'the dead-lettered message' });
    await drop.cancel();
    assert.equal(await readyCount(queue), 0);
  });

  test('cancel() stops delivery, waits for the running handler and reports the prefetched messages it returned', async () => {
    const client = clients.make({ name: 'sub-cancel' });
    const queue = resources.queue('cancel');
    await client.declareQueue(queue);
    await fill(client, queue, 10);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const handled: string[] = [];
    const sub = client.consume(
      queue,
      async (msg) => {
        await gate;
        handled.push(msg.properties.messageId!);
      },
      { concurrency: 1, prefetch: 10 },
    );
    await waitFor(() => sub.runningCount === 1, { what: 'the first handler' });
    await waitFor(async () => (await readyCount(queue)) === 0, { what: 'the other 9 to be prefetched' });
    let cancelled = false;
    const cancelling = sub.cancel().then((r) => {
      cancelled = true;
      return r;
    });
    await sleep(50);
    assert.equal(cancelled, false, 'cancel waits for the running handler');
    release();
    const { requeued } = await cancelling;
    assert.deepEqual(handled, ['m0']);
    assert.equal(requeued, 9);
    assert.equal(await readyCount(queue), 9);
    assert.equal(await sub.closed, undefined);
  });

  test('auto-QoS: the default prefetch is derived from concurrency, so deliveries in memory stay bounded', async () => {
    const client = clients.make({ name: 'sub-qos' });
    const queue = resources.queue('qos');
    await client.declareQueue(queue);
    await fill(client, queue, 50);
    const held: Message[] = [];
    const sub = client.consume(queue, (msg) => new Promise<void>(() => held.push(msg)), { concurrency: 2 });
    await waitFor(() => held.length === 2, { what: 'two running handlers' });
    await sleep(200);
    assert.equal(held.length, 2, 'no more than concurrency handlers');
    assert.equal(await readyCount(queue), 40, 'prefetch max(10, 2 × 2) = 10: 10 messages left the queue');
    await sub.cancel({ signal: AbortSignal.timeout(100) });
  });

  test("a broker cancel (queue deleted) is a 'cancel' event; with resubscribeOnCancel it resumes when the queue is back", async () => {
    const client = clients.make({ name: 'sub-server-cancel', ...fast });
    const queue = resources.queue('gone');
    await client.declareQueue(queue);
    const stops = client.consume(queue, () => {});
    const cancelled = nextEvent<[ConsumerCancelled]>(stops, 'cancel');
    await stops.ready();
    const keeps = client.consume(queue, () => {}, { resubscribeOnCancel: true });
    await keeps.ready();
    const got: string[] = [];
    const keeps2 = client.consume(
      queue,
      (m) => {
        got.push(m.body.toString());
      },
      { resubscribeOnCancel: true },
    );
    await keeps2.ready();
    await keeps.cancel();
    const keeps2Cancelled = nextEvent<[ConsumerCancelled]>(keeps2, 'cancel');
    await client.deleteQueue(queue);
    const [err] = await cancelled;
    assert.ok(err instanceof ConsumerCancelled);
    assert.ok((await stops.closed) instanceof ConsumerCancelled);
    await keeps2Cancelled;
    assert.equal(keeps2.isActive, false);
    const back = nextEvent(keeps2, 'subscribe');
    await client.declareQueue(queue);
    await back;
    await client.publisher().publish('', queue, 'after');
    await waitFor(() => got.length === 1, { what: 'delivery after resubscribing' });
    await keeps2.cancel();
  });
});

describe('consumer() async iterator', () => {
  test('yields messages in order and acks each when the loop asks for the next; break requeues the one in hand', async () => {
    const client = clients.make({ name: 'iter' });
    const queue = resources.queue('iter');
    await client.declareQueue(queue);
    await fill(client, queue, 5);
    const bodies: string[] = [];
    for await (const msg of client.consumer(queue)) {
      bodies.push(msg.body.toString());
      if (bodies.length === 3) break;
    }
    assert.deepEqual(bodies, ['m0', 'm1', 'm2']);
    // m0 and m1 were acked; m2 (in hand at break) and the prefetched m3, m4 are back in the queue.
    assert.equal(await readyCount(queue), 3);
    const rest: string[] = [];
    for await (const msg of client.consumer(queue)) {
      rest.push(msg.body.toString());
      if (rest.length === 3) {
        msg.ack(); // settled by hand: kept acked after break
        break;
      }
    }
    assert.deepEqual(rest.sort(), ['m2', 'm3', 'm4']);
    assert.equal(await readyCount(queue), 0);
  });

  test('an AbortSignal ends the loop with AbortError; cancel() ends it cleanly', async () => {
    const client = clients.make({ name: 'iter-abort' });
    const queue = resources.queue('iter-abort');
    await client.declareQueue(queue);
    const controller = new AbortController();
    const loop = (async () => {
      for await (const _ of client.consumer(queue, { signal: controller.signal })) {
        // nothing arrives
      }
    })();
    await sleep(100);
    controller.abort();
    await assert.rejects(loop, AbortError);

    const messages = client.consumer(queue);
    await messages.subscription.ready();
    let n = 0;
    const ended = (async () => {
      for await (const _ of messages) n++;
      return n;
    })();
    await client.publisher().publish('', queue, 'one');
    await waitFor(() => n === 1, { what: 'the loop to take the message' });
    const { requeued } = await messages.cancel();
    assert.equal(requeued, 0);
    assert.equal(await ended, 1);
    assert.equal(await readyCount(queue), 0, 'the message handled by the loop was acked');
  });
});
