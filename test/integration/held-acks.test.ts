/**
 * Held acks against the broker: acks given just before `connection.close()` or `channel.close()`
 * reach the broker before the close (the broker ignores what follows a close, and those messages
 * would come back), and a consumer with a large prefetch that acks in order leaves nothing unacked.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect } from '../../src/index.js';
import { AMQP_URL, brokerFixture, settledReadyCount } from '../support/broker.js';
import { within } from '../support/wait.js';

const fx = brokerFixture();

async function fill(queue: string, count: number): Promise<void> {
  await fx.ch.queueDeclare(queue);
  await Promise.all(Array.from({ length: count }, (_, i) => fx.ch.basicPublish('', queue, Buffer.from(String(i)))));
}

for (const closing of ['connection', 'channel'] as const) {
  test(`acks given just before the ${closing} closes are not lost`, async () => {
    const queue = fx.res.queue(`held-acks-${closing}`);
    await fill(queue, 5);
    const conn = await connect(AMQP_URL);
    const ch = await conn.openChannel();
    await ch.basicQos(100);
    let seen = 0;
    const closed = new Promise<void>((resolve, reject) => {
      void ch.basicConsume(queue, {}, (msg) => {
        msg.ack();
        // Closed at once, in the same tick as the last ack: the acks are still held back.
        if (++seen === 5) (closing === 'connection' ? conn.close() : ch.close()).then(resolve, reject);
      });
    });
    await within(closed, 5000, `the ${closing} close`);
    if (closing === 'channel') await conn.close();
    assert.equal(await settledReadyCount(fx.ch, queue), 0, 'every acked message is gone from the queue');
  });
}

test('in-order acks with prefetch 1000 leave nothing unacked, however they were grouped', async () => {
  const queue = fx.res.queue('held-acks-stream');
  await fill(queue, 3000);
  const conn = await connect(AMQP_URL);
  const ch = await conn.openChannel();
  await ch.basicQos(1000);
  let seen = 0;
  await within(
    new Promise<void>((resolve) => {
      void ch.basicConsume(queue, {}, (msg) => {
        msg.ack();
        if (++seen === 3000) resolve();
      });
    }),
    20_000,
    'all 3000 deliveries',
  );
  // The last run (fewer than 250) is held for 1 ms at most; the close sends it in any case.
  await conn.close();
  assert.equal(await settledReadyCount(fx.ch, queue), 0, 'nothing came back after the close');
});
