/**
 * A stream queue: an append-only log that consumers read from any offset without removing what they
 * read. `x-stream-offset` says where to start (`first`, `last`, `next`, an offset number, or a time);
 * each delivery carries its offset in the `x-stream-offset` header. Stream consumers need a prefetch
 * and manual acknowledgements.
 *
 *   node --import tsx examples/stream-queue.ts
 */
import { connect } from '../src/index.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const queue = 'warren-example.stream';

const conn = await connect(url);
const ch = await conn.openChannel();
await ch.queueDeclare(queue, { durable: true, arguments: { 'x-queue-type': 'stream' } });
await ch.confirmSelect();
for (let i = 0; i < 10; i++) await ch.basicPublish('', queue, Buffer.from(`event ${i}`));
console.log('appended 10 events to the stream');

// Read twice: from offset 5, then everything from the start. Reading does not consume.
for (const offset of [5, 'first'] as const) {
  const reader = await conn.openChannel();
  await reader.basicQos(100);
  const seen: string[] = [];
  await new Promise<void>((resolve) => {
    reader.basicConsume(queue, { arguments: { 'x-stream-offset': offset } }, (msg) => {
      seen.push(`${msg.properties.headers?.['x-stream-offset']}:${msg.body.toString()}`);
      msg.ack();
      if (msg.body.toString() === 'event 9') resolve();
    });
  });
  console.log(`from offset ${offset}: ${seen.join(', ')}`);
  await reader.close();
}

await ch.queueDelete(queue);
await conn.close();
