/**
 * RabbitMQ tutorial 1, "Hello World": publish a message to a queue and receive it.
 *
 *   node --import tsx examples/01-hello-world.ts
 */
import { connect } from '../src/index.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const queue = 'warren-example.hello';

const conn = await connect(url);
const ch = await conn.openChannel();
await ch.queueDeclare(queue);

// Sending: the default exchange ('') routes by queue name.
await ch.basicPublish('', queue, Buffer.from('Hello World!'));
console.log(" [x] Sent 'Hello World!'");

// Receiving: a consumer is called for each message the broker pushes.
await new Promise<void>((resolve) => {
  ch.basicConsume(queue, { noAck: true }, (msg) => {
    console.log(` [x] Received '${msg.body.toString()}'`);
    resolve();
  });
});

await ch.queueDelete(queue);
await conn.close();
