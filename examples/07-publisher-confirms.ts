/**
 * RabbitMQ tutorial 7, "Publisher confirms": the broker confirms each message once it has taken
 * responsibility for it. Three strategies, slowest to fastest:
 *
 * 1. one at a time: await each publish;
 * 2. in batches: publish a batch, then await all of it;
 * 3. streaming: keep publishing and let each promise settle on its own, with a bound on how many
 *    are unconfirmed (the robust client's publisher does this for you, across reconnects too).
 *
 *   node --import tsx examples/07-publisher-confirms.ts
 */
import { connect, createClient } from '../src/index.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const queue = 'warren-example.confirms';
const count = 1000;
const body = Buffer.from('confirm me');

const conn = await connect(url);
const ch = await conn.openChannel();
await ch.queueDeclare(queue, { durable: true });
await ch.confirmSelect(); // from now on basicPublish resolves when the broker confirms

async function timed(label: string, run: () => Promise<void>): Promise<void> {
  const t0 = performance.now();
  await run();
  console.log(`${label}: published ${count} messages, all confirmed, in ${Math.round(performance.now() - t0)} ms`);
}

await timed('individually', async () => {
  for (let i = 0; i < count; i++) await ch.basicPublish('', queue, body);
});

await timed('in batches of 100', async () => {
  for (let i = 0; i < count; i += 100) {
    const batch: Promise<void>[] = [];
    for (let j = 0; j < 100; j++) batch.push(ch.basicPublish('', queue, body));
    await Promise.all(batch); // a rejection (PublishNacked) names which batch to publish again
  }
});

const client = createClient(url);
const publisher = client.publisher({ confirm: true, maxUnconfirmed: 500 });
await timed('streaming with the robust publisher', async () => {
  const all: Promise<void>[] = [];
  for (let i = 0; i < count; i++) all.push(publisher.publish('', queue, body));
  await Promise.all(all);
});
await client.close();

const { messageCount } = await ch.queueDelete(queue);
console.log(`the queue held ${messageCount} messages`);
await conn.close();
