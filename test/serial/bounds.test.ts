/**
 * Memory stays bounded when the other side is slow, measured on the wire (the connection's frame
 * trace), not only through the client's own counters:
 *
 * - a slow consumer: the client never holds more deliveries than its prefetch (received and not yet
 *   handled), and a stuck one receives exactly `prefetch` and then nothing while the queue is full;
 * - a fast publisher against a slow broker (a throttled TCP proxy) or a frozen one (the proxy holds
 *   every byte) never has more than `maxUnconfirmed` publishes written and unconfirmed, and writes
 *   nothing more while nothing comes back.
 *
 * (A broker that blocks publishing with a resource alarm is in test/cluster/blocked.test.ts, on a node
 * of its own.)
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '../../src/index.js';
import { WireAudit } from '../support/audit.js';
import { AMQP_URL } from '../support/broker.js';
import { fileFixture } from '../support/client.js';
import type { TcpProxy } from '../support/tcp-proxy.js';
import { waitFor, within } from '../support/wait.js';

const { clients, resources, brokerProxy } = fileFixture();
let proxy: TcpProxy;

before(async () => {
  proxy = await brokerProxy();
});

async function preload(queue: string, count: number): Promise<void> {
  const conn = await connect(AMQP_URL);
  try {
    const ch = await conn.openChannel();
    await ch.confirmSelect();
    await ch.queueDeclare(queue);
    const all: Promise<void>[] = [];
    for (let i = 0; i < count; i++) all.push(ch.basicPublish('', queue, Buffer.from(String(i))));
    await Promise.all(all);
  } finally {
    await conn.close();
  }
}

test('a slow consumer never holds more than its prefetch', { timeout: 60_000 }, async () => {
  const queue = resources.queue('slow-consumer');
  const total = 600;
  const prefetch = 20;
  await preload(queue, total);
  const wire = new WireAudit();
  let handled = 0;
  let maxHeld = 0;
  wire.onDelivery = () => {
    maxHeld = Math.max(maxHeld, wire.deliveries - handled);
  };
  const client = clients.make({ name: 'slow-consumer', debug: wire.line });
  const sub = client.consume(
    queue,
    async () => {
      await sleep(2);
      handled++;
    },
    { prefetch, concurrency: 4 },
  );
  await waitFor(() => handled === total, { timeout: 50_000, what: `${total} slow handlings` });
  await sub.cancel();
  assert.equal(wire.deliveries, total);
  assert.ok(maxHeld <= prefetch, `the client held ${maxHeld} deliveries, prefetch is ${prefetch}`);
  assert.ok(maxHeld >= prefetch / 2, `held only ${maxHeld}: the test did not make the consumer the bottleneck`);
});

test('a stuck consumer receives exactly its prefetch, then nothing, while the queue is full', {
  timeout: 60_000,
}, async () => {
  const queue = resources.queue('stuck-consumer');
  const prefetch = 15;
  await preload(queue, 500);
  const wire = new WireAudit();
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let started = 0;
  const client = clients.make({ name: 'stuck-consumer', debug: wire.line });
  const sub = client.consume(
    queue,
    async () => {
      started++;
      await released;
    },
    { prefetch, concurrency: 5 },
  );
  await waitFor(() => wire.deliveries >= prefetch, { what: 'the first prefetch of deliveries' });
  await sleep(750);
  assert.equal(wire.deliveries, prefetch, 'deliveries beyond prefetch while nothing was acked');
  assert.equal(started, 5, 'handlers running beyond the concurrency');
  release();
  await waitFor(() => wire.deliveries >= 100, { what: 'deliveries after the release' });
  await sub.cancel();
});

test('a fast publisher against a slow broker stays within maxUnconfirmed', { timeout: 90_000 }, async () => {
  const queue = resources.queue('slow-broker');
  const limit = 50;
  const total = 1500;
  const wire = new WireAudit();
  const client = clients.make({ urls: [proxy.url()], name: 'slow-broker', debug: wire.line });
  await client.declareQueue(queue);
  proxy.slow({ bytesPerSec: 256 * 1024, latencyMs: 20 });
  try {
    const pub = client.publisher({ maxUnconfirmed: limit });
    let maxSeen = 0;
    const sampler = setInterval(() => {
      maxSeen = Math.max(maxSeen, pub.unconfirmedCount);
    }, 2);
    const body = Buffer.alloc(1024, 7);
    const all = Array.from({ length: total }, () => pub.publish('', queue, body));
    await within(Promise.all(all), 80_000, `${total} confirms through the slow proxy`);
    clearInterval(sampler);
    assert.equal(wire.publishes, total);
    assert.ok(wire.maxUnconfirmed <= limit, `${wire.maxUnconfirmed} unconfirmed on the wire, limit ${limit}`);
    assert.ok(maxSeen <= limit, `unconfirmedCount reached ${maxSeen}`);
    assert.ok(wire.maxUnconfirmed >= limit / 2, 'the broker was not slow enough to fill the window');
  } finally {
    proxy.slow({});
  }
});

test('against a frozen broker the publisher writes no more than maxUnconfirmed, then resumes', {
  timeout: 60_000,
}, async () => {
  const queue = resources.queue('frozen-broker');
  const limit = 40;
  const wire = new WireAudit();
  const client = clients.make({ urls: [proxy.url()], name: 'frozen-broker', heartbeat: 0, debug: wire.line });
  await client.declareQueue(queue);
  const pub = client.publisher({ maxUnconfirmed: limit });
  await pub.publish('', queue, Buffer.from('warm-up'));
  proxy.freeze();
  try {
    let settled = 0;
    const all = Array.from({ length: 1000 }, (_, i) =>
      pub.publish('', queue, Buffer.from(String(i))).then(() => {
        settled++;
      }),
    );
    await sleep(1000);
    assert.equal(settled, 0, 'publishes resolved while the broker was frozen');
    assert.equal(wire.publishes, 1 + limit, 'publishes written while nothing came back');
    assert.equal(pub.unconfirmedCount, limit);
    proxy.thaw();
    await within(Promise.all(all), 30_000, 'the publishes after the thaw');
    assert.ok(wire.maxUnconfirmed <= limit);
  } finally {
    if (proxy.frozen) proxy.thaw();
  }
});
