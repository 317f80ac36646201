/**
 * RabbitMQ tutorial 4, "Routing": a direct exchange delivers a message to the queues bound with
 * exactly its routing key. One subscriber wants only errors, the other every severity.
 *
 *   node --import tsx examples/04-routing.ts
 */
import { connect } from '../src/index.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const exchange = 'warren-example.direct_logs';
const conn = await connect(url);
const ch = await conn.openChannel();
await ch.exchangeDeclare(exchange, 'direct');

const subscribers = { 'errors-only': ['error'], everything: ['info', 'warning', 'error'] };
const expected = 4; // 1 for errors-only, 3 for everything
let count = 0;
let allArrived!: () => void;
const arrived = new Promise<void>((resolve) => (allArrived = resolve));
for (const [name, severities] of Object.entries(subscribers)) {
  const { queue } = await ch.queueDeclare('', { exclusive: true });
  for (const severity of severities) await ch.queueBind(queue, exchange, severity);
  await ch.basicConsume(queue, { noAck: true }, (msg) => {
    console.log(` [${name}] ${msg.routingKey}: ${msg.body.toString()}`);
    if (++count === expected) allArrived();
  });
}

for (const severity of ['info', 'warning', 'error']) {
  await ch.basicPublish(exchange, severity, Buffer.from(`a ${severity} message`));
}
await arrived;

await ch.exchangeDelete(exchange);
await conn.close();
