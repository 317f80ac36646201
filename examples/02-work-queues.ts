/**
 * RabbitMQ tutorial 2, "Work queues": tasks are shared between two workers. Each worker takes one
 * task at a time (prefetch 1) and acknowledges it when done, so a busy worker gets no more tasks and
 * a worker that dies loses none. Dots in a task stand for seconds of work (here: 50 ms each).
 *
 *   node --import tsx examples/02-work-queues.ts
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '../src/index.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const queue = 'warren-example.task_queue';
const conn = await connect(url);

// The producer: a durable queue and persistent messages survive a broker restart.
const producer = await conn.openChannel();
await producer.queueDeclare(queue, { durable: true });
await producer.confirmSelect();
const tasks = ['First task.', 'Second task..', 'Third task...', 'Fourth task....', 'Fifth task.....', 'Sixth task.'];
for (const task of tasks) await producer.basicPublish('', queue, Buffer.from(task), { deliveryMode: 2 });
console.log(` [x] Sent ${tasks.length} tasks`);

// Two workers, each on its own channel with prefetch 1: fair dispatch.
let done = 0;
let allDone!: () => void;
const finished = new Promise<void>((resolve) => (allDone = resolve));
const perWorker = new Map<string, number>();
for (const name of ['A', 'B']) {
  const ch = await conn.openChannel();
  await ch.basicQos(1);
  await ch.basicConsume(queue, {}, async (msg) => {
    const task = msg.body.toString();
    await sleep(50 * (task.split('.').length - 1)); // the "work"
    msg.ack(); // only now may the broker forget the task
    perWorker.set(name, (perWorker.get(name) ?? 0) + 1);
    console.log(` [${name}] Done: ${task}`);
    if (++done === tasks.length) allDone();
  });
}
await finished;
console.log(
  ` [x] All ${done} tasks done, worker A did ${perWorker.get('A') ?? 0}, worker B did ${perWorker.get('B') ?? 0}`,
);

await producer.queueDelete(queue);
await conn.close();
