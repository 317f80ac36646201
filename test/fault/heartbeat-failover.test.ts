/**
 * Black holes and failover, through in-test TCP proxies:
 * - with `heartbeat: 1`, a connection whose traffic stops is reported as `HeartbeatTimeout` and
 *   replaced within 3 seconds, and a publish made meanwhile is confirmed on the new connection;
 * - with two URLs where the first refuses connections, the client connects to the second, and back
 *   to the first when the second is cut.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { type AMQPError, HeartbeatTimeout } from '../../src/index.js';
import { Resources } from '../support/broker.js';
import { Clients } from '../support/client.js';
import { startProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { waitFor, nextEvent } from '../support/wait.js';

const clients = new Clients();
const resources = new Resources();
const proxies: TcpProxy[] = [];
after(async () => {
  await clients.closeAll();
  await Promise.all(proxies.map((p) => p.close()));
  await resources.cleanup();
});

async function proxy(): Promise<TcpProxy> {
  const p = await startProxy({ target: { host: '127.0.0.1', port: 5672 } });
  proxies.push(p);
  return p;
}

test('a frozen connection is reported as HeartbeatTimeout and replaced within 3 seconds', {
  timeout: 20_000,
}, async () => {
  const [a, b] = [await proxy(), await proxy()];
  const client = clients.make({
    urls: [a.url(), b.url()],
    name: 'blackhole',
    heartbeat: 1,
    connectionTimeout: 1000,
    backoff: { initialDelay: 20, maxDelay: 100 },
  });
  const queue = resources.queue('blackhole');
  await client.declareQueue(queue);
  // An exclusive queue stays locked by the frozen connection until the broker gives up on it; the
  // client keeps retrying its declaration, and its consumer, until then.
  const exclusive = resources.queue('blackhole-exclusive');
  await client.declareQueue(exclusive, { exclusive: true });
  await client.bindQueue(exclusive, 'amq.direct', exclusive);
  const got: string[] = [];
  const sub = client.consume(exclusive, (m) => {
    got.push(m.body.toString());
  });
  await sub.ready();
  const pub = client.publisher();
  await pub.publish('', queue, 'before');
  // The path through `a` goes dark: nothing passes, and new connections to it are refused.
  const frozenAt = Date.now();
  a.freeze();
  await a.refuse(true, 'unlisten');
  const disconnected = nextEvent<[AMQPError]>(client, 'disconnect', 5000);
  const reconnected = nextEvent<[{ url: string }]>(client, 'connect', 5000);
  const during = pub.publish('', queue, 'during');
  const [err] = await disconnected;
  const detectedAfter = Date.now() - frozenAt;
  assert.ok(err instanceof HeartbeatTimeout, `expected HeartbeatTimeout, got ${err}`);
  const [{ url }] = await reconnected;
  const replacedAfter = Date.now() - frozenAt;
  console.log(`heartbeat loss detected after ${detectedAfter} ms, replaced after ${replacedAfter} ms`);
  assert.equal(url, b.url().replace(':guest@', ':***@'));
  assert.ok(replacedAfter < 3000, `replaced within 3 s (took ${replacedAfter} ms)`);
  await during;
  await pub.publish('', queue, 'after');
  await waitFor(
    async () => {
      await pub.publish('amq.direct', exclusive, `probe-${got.length}`);
      return got.length > 0;
    },
    { timeout: 15_000, interval: 200, what: 'the exclusive queue and its binding to be back' },
  );
  console.log(`exclusive queue usable again after ${Date.now() - frozenAt} ms`);
});

test('failover: the first URL refuses, the client uses the second, and goes back to the first when the second is cut', {
  timeout: 20_000,
}, async () => {
  const [first, second] = [await proxy(), await proxy()];
  await first.refuse(true, 'unlisten');
  const client = clients.make({
    urls: [first.url(), second.url()],
    name: 'failover',
    backoff: { initialDelay: 20, maxDelay: 100 },
  });
  const failures: string[] = [];
  client.on('connectFailed', (_err, { url }) => failures.push(url));
  const [{ url: firstConnect }] = await nextEvent<[{ url: string }]>(client, 'connect');
  assert.equal(firstConnect, second.url().replace(':guest@', ':***@'));
  assert.ok(failures.includes(first.url().replace(':guest@', ':***@')), 'the first URL was tried first');
  const queue = resources.queue('failover');
  await client.declareQueue(queue);
  const pub = client.publisher();
  await pub.publish('', queue, 'via second');

  await first.refuse(false);
  const back = nextEvent<[{ url: string }]>(client, 'connect');
  second.cutAll();
  const [{ url: secondConnect }] = await back;
  assert.equal(secondConnect, first.url().replace(':guest@', ':***@'));
  await pub.publish('', queue, 'via first');
  assert.equal(first.connectionCount, 1);
  assert.equal(second.connectionCount, 0);
});

test('connectionAttempts: each URL is tried that many times per round before the next one', {
  timeout: 20_000,
}, async () => {
  const [refusing, good] = [await proxy(), await proxy()];
  await refusing.refuse(true, 'unlisten');
  const client = clients.make({
    urls: [refusing.url(), good.url()],
    name: 'attempts',
    connectionAttempts: 3,
    shuffle: false,
  });
  const tried: string[] = [];
  client.on('connectFailed', (_err, { url }) => tried.push(url));
  const [{ url }] = await nextEvent<[{ url: string }]>(client, 'connect');
  assert.equal(url, good.url().replace(':guest@', ':***@'));
  assert.deepEqual(tried, Array(3).fill(refusing.url().replace(':guest@', ':***@')));
});
