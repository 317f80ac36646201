/**
 * No leaks across reconnects: a client with a publisher, a subscription, an iterator, RPC and a
 * server-named queue goes through 100 cuts; afterwards its listener counts, the process's timers and
 * sockets, its recorded topology and the heap are where they were after the first few cycles.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Client } from '../../src/index.js';
import { fileFixture } from '../support/client.js';
import type { TcpProxy } from '../support/tcp-proxy.js';
import { waitFor, nextEvent } from '../support/wait.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const CYCLES = Number(process.env.WARREN_LEAK_CYCLES ?? 100);
const { clients, resources, brokerProxy } = fileFixture();
let proxy: TcpProxy | undefined;

function resources_(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

function listeners(client: Client): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of client.eventNames()) out[String(name)] = client.listenerCount(name);
  return out;
}

async function settledHeap(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(20);
  }
  return process.memoryUsage().heapUsed;
}

test(`after ${CYCLES} reconnect cycles, listeners, timers, sockets, topology and heap are flat`, {
  timeout: 90_000,
}, async () => {
  proxy = await brokerProxy();
  const client = clients.make({ urls: [proxy.url()], name: 'leaks', backoff: { initialDelay: 5, maxDelay: 20 } });
  client.on('disconnect', () => {});
  const queue = resources.queue('leaks');
  const rpcQueue = resources.queue('leaks-rpc');
  await client.declareQueue(queue);
  await client.declareQueue(rpcQueue);
  const { queue: serverNamed } = await client.declareQueue('', { exclusive: true });
  await client.bindQueue(serverNamed, 'amq.fanout');
  const pub = client.publisher();
  let received = 0;
  const sub = client.consume(queue, () => {
    received++;
  });
  const server = client.rpcServer(rpcQueue, (req) => req.body);
  const iterator = client.consumer(serverNamed);
  const looping = (async () => {
    for await (const _ of iterator) {
      // drained
    }
  })();

  const cycle = async (i: number) => {
    const reconnected = nextEvent(client, 'connect', 10_000);
    proxy!.cutAll();
    await reconnected;
    if (i % 10 === 0) {
      // Everything still works on this connection.
      await sub.ready(AbortSignal.timeout(10_000));
      await server.ready(AbortSignal.timeout(10_000));
      const before = received;
      await pub.publish('', queue, `m${i}`);
      await waitFor(() => received > before, { what: `delivery in cycle ${i}` });
      const reply = await client.rpc(rpcQueue, `ping${i}`, { timeout: 10_000 }).catch(async () => {
        // A cut may land between request and reply; one retry on the now-stable connection.
        return client.rpc(rpcQueue, `ping${i}`, { timeout: 10_000 });
      });
      assert.equal(reply.body.toString(), `ping${i}`);
    }
  };

  for (let i = 0; i < 10; i++) await cycle(i);
  await sleep(100);
  const baseListeners = listeners(client);
  const baseResources = resources_();
  const baseHeap = await settledHeap();

  const started = Date.now();
  for (let i = 10; i < CYCLES; i++) await cycle(i);
  console.log(`${CYCLES - 10} cycles in ${Date.now() - started} ms`);
  await sleep(100);
  const heap = await settledHeap();

  assert.deepEqual(listeners(client), baseListeners, 'listener counts are flat');
  const now = resources_();
  for (const kind of ['Timeout', 'TCPSocketWrap', 'TCPWRAP']) {
    assert.ok((now[kind] ?? 0) <= (baseResources[kind] ?? 0) + 1, `${kind}: ${now[kind]} vs ${baseResources[kind]}`);
  }
  assert.deepEqual(client.recordedTopology, { exchanges: 0, queues: 3, bindings: 1 });
  const growth = heap - baseHeap;
  console.log(`heap: ${(baseHeap / 1e6).toFixed(1)} MB -> ${(heap / 1e6).toFixed(1)} MB`);
  assert.ok(growth < 4e6, `heap grew by ${(growth / 1e6).toFixed(1)} MB over ${CYCLES - 10} cycles`);
  assert.equal(pub.pendingCount, 0);
  assert.ok(sub.runningCount === 0);

  await iterator.cancel();
  await looping;
});
