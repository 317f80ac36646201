/**
 * A quorum queue: replicated, durable, and it counts deliveries. A message that keeps failing is
 * redelivered with an `x-delivery-count` header, and `x-delivery-limit` dead-letters (or drops) it
 * after that many attempts, so a poison message cannot loop forever.
 *
 *   node --import tsx examples/quorum-queue.ts
 */
import { connect } from '../src/index.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const queue = 'warren-example.quorum';

const conn = await connect(url);
const ch = await conn.openChannel();
await ch.queueDeclare(queue, {
  durable: true, // quorum queues are always durable
  arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 2 },
});
await ch.confirmSelect();
await ch.basicPublish('', queue, Buffer.from('poison'), { deliveryMode: 2 });
console.log('published a message to the quorum queue');

// Fail it every time: nack with requeue. After the limit the broker drops it.
let attempts = 0;
await ch.basicQos(1);
const consumer = await ch.basicConsume(queue, {}, (msg) => {
  attempts++;
  const count = msg.properties.headers?.['x-delivery-count'] ?? 0;
  console.log(`delivery ${attempts}: redelivered=${msg.redelivered} x-delivery-count=${String(count)}`);
  msg.nack({ requeue: true });
});

// Poll until the broker gave up on the message (limit 2: three deliveries in all).
for (let i = 0; i < 100; i++) {
  const { messageCount } = await ch.queueDeclare(queue, { passive: true });
  if (attempts >= 3 && messageCount === 0) break;
  await new Promise((resolve) => setTimeout(resolve, 50));
}
await consumer.cancel();
console.log(`the broker dropped the message after ${attempts} deliveries`);

await ch.queueDelete(queue);
await conn.close();
