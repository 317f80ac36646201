/**
 * Single active consumer: many consumers may subscribe, the queue delivers to one at a time, in
 * order. When the active one goes away, the next takes over where it stopped.
 *
 *   node --import tsx examples/single-active-consumer.ts
 */
import { connect } from '../src/index.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const queue = 'warren-example.single-active';

const conn = await connect(url);
const ch = await conn.openChannel();
await ch.queueDeclare(queue, { arguments: { 'x-single-active-consumer': true } });

const got: string[] = [];
let wake: (() => void) | undefined;
const waitFor = async (n: number) => {
  while (got.length < n) await new Promise<void>((resolve) => (wake = resolve));
};
const consumers = [];
for (const name of ['first', 'second']) {
  const c = await conn.openChannel();
  consumers.push(
    await c.basicConsume(queue, {}, (msg) => {
      got.push(`${name} got ${msg.body.toString()}`);
      msg.ack();
      wake?.();
    }),
  );
}

await ch.confirmSelect();
for (const n of [1, 2, 3]) await ch.basicPublish('', queue, Buffer.from(`message ${n}`));
await waitFor(3);

// The active consumer leaves: the other one becomes active.
await consumers[0]!.cancel();
for (const n of [4, 5]) await ch.basicPublish('', queue, Buffer.from(`message ${n}`));
await waitFor(5);

for (const line of got) console.log(line);
await ch.queueDelete(queue);
await conn.close();
