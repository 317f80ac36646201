/**
 * The six RabbitMQ tutorials as written for amqplib's promise API (hello world, work queues,
 * publish/subscribe, routing, topics, RPC), running on warren through `warren/amqplib`. The only
 * change from the amqplib code is the import: in an application it reads
 * `import amqp from 'warren/amqplib'` (here, inside the repository, the source path). Queue and
 * exchange names carry a prefix so that the example does not collide with anything else on the broker.
 *
 *   node --import tsx examples/amqplib-tutorials.ts
 */
import type { Channel, ConsumeMessage } from '../src/amqplib/index.js';
import amqp from '../src/amqplib/index.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const prefix = 'warren-example.amqplib.';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const connection = await amqp.connect(url);

// ---------------------------------------------------------------- 1. Hello World
{
  const queue = `${prefix}hello`;
  const channel = await connection.createChannel();
  await channel.assertQueue(queue, { durable: false });
  channel.sendToQueue(queue, Buffer.from('Hello World!'));
  console.log(" [x] Sent 'Hello World!'");
  await new Promise<void>((resolve) => {
    channel.consume(
      queue,
      (msg) => {
        if (msg === null) return;
        console.log(" [x] Received '%s'", msg.content.toString());
        resolve();
      },
      { noAck: true },
    );
  });
  await channel.deleteQueue(queue);
  await channel.close();
}

// ---------------------------------------------------------------- 2. Work queues
{
  const queue = `${prefix}task_queue`;
  const done: string[] = [];
  async function worker(name: string): Promise<Channel> {
    const channel = await connection.createChannel();
    await channel.assertQueue(queue, { durable: true });
    await channel.prefetch(1);
    await channel.consume(
      queue,
      (msg) => {
        if (msg === null) return;
        const secs = msg.content.toString().split('.').length - 1;
        setTimeout(() => {
          done.push(name);
          channel.ack(msg);
        }, secs * 20);
      },
      { noAck: false },
    );
    return channel;
  }
  const workers = [await worker('A'), await worker('B')];
  const producer = await connection.createChannel();
  await producer.assertQueue(queue, { durable: true });
  const tasks = ['First message.', 'Second message..', 'Third message...', 'Fourth.', 'Fifth....', 'Sixth.'];
  for (const task of tasks) producer.sendToQueue(queue, Buffer.from(task), { persistent: true });
  console.log(` [x] Sent ${tasks.length} tasks`);
  for (let i = 0; i < 200 && done.length < tasks.length; i++) await sleep(20);
  const byA = done.filter((w) => w === 'A').length;
  console.log(` [x] ${done.length} tasks done, worker A did ${byA}, worker B did ${done.length - byA}`);
  for (const w of workers) await w.close();
  await producer.deleteQueue(queue);
  await producer.close();
}

// ---------------------------------------------------------------- helpers for 3-5
/** Starts a subscriber: an exclusive server-named queue bound with each key; collects what it gets. */
async function subscriber(
  exchange: string,
  type: string,
  keys: string[],
  label: string,
  lines: string[],
): Promise<Channel> {
  const channel = await connection.createChannel();
  await channel.assertExchange(exchange, type, { durable: false });
  const q = await channel.assertQueue('', { exclusive: true });
  for (const key of keys) await channel.bindQueue(q.queue, exchange, key);
  await channel.consume(
    q.queue,
    (msg: ConsumeMessage | null) => {
      if (msg !== null) lines.push(`[${label}] ${msg.fields.routingKey}: ${msg.content.toString()}`);
    },
    { noAck: true },
  );
  return channel;
}

async function settle(lines: string[], count: number): Promise<void> {
  for (let i = 0; i < 200 && lines.length < count; i++) await sleep(10);
  await sleep(50);
}

