/**
 * Dead-lettering: messages that are rejected without requeue, or expire (TTL), or overflow a length
 * limit, are republished to the queue's dead-letter exchange, with an `x-death` header that says why.
 *
 *   node --import tsx examples/dead-lettering.ts
 */
import { connect, type Message } from '../src/index.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const work = 'warren-example.work';
const dlx = 'warren-example.dlx';
const dead = 'warren-example.dead-letters';

const conn = await connect(url);
const ch = await conn.openChannel();
await ch.exchangeDeclare(dlx, 'fanout');
await ch.queueDeclare(dead);
await ch.queueBind(dead, dlx, '');
await ch.queueDeclare(work, { arguments: { 'x-dead-letter-exchange': dlx, 'x-message-ttl': 200 } });

await ch.confirmSelect();
await ch.basicPublish('', work, Buffer.from('will be rejected'));
await ch.basicPublish('', work, Buffer.from('will expire'), { expiration: '50' });

// Reject the first message without requeue: it is dead-lettered at once.
const first = await ch.basicGet(work);
first?.reject({ requeue: false });
// The second one expires after 50 ms.

const deadLetters: Message[] = [];
await new Promise<void>((resolve) => {
  ch.basicConsume(dead, { noAck: true }, (msg) => {
    deadLetters.push(msg);
    if (deadLetters.length === 2) resolve();
  });
});
for (const msg of deadLetters) {
  const death = (msg.properties.headers?.['x-death'] as Record<string, unknown>[] | undefined)?.[0];
  console.log(
    `dead letter '${msg.body.toString()}': reason=${String(death?.reason)} from queue=${String(death?.queue)}`,
  );
}

await ch.queueDelete(work);
await ch.queueDelete(dead);
await ch.exchangeDelete(dlx);
await conn.close();
