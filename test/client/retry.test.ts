/**
 * Poison messages (issue 10, 5a): a message whose handler throws is retried through the retry queue
 * `<queue>.retry` with a delay, a bounded number of times, then dead-lettered or dropped with
 * `'retriesExhausted'`; by default, never a hot loop. Against the real broker.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Message } from '../../src/index.js';
import { withChannel } from '../support/broker.js';
import { fileFixture } from '../support/client.js';
import type { TcpProxy } from '../support/tcp-proxy.js';
import { waitFor, nextEvent } from '../support/wait.js';

const { clients, resources, brokerProxy } = fileFixture();
let proxy: TcpProxy | undefined;

async function readyCount(queue: string): Promise<number> {
  return withChannel(async (ch) => (await ch.queueDeclare(queue, { passive: true })).messageCount);
}

/** A queue and its retry queue, both deleted at the end. */
function queuePair(prefix: string): { queue: string; retryQueue: string } {
  const queue = resources.queue(prefix);
  return { queue, retryQueue: resources.trackQueue(`${queue}.retry`) };
}

describe('retry policy', () => {
  test('a handler that always throws: exactly `attempts` calls, spaced by the delay, then dead-lettered with an event', async () => {
    const client = clients.make({ name: 'retry-dlx' });
    const { queue, retryQueue } = queuePair('retry-dlx');
    const dlq = resources.queue('retry-dlq');
    await client.declareQueue(dlq);
    await client.declareQueue(queue, { arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq } });
    const pub = client.publisher();
    await pub.publish('', queue, 'poison', { messageId: 'p1' });

    const calls: number[] = [];
    const sub = client.consume(
      queue,
      () => {
        calls.push(Date.now());
        throw new Error('always fails');
      },
      { retry: { attempts: 3, delay: 300 } },
    );
    const errors: unknown[] = [];
    sub.on('handlerError', (err) => errors.push(err));
    const [error, message, attempts] = await nextEvent<[Error, Message, number]>(sub, 'retriesExhausted');
    assert.equal(error.message, 'always fails');
    assert.equal(message.properties.messageId, 'p1');
    assert.equal(attempts, 3);
    await waitFor(async () => (await readyCount(dlq)) === 1, { what: 'the message in the dead-letter queue' });
    // No further delivery: the message is where it belongs and nowhere else.
    await sleep(700);
    assert.equal(calls.length, 3, `exactly 3 handler calls, saw ${calls.length}`);
    assert.equal(errors.length, 3);
    for (let i = 1; i < calls.length; i++) {
      const gap = calls[i]! - calls[i - 1]!;
      assert.ok(gap >= 300, `attempt ${i + 1} came ${gap} ms after the one before, less than the delay`);
    }
    await sub.cancel();
    assert.equal(await readyCount(queue), 0);
    assert.equal(await readyCount(retryQueue), 0);
    const dead = await withChannel((ch) => ch.basicGet(dlq, { noAck: true }));
    assert.equal(dead?.body.toString(), 'poison');
    assert.equal(dead?.properties.messageId, 'p1');
  });

  test('without a dead-letter exchange the message is dropped, with the event', async () => {
    const client = clients.make({ name: 'retry-drop' });
    const { queue, retryQueue } = queuePair('retry-drop');
    await client.declareQueue(queue);
    await client.publisher().publish('', queue, 'poison');
    let calls = 0;
    const sub = client.consume(
      queue,
      () => {
        calls++;
        throw new Error('nope');
      },
      { retry: { attempts: 2, delay: 50 } },
    );
    sub.on('handlerError', () => {});
    const [, , attempts] = await nextEvent<[unknown, Message, number]>(sub, 'retriesExhausted');
    assert.equal(attempts, 2);
    await sleep(300);
    assert.equal(calls, 2);
    await sub.cancel();
    assert.equal(await readyCount(queue), 0);
    assert.equal(await readyCount(retryQueue), 0);
  });

  test('a handler that fails twice then succeeds: one ack, body and properties kept, nothing left in any queue', async () => {
    const client = clients.make({ name: 'retry-ok' });
    const { queue, retryQueue } = queuePair('retry-ok');
    await client.declareQueue(queue);
    const properties = {
      contentType: 'application/json',
      contentEncoding: 'identity',
      headers: { tenant: 'acme', n: 7, nested: { ok: true } },
      deliveryMode: 2,
      priority: 3,
      correlationId: 'c-1',
      replyTo: 'nobody',
      messageId: 'm-1',
      timestamp: new Date(1_700_000_000_000),
      type: 'job',
      userId: 'guest',
      appId: 'retry-test',
    };
    await client.publisher().publish('', queue, '{"job":1}', properties);
    const seen: Message[] = [];
    const sub = client.consume(
      queue,
      (msg) => {
        seen.push(msg);
        if (seen.length < 3) throw new Error(`fail ${seen.length}`);
      },
      { retry: { attempts: 5, delay: 50 } },
    );
    sub.on('handlerError', () => {});
    let exhausted = false;
    sub.on('retriesExhausted', () => {
      exhausted = true;
    });
    await waitFor(() => seen.length === 3, { what: 'the third attempt' });
    await sleep(300);
    assert.equal(seen.length, 3, 'acked on the third attempt: not delivered again');
    assert.equal(exhausted, false);
    await sub.cancel();
    assert.equal(await readyCount(queue), 0);
    assert.equal(await readyCount(retryQueue), 0);
    const [first, , last] = seen as [Message, Message, Message];
    assert.equal(last.body.toString(), '{"job":1}');
    const { headers: firstHeaders, ...firstRest } = first.properties;
    const { headers: lastHeaders, ...lastRest } = last.properties;
    assert.deepEqual(lastRest, firstRest, 'properties other than headers are unchanged');
    const added = Object.keys(lastHeaders ?? {}).filter((k) => !(k in (firstHeaders ?? {})));
    for (const key of added) assert.ok(/^x-(death|first-death-.*)$/.test(key), `header ${key} was added`);
    for (const [key, value] of Object.entries(firstHeaders ?? {})) assert.deepEqual(lastHeaders?.[key], value, key);
    // The broker counted the round trips through the retry queue.
    const deaths = lastHeaders?.['x-death'] as { queue: string; count: number }[];
    assert.equal(deaths.find((d) => d.queue === retryQueue)?.count, 2);
  });

  test('by default a poison message does not loop: a second call only after a delay', async () => {
    const client = clients.make({ name: 'retry-default' });
    const { queue, retryQueue } = queuePair('retry-default');
    await client.declareQueue(queue);
    await client.publisher().publish('', queue, 'poison');
    let calls = 0;
    const sub = client.consume(queue, () => {
      calls++;
      throw new Error('poison');
    });
    sub.on('handlerError', () => {});
    await waitFor(() => calls === 1, { what: 'the first call' });
    await sleep(800);
    assert.equal(calls, 1, `a second call came within 800 ms (${calls} calls): a hot loop`);
    assert.equal(await readyCount(retryQueue), 1, 'the message waits in the retry queue');
    await waitFor(() => calls === 2, { timeout: 3000, what: 'the second attempt after the default 1 s' });
    assert.deepEqual(client.recordedTopology.queues, 2, 'the retry queue is recorded for replay');
    await sub.cancel();
  });

  test('the retry queue is recorded: declared again after a reconnect, and retries go on', async () => {
    proxy = await brokerProxy();
    const client = clients.make({
      urls: [proxy.url()],
      name: 'retry-replay',
      backoff: { initialDelay: 20, maxDelay: 100 },
    });
    const { queue, retryQueue } = queuePair('retry-replay');
    await client.declareQueue(queue);
    const pub = client.publisher();
    await pub.publish('', queue, 'first');
    const calls: string[] = [];
    const sub = client.consume(
      queue,
      (msg) => {
        calls.push(msg.body.toString());
        throw new Error('fails');
      },
      { retry: { attempts: 2, delay: 50 } },
    );
    sub.on('handlerError', () => {});
    await nextEvent(sub, 'retriesExhausted');
    // Someone deletes the retry queue; the client still has it on record and declares it again.
    await withChannel((ch) => ch.queueDelete(retryQueue));
    const reconnected = nextEvent(client, 'connect');
    proxy.cutAll();
    await reconnected;
    await withChannel((ch) => ch.queueDeclare(retryQueue, { passive: true }));
    await sub.ready();
    await pub.publish('', queue, 'second');
    const [, message, attempts] = await nextEvent<[unknown, Message, number]>(sub, 'retriesExhausted');
    assert.equal(message.body.toString(), 'second');
    assert.equal(attempts, 2);
    assert.deepEqual(calls, ['first', 'first', 'second', 'second']);
    await sub.cancel();
  });

  test('an unusable retry queue: reported as error, the message is requeued after the delay (no hot loop)', async () => {
    const client = clients.make({ name: 'retry-unusable' });
    const { queue, retryQueue } = queuePair('retry-unusable');
    await client.declareQueue(queue);
    // A queue of that name with other arguments: declaring the retry queue fails with 406.
    await withChannel((ch) => ch.queueDeclare(retryQueue, { arguments: { 'x-max-length': 1 } }));
    await client.publisher().publish('', queue, 'x');
    const calls: number[] = [];
    const sub = client.consume(
      queue,
      () => {
        calls.push(Date.now());
        throw new Error('fails');
      },
      { retry: { attempts: 3, delay: 300 } },
    );
    sub.on('handlerError', () => {});
    const [error] = await nextEvent<[Error]>(sub, 'error');
    assert.match(error.message, /PRECONDITION_FAILED|inequivalent/);
    await waitFor(() => calls.length === 2, { what: 'the requeued message' });
    assert.ok(calls[1]! - calls[0]! >= 300, `requeued after ${calls[1]! - calls[0]!} ms, less than the delay`);
    await sub.cancel();
    assert.ok(calls.length <= 3, `${calls.length} calls`);
  });

  test('invalid retry options are refused with InvalidArgumentError', () => {
    const client = clients.make({ name: 'retry-invalid' });
    for (const retry of [{ attempts: 0 }, { attempts: 1.5 }, { delay: -1 }, { delay: Number.NaN }, { queue: '' }]) {
      assert.throws(
        () => client.consume('whatever', () => {}, { retry }),
        (err: Error) => err.name === 'InvalidArgumentError',
        JSON.stringify(retry),
      );
    }
  });

  test('retry: false keeps the immediate requeue of requeueOnError and declares no retry queue', async () => {
    const client = clients.make({ name: 'retry-off' });
    const { queue, retryQueue } = queuePair('retry-off');
    await client.declareQueue(queue);
    await client.publisher().publish('', queue, 'x');
    const redelivered: boolean[] = [];
    const sub = client.consume(
      queue,
      (msg) => {
        redelivered.push(msg.redelivered);
        if (redelivered.length === 1) throw new Error('once');
      },
      { retry: false },
    );
    sub.on('handlerError', () => {});
    await waitFor(() => redelivered.length === 2, { what: 'the immediate redelivery' });
    assert.deepEqual(redelivered, [false, true]);
    await sub.cancel();
    await withChannel(async (ch) => {
      await assert.rejects(ch.queueDeclare(retryQueue, { passive: true }), /404|NOT_FOUND/);
    });
  });
});
