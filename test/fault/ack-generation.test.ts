/**
 * Acks are bound to the channel that delivered the message: handlers still running when their
 * connection dies finish after the reconnect, and their acks must not settle the new channel's
 * deliveries (which reuse the same delivery tags 1..n). If they did, the new channel's nacks below
 * would hit unknown tags (406) and the messages would be lost.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AMQPError, Message } from '../../src/index.js';
import { withChannel } from '../support/broker.js';
import { AckAudit, fileFixture } from '../support/client.js';
import type { TcpProxy } from '../support/tcp-proxy.js';
import { waitFor, nextEvent } from '../support/wait.js';

const { clients, resources, brokerProxy } = fileFixture();
let proxy: TcpProxy | undefined;

test('a handler of a dead channel cannot ack a delivery of the new one', { timeout: 30_000 }, async () => {
  proxy = await brokerProxy();
  const audit = new AckAudit();
  const client = clients.make({
    urls: [proxy.url()],
    name: 'ack-generation',
    debug: audit.line,
    backoff: { initialDelay: 20, maxDelay: 100 },
  });
  const queue = resources.queue('generation');
  await client.declareQueue(queue);
  const pub = client.publisher();
  await Promise.all(Array.from({ length: 5 }, (_, i) => pub.publish('', queue, `m${i}`)));

  type Held = { msg: Message; release: (fail: boolean) => void };
  const rounds: Held[][] = [[], [], []];
  let round = 0;
  const errors: AMQPError[] = [];
  const sub = client.consume(
    queue,
    (msg) =>
      new Promise<void>((resolve, reject) => {
        rounds[round]!.push({ msg, release: (fail) => (fail ? reject(new Error('again')) : resolve()) });
      }),
    // retry: false: failures are nacked with requeue on the channel at once (no retry queue).
    { concurrency: 5, prefetch: 5, retry: false },
  );
  sub.on('handlerError', () => {});
  sub.on('error', (err) => errors.push(err));
  await waitFor(() => rounds[0]!.length === 5, { what: 'first deliveries' });

  // Cut: the five handlers keep running; the broker requeues and redelivers on the new channel, where
  // the deliveries wait for a free handler slot (the old handlers still hold all five).
  round = 1;
  const reconnected = nextEvent(client, 'connect');
  proxy.cutAll();
  await reconnected;
  await waitFor(
    async () =>
      sub.isActive &&
      (await withChannel(async (ch) => (await ch.queueDeclare(queue, { passive: true })).messageCount)) === 0,
    { what: 'redelivery to the new channel' },
  );
  assert.equal(rounds[1]!.length, 0, 'at most `concurrency` handlers, old ones included');

  // The old handlers finish now: their acks must go nowhere, and the waiting deliveries start.
  for (const h of rounds[0]!) h.release(false);
  await waitFor(() => rounds[1]!.length === 5, { what: 'redeliveries' });
  assert.ok(rounds[1]!.every((h) => h.msg.redelivered));
  assert.deepEqual(
    rounds[1]!.map((h) => h.msg.deliveryTag),
    rounds[0]!.map((h) => h.msg.deliveryTag),
    'the new channel reuses the same delivery tags',
  );
  await sleep(50);
  // The new handlers fail: nacked with requeue on the new channel, so the messages come back again.
  round = 2;
  for (const h of rounds[1]!) h.release(true);
  await waitFor(() => rounds[2]!.length === 5, { what: 'third deliveries' });
  for (const h of rounds[2]!) h.release(false);
  await waitFor(
    async () => (await withChannel(async (ch) => (await ch.queueDeclare(queue, { passive: true })).messageCount)) === 0,
    { what: 'an empty queue' },
  );
  await sub.cancel();
  assert.deepEqual(errors, [], 'no channel error (an ack of an unknown tag would be a 406)');
  assert.deepEqual(audit.violations, []);
  assert.deepEqual(rounds[2]!.map((h) => h.msg.body.toString()).sort(), ['m0', 'm1', 'm2', 'm3', 'm4']);
});
