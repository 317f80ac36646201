/**
 * Bounded buffering of the robust publisher while it cannot send (the broker is unreachable, here
 * through a refusing proxy): `maxPending` / `maxPendingBytes` with `onFull: 'reject'` refuse at
 * once with `PublisherFullError`, with `onFull: 'wait'` hold the publish until there is room; a
 * per-publish `timeout` rejects with `TimeoutError` and the message is never sent; `pendingCount`
 * and `pendingBytes` say what is held; everything held arrives once the broker is back.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError, PublisherFullError, TimeoutError } from '../../src/index.js';
import { drain, Resources, rejection, withChannel } from '../support/broker.js';
import { Clients } from '../support/client.js';
import { startProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait.js';

const clients = new Clients();
const resources = new Resources();
let proxy: TcpProxy;

before(async () => {
  proxy = await startProxy({ target: { host: '127.0.0.1', port: 5672 } });
});
afterEach(async () => {
  await proxy.refuse(false);
});
after(async () => {
  await clients.closeAll();
  await proxy.close();
  await resources.cleanup();
});

/** A client whose connection is cut and refused: its publishes can only wait. */
async function offlineClient(queue: string) {
  const client = clients.make({ urls: [proxy.url()], backoff: { initialDelay: 20, maxDelay: 50 } });
  await client.declareQueue(queue);
  await proxy.refuse(true, 'unlisten');
  proxy.cutAll();
  await waitFor(() => !client.isConnected, { what: 'the disconnect' });
  return client;
}

async function bodies(queue: string): Promise<string[]> {
  return withChannel(async (ch) => (await drain(ch, queue)).map((m) => m.body.toString()));
}

test("onFull: 'reject' refuses beyond maxPending at once; what was held arrives later", async () => {
  const queue = resources.queue('bound-reject');
  const client = await offlineClient(queue);
  const pub = client.publisher({ maxPending: 3, onFull: 'reject' });
  const held = ['a', 'b', 'c'].map((b) => pub.publish('', queue, b));
  assert.equal(pub.pendingCount, 3);
  assert.equal(pub.pendingBytes, 3);
  const err = await rejection(pub.publish('', queue, 'd'));
  assert.ok(err instanceof PublisherFullError, `expected PublisherFullError, got ${String(err)}`);
  assert.match((err as Error).message, /holds 3 messages .*maxPending 3/);
  assert.equal(pub.pendingCount, 3, 'the refused message was not taken');
  await proxy.refuse(false);
  await Promise.all(held);
  assert.equal(pub.pendingCount, 0);
  assert.equal(pub.pendingBytes, 0);
  assert.deepEqual(await bodies(queue), ['a', 'b', 'c']);
});

test("onFull: 'wait' holds publishes beyond maxPendingBytes until there is room, in order", async () => {
  const queue = resources.queue('bound-wait');
  const client = await offlineClient(queue);
  const pub = client.publisher({ maxPendingBytes: 10, onFull: 'wait' });
  const settled: string[] = [];
  const sends = ['12345', '67890', 'abc', 'de'].map((b) => pub.publish('', queue, b).then(() => settled.push(b)));
  await sleep(50);
  assert.equal(pub.pendingBytes, 10);
  assert.equal(pub.pendingCount, 2);
  assert.equal(pub.waitingForRoom, 2);
  assert.deepEqual(settled, []);
  assert.ok((await rejection(pub.publish('', queue, 'x'.repeat(11)))) instanceof InvalidArgumentError);
  await proxy.refuse(false);
  await Promise.all(sends);
  assert.deepEqual(settled, ['12345', '67890', 'abc', 'de']);
  assert.deepEqual(await bodies(queue), ['12345', '67890', 'abc', 'de']);
  assert.equal(pub.waitingForRoom, 0);
});

test('a per-publish timeout rejects with TimeoutError and that message is never sent', async () => {
  const queue = resources.queue('bound-timeout');
  const client = await offlineClient(queue);
  const pub = client.publisher({ maxPending: 1 });
  const first = pub.publish('', queue, 'kept');
  const started = Date.now();
  // One waits for the broker, one waits for room: both time out.
  const late = pub.publish('', queue, 'late', {}, { timeout: 200 });
  const roomless = pub.publish('', queue, 'roomless', {}, { timeout: 250 });
  const err = await rejection(late);
  assert.ok(err instanceof TimeoutError, `expected TimeoutError, got ${String(err)}`);
  assert.ok(Date.now() - started >= 190);
  assert.ok((await rejection(roomless)) instanceof TimeoutError);
  assert.equal(pub.pendingCount, 1);
  assert.equal(pub.waitingForRoom, 0);
  await proxy.refuse(false);
  await first;
  await sleep(100);
  assert.deepEqual(await bodies(queue), ['kept'], 'the timed-out messages were not sent');
});
