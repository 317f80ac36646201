/**
 * A priority queue: with `x-max-priority`, messages of higher `priority` are delivered first.
 * Publish while nobody consumes, then consume: the urgent ones come out first.
 *
 *   node --import tsx examples/priority-queue.ts
 */
import { connect } from '../src/index.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const queue = 'warren-example.priority';

const conn = await connect(url);
const ch = await conn.openChannel();
await ch.queueDeclare(queue, { arguments: { 'x-max-priority': 10 } });
await ch.confirmSelect();
const jobs: [string, number][] = [
  ['low: newsletter', 1],
  ['normal: invoice', 5],
  ['urgent: password reset', 9],
  ['low: cleanup', 1],
  ['normal: report', 5],
];
for (const [job, priority] of jobs) await ch.basicPublish('', queue, Buffer.from(job), { priority });
console.log(`published ${jobs.length} jobs`);

for (let msg = await ch.basicGet(queue); msg !== null; msg = await ch.basicGet(queue)) {
  console.log(`priority ${msg.properties.priority}: ${msg.body.toString()}`);
  msg.ack();
}

await ch.queueDelete(queue);
await conn.close();
