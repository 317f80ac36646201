/**
 * A fast publisher against a blocked broker: a throw-away single RabbitMQ node (never the default one)
 * has its memory alarm raised with `set_vm_memory_high_watermark`, so it sends connection.blocked and
 * stops reading publishing connections. The robust publisher must report 'blocked', keep no more than
 * `maxUnconfirmed` publishes written and unconfirmed, and finish everything once the alarm clears.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '../../src/index.js';
import { WireAudit } from '../support/audit.js';
import { type Cluster, startCluster, stopAllExtraNodes } from '../support/broker-nodes.js';
import { waitFor, within } from '../support/wait.js';

let node: Cluster;

before(async () => {
  await stopAllExtraNodes();
  node = await startCluster({ size: 1, prefix: 'warren-blk', basePort: 5720 });
});

after(async () => {
  await node?.stop();
});

test('a blocked broker: the publisher waits within maxUnconfirmed and finishes after unblock', {
  timeout: 120_000,
}, async () => {
  const limit = 100;
  const total = 3000;
  const wire = new WireAudit();
  const client = createClient({ urls: node.urls, name: 'blocked-publisher', debug: wire.line });
  const events: string[] = [];
  client.on('blocked', (reason) => events.push(`blocked: ${reason}`));
  client.on('unblocked', () => events.push('unblocked'));
  try {
    await client.declareQueue('warren-blocked', { durable: true });
    const pub = client.publisher({ maxUnconfirmed: limit });
    await pub.publish('', 'warren-blocked', Buffer.from('before the alarm'));

    await node.ctl(0, 'set_vm_memory_high_watermark', '0.000001');
    let confirmed = 0;
    const body = Buffer.alloc(2048, 1);
    const all = Array.from({ length: total }, () =>
      pub.publish('', 'warren-blocked', body).then(() => {
        confirmed++;
      }),
    );
    await waitFor(() => events.some((e) => e.startsWith('blocked')), { timeout: 30_000, what: "the 'blocked' event" });
    const atBlock = confirmed;
    await sleep(1500);
    assert.ok(confirmed - atBlock <= limit, `${confirmed - atBlock} confirms while blocked`);
    assert.ok(wire.maxUnconfirmed <= limit, `${wire.maxUnconfirmed} unconfirmed on the wire`);
    assert.ok(pub.unconfirmedCount <= limit);
    assert.ok(confirmed < total, 'everything was confirmed although the broker was blocked');
    const writtenWhileBlocked = wire.publishes;
    await sleep(500);
    assert.equal(wire.publishes, writtenWhileBlocked, 'publishes kept being written while blocked');

    await node.ctl(0, 'set_vm_memory_high_watermark', '0.4');
    await within(Promise.all(all), 60_000, `${total} confirms after the alarm cleared`);
    await waitFor(() => events.includes('unblocked'), { what: "the 'unblocked' event" });
    assert.equal(confirmed, total);
    assert.ok(wire.maxUnconfirmed <= limit);
    await client.deleteQueue('warren-blocked');
  } finally {
    await client.close({ timeout: 2000 });
  }
});
