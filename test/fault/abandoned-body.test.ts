/**
 * A publish abandoned (aborted) or rejected (publisher closed) while the broker is unreachable lets
 * its body go at once: 20 × 10 MiB published while the proxy refuses connections, then aborted, are
 * collected by the next GC while the client is still disconnected; when the broker is reachable
 * again, none of them is sent.
 */
import assert from 'node:assert/strict';
import { setMaxListeners } from 'node:events';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { AbortError, ClosedError } from '../../src/index.js';
import { readyCount, withChannel } from '../support/broker.js';
import { fileFixture } from '../support/client.js';
import type { TcpProxy } from '../support/tcp-proxy.js';
import { nextEvent } from '../support/wait.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const MIB = 1 << 20;
const COUNT = 20;
const SIZE = 10 * MIB;
const { clients, resources, brokerProxy } = fileFixture();
let proxy: TcpProxy | undefined;

/** Off-heap bytes held by Buffers after a full collection. */
async function settledBuffers(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(20);
  }
  return process.memoryUsage().arrayBuffers;
}

/** Publishes COUNT big bodies that nobody else references; returns their (observed) outcomes. */
function publishBig(publish: (body: Buffer) => Promise<void>): Promise<unknown>[] {
  const out: Promise<unknown>[] = [];
  for (let i = 0; i < COUNT; i++) {
    out.push(
      publish(Buffer.alloc(SIZE, i)).then(
        () => 'sent',
        (err: unknown) => err,
      ),
    );
  }
  return out;
}

test(`${COUNT} × 10 MiB aborted or rejected while the broker is unreachable are released at once and never sent`, {
  timeout: 30_000,
}, async () => {
  proxy = await brokerProxy();
  const client = clients.make({
    urls: [proxy.url()],
    name: 'abandoned-body',
    backoff: { initialDelay: 20, maxDelay: 50 },
  });
  client.on('disconnect', () => {});
  const queue = resources.queue('abandoned-body');
  await client.declareQueue(queue);
  const pub = client.publisher();
  await pub.publish('', queue, 'before');

  await proxy.refuse(true, 'unlisten');
  const down = nextEvent(client, 'disconnect');
  proxy.cutAll();
  await down;
  const baseline = await settledBuffers();

  // Aborted by the caller.
  const controller = new AbortController();
  setMaxListeners(COUNT + 1, controller.signal);
  const aborted = publishBig((body) => pub.publish('', queue, body, {}, { signal: controller.signal }));
  const held = await settledBuffers();
  assert.ok(
    held - baseline >= COUNT * SIZE * 0.9,
    `the bodies are held while waiting (${(held - baseline) / MIB} MiB)`,
  );
  controller.abort();
  for (const outcome of await Promise.all(aborted)) assert.ok(outcome instanceof AbortError, String(outcome));
  const afterAbort = await settledBuffers();
  assert.ok(
    afterAbort - baseline < 2 * SIZE,
    `aborted bodies are released while still disconnected (${((afterAbort - baseline) / MIB).toFixed(1)} MiB left)`,
  );
  assert.equal(client.isConnected, false, 'still disconnected');

  // Rejected by the publisher's close.
  const other = client.publisher();
  const rejected = publishBig((body) => other.publish('', queue, body));
  await other.close({ timeout: 50 });
  for (const outcome of await Promise.all(rejected)) assert.ok(outcome instanceof ClosedError, String(outcome));
  const afterClose = await settledBuffers();
  assert.ok(
    afterClose - baseline < 2 * SIZE,
    `rejected bodies are released while still disconnected (${((afterClose - baseline) / MIB).toFixed(1)} MiB left)`,
  );

  // Back online: nothing that was given up is sent.
  const up = nextEvent(client, 'connect', 10_000);
  await proxy.refuse(false);
  await up;
  await pub.publish('', queue, 'after');
  await sleep(100);
  assert.ok(proxy.bytesForwarded.up < SIZE, `no big body went to the broker (${proxy.bytesForwarded.up} B up)`);
  assert.equal(await withChannel((ch) => readyCount(ch, queue)), 2, 'only the two small messages are in the queue');
});

test('publishing and aborting while offline does not grow the publisher without bound', {
  timeout: 30_000,
}, async () => {
  const client = clients.make({
    urls: ['amqp://guest:guest@127.0.0.1:1'],
    backoff: { initialDelay: 50, maxDelay: 100 },
  });
  client.on('disconnect', () => {});
  const pub = client.publisher();
  const round = async (): Promise<void> => {
    const controller = new AbortController();
    setMaxListeners(0, controller.signal);
    let rejected = 0;
    for (let i = 0; i < 50_000; i++) {
      pub.publish('', 'q', 'x', {}, { signal: controller.signal }).catch(() => rejected++);
    }
    controller.abort();
    await sleep(0);
    assert.equal(rejected, 50_000);
  };
  const heap = async (): Promise<number> => {
    for (let i = 0; i < 3; i++) {
      gc();
      await sleep(20);
    }
    return process.memoryUsage().heapUsed;
  };
  await round();
  const before = await heap();
  for (let i = 0; i < 3; i++) await round();
  const grown = (await heap()) - before;
  assert.equal(pub.pendingCount, 0);
  assert.ok(grown < 8 * MIB, `150,000 abandoned publishes leave ${(grown / MIB).toFixed(1)} MiB behind`);
});
