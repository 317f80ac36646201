/**
 * Memory alarm: `rabbitmqctl set_vm_memory_high_watermark 0.0000001` makes the broker block
 * publishing connections. The client reports `blocked` and holds publishes back (one may be in the
 * socket already) instead of piling them into the socket; once the watermark is restored it reports
 * `unblocked` and every waiting publish is confirmed.
 *
 * This changes broker-wide state, so it lives in test/serial/. The watermark in force before the test
 * is read first and restored in a `finally` and again in an `after` hook.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { rabbitmqctl, Resources } from '../support/broker.js';
import { Clients } from '../support/client.js';
import { waitFor, nextEvent } from '../support/wait.js';

const clients = new Clients();
const resources = new Resources();
/** The `set_vm_memory_high_watermark` arguments that restore the original setting. */
let restoreArgs: string[] | undefined;

async function currentWatermark(): Promise<string[]> {
  const env = await rabbitmqctl('environment');
  const absolute = /\{vm_memory_high_watermark,\s*\{absolute,\s*"?([^}"]+)"?\}\}/.exec(env);
  if (absolute !== null) return ['absolute', absolute[1]!.trim()];
  const relative = /\{vm_memory_high_watermark,\s*([0-9.]+)\}/.exec(env);
  // RabbitMQ's default when nothing is configured.
  return [relative?.[1] ?? '0.4'];
}

async function restore(): Promise<void> {
  if (restoreArgs === undefined) return;
  await rabbitmqctl('set_vm_memory_high_watermark', ...restoreArgs);
}

after(async () => {
  try {
    await restore();
  } finally {
    await clients.closeAll();
    await resources.cleanup();
  }
});

test('a memory alarm blocks publishing: publishes wait, then all confirm once it clears', {
  timeout: 60_000,
}, async () => {
  const client = clients.make({ name: 'memory-alarm' });
  const queue = resources.queue('alarm');
  await client.declareQueue(queue);
  const pub = client.publisher();
  await pub.publish('', queue, 'warm-up');
  restoreArgs = await currentWatermark();
  const blocked = nextEvent<[string]>(client, 'blocked', 20_000);
  try {
    await rabbitmqctl('set_vm_memory_high_watermark', '0.0000001');
    // RabbitMQ blocks a connection when it next publishes.
    const first = pub.publish('', queue, 'first');
    const [reason] = await blocked;
    assert.match(reason, /memory|low on/i);
    assert.ok(client.isBlocked);
    const waiting = Array.from({ length: 50 }, (_, i) => pub.publish('', queue, `waiting-${i}`));
    let settled = 0;
    for (const p of [first, ...waiting]) void p.then(() => settled++);
    await sleep(500);
    assert.equal(settled, 0, 'nothing is confirmed while blocked');
    assert.ok(
      pub.unconfirmedCount <= 1,
      `at most the message that triggered the block is sent (${pub.unconfirmedCount})`,
    );
    assert.equal(pub.pendingCount, 51);
    const unblocked = nextEvent(client, 'unblocked', 20_000);
    await restore();
    await unblocked;
    await Promise.all([first, ...waiting]);
    assert.ok(!client.isBlocked);
  } finally {
    await restore();
  }
  await waitFor(() => pub.pendingCount === 0, { what: 'all confirms' });
});
