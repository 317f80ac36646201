/**
 * The robust client, as most applications use warren: it connects in the background, reconnects
 * with backoff, re-declares the topology it recorded and resumes consumers after a cut. A handler
 * that resolves acks its message; one that throws is retried later (retry queue, bounded attempts). JSON bodies are encoded with
 * `contentType: 'application/json'` and read back with `msg.json()`.
 *
 *   node --import tsx examples/robust-client.ts
 */
import { createClient } from '../src/index.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const queue = 'warren-example.orders';

interface Order {
  id: number;
  item: string;
}

const client = createClient(url, { name: 'orders-service' });
client.on('disconnect', (err) => console.warn(`lost the broker (${err.code}), reconnecting`));
await client.declareQueue(queue, { durable: true }); // recorded: declared again after a reconnect

// A consumer with a handler: up to 4 messages at once.
let handled = 0;
let allHandled!: () => void;
const done = new Promise<void>((resolve) => (allHandled = resolve));
const sub = client.consume(
  queue,
  async (msg) => {
    const order = msg.json<Order>();
    console.log(`handled order ${order.id}: ${order.item}`);
    if (++handled === 3) allHandled();
  },
  { concurrency: 4 },
);

// A publisher: each publish resolves once the broker confirmed it, across reconnects.
const publisher = client.publisher();
const items = ['tea', 'scones', 'jam'];
await Promise.all(
  items.map((item, i) =>
    publisher.publish('', queue, JSON.stringify({ id: i + 1, item }), {
      contentType: 'application/json',
      deliveryMode: 2,
    }),
  ),
);
console.log(`published ${items.length} orders`);
await done;
await sub.cancel();

// The same queue as an async iterator: each message is acked when the loop asks for the next one.
await publisher.publish('', queue, JSON.stringify({ id: 4, item: 'cream' }), { contentType: 'application/json' });
for await (const msg of client.consumer(queue)) {
  console.log(`iterated order ${msg.json<Order>().id}`);
  msg.ack();
  break;
}

await client.deleteQueue(queue);
await client.close();