// ---------------------------------------------------------------- 3. Publish/Subscribe
{
  const exchange = `${prefix}logs`;
  const lines: string[] = [];
  const subs = [
    await subscriber(exchange, 'fanout', [''], 'screen', lines),
    await subscriber(exchange, 'fanout', [''], 'file', lines),
  ];
  const channel = await connection.createChannel();
  await channel.assertExchange(exchange, 'fanout', { durable: false });
  channel.publish(exchange, '', Buffer.from('info: Hello World!'));
  await settle(lines, 2);
  for (const line of lines.sort()) console.log(line.replace(/\] : /, '] '));
  for (const s of subs) await s.close();
  await channel.deleteExchange(exchange);
  await channel.close();
}

// ---------------------------------------------------------------- 4. Routing
{
  const exchange = `${prefix}direct_logs`;
  const lines: string[] = [];
  const subs = [
    await subscriber(exchange, 'direct', ['error'], 'errors-only', lines),
    await subscriber(exchange, 'direct', ['info', 'warning', 'error'], 'everything', lines),
  ];
  const channel = await connection.createChannel();
  await channel.assertExchange(exchange, 'direct', { durable: false });
  for (const severity of ['info', 'warning', 'error']) {
    channel.publish(exchange, severity, Buffer.from(`a ${severity} message`));
  }
  await settle(lines, 4);
  for (const line of lines.sort()) console.log(line);
  for (const s of subs) await s.close();
  await channel.deleteExchange(exchange);
  await channel.close();
}

// ---------------------------------------------------------------- 5. Topics
{
  const exchange = `${prefix}topic_logs`;
  const lines: string[] = [];
  const subs = [
    await subscriber(exchange, 'topic', ['#'], 'all', lines),
    await subscriber(exchange, 'topic', ['kern.*'], 'kernel', lines),
    await subscriber(exchange, 'topic', ['*.critical'], 'critical', lines),
  ];
  const channel = await connection.createChannel();
  await channel.assertExchange(exchange, 'topic', { durable: false });
  for (const key of ['kern.critical', 'kern.info', 'cron.critical', 'cron.info.daily']) {
    channel.publish(exchange, key, Buffer.from(`message for ${key}`));
  }
  await settle(lines, 8);
  for (const line of lines.sort()) console.log(line);
  for (const s of subs) await s.close();
  await channel.deleteExchange(exchange);
  await channel.close();
}

// ---------------------------------------------------------------- 6. RPC
{
  const queue = `${prefix}rpc_queue`;
  const fibonacci = (n: number): number => (n === 0 || n === 1 ? n : fibonacci(n - 1) + fibonacci(n - 2));

  // The server.
  const server = await connection.createChannel();
  await server.assertQueue(queue, { durable: false });
  await server.prefetch(1);
  await server.consume(queue, (msg) => {
    if (msg === null) return;
    const n = Number.parseInt(msg.content.toString(), 10);
    server.sendToQueue(msg.properties.replyTo, Buffer.from(fibonacci(n).toString()), {
      correlationId: msg.properties.correlationId,
    });
    server.ack(msg);
  });

  // The client.
  const client = await connection.createChannel();
  const q = await client.assertQueue('', { exclusive: true });
  const waiting = new Map<string, (value: string) => void>();
  await client.consume(
    q.queue,
    (msg) => {
      if (msg === null) return;
      waiting.get(msg.properties.correlationId)?.(msg.content.toString());
      waiting.delete(msg.properties.correlationId);
    },
    { noAck: true },
  );
  for (const n of [10, 20, 30]) {
    const correlationId = `${n}-${Math.random().toString(16).slice(2)}`;
    const answer = new Promise<string>((resolve) => waiting.set(correlationId, resolve));
    client.sendToQueue(queue, Buffer.from(n.toString()), { correlationId, replyTo: q.queue });
    console.log(` [.] fib(${n}) = ${await answer}`);
  }
  await client.close();
  await server.deleteQueue(queue);
  await server.close();
}

await connection.close();
