/**
 * Zero loss under cuts: a TCP proxy between the client and the broker destroys every connection every
 * 300 ms while 20,000 persistent messages are published with confirms, and while 20,000 messages are
 * consumed. Every message id must reach the queue, every id must be handled, no delivery tag may be
 * settled twice on the wire (checked against the frame trace the way the broker checks it), and
 * nothing may be left unacked.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type AMQPError, ChannelClosedByServer } from '../../src/index.js';
import { withChannel, withConnection } from '../support/broker.js';
import { AckAudit, fileFixture } from '../support/client.js';
import type { TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait.js';

const TOTAL = 20_000;
const CUT_EVERY_MS = 300;
/** Short delays: every 300 ms the connections are cut, but the broker itself is up. */
const backoff = { initialDelay: 10, maxDelay: 50 };
const { clients, resources, brokerProxy } = fileFixture();
let proxy: TcpProxy;

before(async () => {
  proxy = await brokerProxy();
});

async function readyCount(queue: string): Promise<number> {
  return withChannel(async (ch) => (await ch.queueDeclare(queue, { passive: true })).messageCount);
}

/** Cuts every connection through the proxy every `ms`; the returned function stops and counts the cuts. */
function cutEvery(ms: number): () => number {
  let cuts = 0;
  const timer = setInterval(() => {
    if (proxy.connectionCount > 0) cuts++;
    proxy.cutAll();
  }, ms);
  return () => {
    clearInterval(timer);
    return cuts;
  };
}

test(`${TOTAL} persistent messages published with confirms while every connection is cut every ${CUT_EVERY_MS} ms all reach the queue`, {
  timeout: 120_000,
}, async () => {
  const queue = resources.queue('zero-loss-pub');
  const client = clients.make({ urls: [proxy.url()], name: 'zero-loss-pub', backoff });
  let disconnects = 0;
  client.on('disconnect', () => disconnects++);
  await client.declareQueue(queue, { durable: true });
  // A cut sends again everything unconfirmed, much of which the broker had already stored: a window
  // smaller than the default 1000 keeps the duplicates (and the time to read them back) down.
  const pub = client.publisher({ maxUnconfirmed: 250 });
  const stop = cutEvery(CUT_EVERY_MS);
  let highest = 0;
  const sampler = setInterval(() => {
    highest = Math.max(highest, pub.unconfirmedCount);
  }, 5);
  const started = Date.now();
  try {
    const publishes: Promise<void>[] = [];
    for (let i = 0; i < TOTAL; i++) {
      publishes.push(pub.publish('', queue, `body-${i}`, { deliveryMode: 2, messageId: String(i) }));
      // Paced (about 10,000 a second at most), so that the cuts fall while publishing: unpaced, the
      // publisher can be done within two cuts.
      if (i % 1000 === 999) await sleep(100);
    }
    await Promise.all(publishes);
  } finally {
    clearInterval(sampler);
    const cuts = stop();
    console.log(`published ${TOTAL} in ${Date.now() - started} ms across ${cuts} cuts, ${disconnects} disconnects`);
  }
  assert.ok(disconnects >= 3, `the proxy cut the client several times (${disconnects})`);
  assert.ok(highest <= 250, `never more than maxUnconfirmed in flight (${highest})`);
  await client.close();
  // Read everything back (no proxy, no acks): every id at least once; duplicates are allowed.
  const inQueue = await readyCount(queue);
  const ids = await withConnection(async (conn) => {
    const ch = await conn.openChannel();
    const seen = new Set<string>();
    let n = 0;
    await new Promise<void>((resolve) => {
      void ch.basicConsume(queue, { noAck: true }, (msg) => {
        seen.add(msg.properties.messageId!);
        if (++n === inQueue) resolve();
      });
    });
    await ch.close();
    return seen;
  });
  console.log(`${inQueue} messages in the queue for ${TOTAL} ids`);
  assert.equal(ids.size, TOTAL, 'every message id is in the queue');
});

test(`${TOTAL} messages consumed while every connection is cut every ${CUT_EVERY_MS} ms: every id handled, no tag settled twice, nothing left unacked`, {
  timeout: 120_000,
}, async () => {
  const queue = resources.queue('zero-loss-sub');
  await withConnection(async (conn) => {
    const ch = await conn.openChannel();
    await ch.queueDeclare(queue);
    await ch.confirmSelect();
    for (let k = 0; k < TOTAL; k += 1000) {
      await Promise.all(
        Array.from({ length: 1000 }, (_, i) =>
          ch.basicPublish('', queue, Buffer.from('x'), { messageId: String(k + i) }),
        ),
      );
    }
    await ch.close();
  });
  assert.equal(await readyCount(queue), TOTAL);
  const audit = new AckAudit();
  const client = clients.make({ urls: [proxy.url()], name: 'zero-loss-sub', backoff, debug: audit.line });
  const seen = new Set<string>();
  let handled = 0;
  const channelErrors: AMQPError[] = [];
  const sub = client.consume(
    queue,
    async (msg) => {
      await sleep(0);
      seen.add(msg.properties.messageId!);
      handled++;
    },
    { concurrency: 20, prefetch: 100 },
  );
  sub.on('error', (err) => channelErrors.push(err));
  const stop = cutEvery(CUT_EVERY_MS);
  const started = Date.now();
  try {
    await waitFor(() => seen.size === TOTAL, { timeout: 100_000, interval: 50, what: `all ${TOTAL} ids` });
  } finally {
    const cuts = stop();
    console.log(
      `handled ${handled} deliveries (${seen.size} ids) in ${Date.now() - started} ms across ${cuts} cuts; ` +
        `${audit.ackFrames} ack frames (${audit.multipleAcks} multiple) for ${audit.deliveries} deliveries`,
    );
  }
  // Redeliveries of messages whose ack a cut lost may still come: wait until the queue is empty and
  // the handlers idle, three polls in a row.
  let quiet = 0;
  await waitFor(
    async () => {
      quiet = (await readyCount(queue)) === 0 && sub.runningCount === 0 ? quiet + 1 : 0;
      return quiet >= 3;
    },
    { timeout: 30_000, interval: 100, what: 'the queue to empty' },
  );
  const { requeued } = await sub.cancel();
  await client.close();
  assert.deepEqual(audit.violations, [], 'no delivery tag settled twice');
  assert.deepEqual(
    channelErrors.filter((e) => e instanceof ChannelClosedByServer),
    [],
    'no channel closed by the broker (a double ack would be a 406)',
  );
  assert.equal(requeued, 0);
  assert.equal(await readyCount(queue), 0, 'nothing left unacked: after close the broker requeued nothing');
});
