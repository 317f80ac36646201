/**
 * RabbitMQ tutorial 5, "Topics": a topic exchange matches routing keys against patterns, where `*`
 * stands for one word and `#` for zero or more words.
 *
 *   node --import tsx examples/05-topics.ts
 */
import { connect } from '../src/index.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const exchange = 'warren-example.topic_logs';
const conn = await connect(url);
const ch = await conn.openChannel();
await ch.exchangeDeclare(exchange, 'topic');

const bindings = { 'kern.*': 'kernel', '*.critical': 'critical', '#': 'all' };
const received: string[] = [];
// kern.critical reaches 3 queues, kern.info 2, cron.critical 2, cron.info.daily 1.
const expected = 8;
let allArrived!: () => void;
const arrived = new Promise<void>((resolve) => (allArrived = resolve));
for (const [pattern, name] of Object.entries(bindings)) {
  const { queue } = await ch.queueDeclare('', { exclusive: true });
  await ch.queueBind(queue, exchange, pattern);
  await ch.basicConsume(queue, { noAck: true }, (msg) => {
    received.push(`${name} <- ${msg.routingKey}`);
    if (received.length === expected) allArrived();
  });
}

for (const key of ['kern.critical', 'kern.info', 'cron.critical', 'cron.info.daily']) {
  await ch.basicPublish(exchange, key, Buffer.from(`message for ${key}`));
}
await arrived;
for (const line of received.sort()) console.log(` [x] ${line}`);

await ch.exchangeDelete(exchange);
await conn.close();
