/**
 * RabbitMQ tutorial 3, "Publish/Subscribe": a fanout exchange copies each message to every queue
 * bound to it. Each subscriber gets its own server-named, exclusive queue.
 *
 *   node --import tsx examples/03-publish-subscribe.ts
 */
import { connect, type Message } from '../src/index.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const exchange = 'warren-example.logs';
const conn = await connect(url);
const ch = await conn.openChannel();
await ch.exchangeDeclare(exchange, 'fanout');

const received: Promise<Message>[] = [];
for (const subscriber of ['screen', 'file']) {
  // An empty name asks the broker for a fresh name; exclusive queues vanish with the connection.
  const { queue } = await ch.queueDeclare('', { exclusive: true });
  await ch.queueBind(queue, exchange, '');
  received.push(
    new Promise((resolve) => {
      ch.basicConsume(queue, { noAck: true }, (msg) => {
        console.log(` [${subscriber}] ${msg.body.toString()}`);
        resolve(msg);
      });
    }),
  );
}

await ch.basicPublish(exchange, '', Buffer.from('info: Hello World!'));
console.log(" [x] Sent 'info: Hello World!'");
await Promise.all(received);

await ch.exchangeDelete(exchange);
await conn.close();
