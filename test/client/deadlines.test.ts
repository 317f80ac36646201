/**
 * Deadlines of the robust client against the real broker: a declare on a connection that stops
 * answering (a frozen TCP proxy) fails with `TimeoutError` after `operationTimeout`, a per-operation
 * `timeout` bounds the wait for a connection too, `signal` aborts a declare already sent, and
 * `await using` closes connections, channels, publishers, subscriptions and clients.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { AbortError, type Channel, type Connection, connect, TimeoutError } from '../../src/index.js';
import { AMQP_URL, Resources, rejection, withChannel } from '../support/broker.js';
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
  proxy.thaw();
  await proxy.refuse(false);
});
after(async () => {
  await clients.closeAll();
  await proxy.close();
  await resources.cleanup();
});

test('a declare on a frozen connection fails with TimeoutError after operationTimeout', {
  timeout: 15_000,
}, async () => {
  const client = clients.make({ urls: [proxy.url()], operationTimeout: 400, heartbeat: 0 });
  await client.ready({ timeout: 5000 });
  proxy.freeze();
  const started = Date.now();
  const err = await rejection(client.declareQueue(resources.queue('frozen'), { durable: false }));
  const took = Date.now() - started;
  assert.ok(err instanceof TimeoutError, `expected TimeoutError, got ${String(err)}`);
  assert.ok(took >= 380 && took < 3000, `rejected after ${took} ms`);
  proxy.thaw();
  // The connection itself is fine: the next declare goes through once the broker answers again.
  const name = resources.queue('after-thaw');
  await client.declareQueue(name, { timeout: 5000 });
  await withChannel(async (ch) => {
    assert.equal((await ch.queueDeclare(name, { passive: true })).queue, name);
  });
});

test('a per-operation timeout bounds the wait for a connection', { timeout: 15_000 }, async () => {
  await proxy.refuse(true, 'unlisten');
  const client = clients.make({ urls: [proxy.url()], backoff: { initialDelay: 50, maxDelay: 100 } });
  const started = Date.now();
  const err = await rejection(client.declareQueue(resources.queue('never'), { timeout: 300 }));
  const took = Date.now() - started;
  assert.ok(err instanceof TimeoutError, `expected TimeoutError, got ${String(err)}`);
  assert.match((err as Error).message, /declareQueue did not finish within 300 ms \(no connection/);
  assert.ok(took >= 280 && took < 2000, `rejected after ${took} ms`);
  assert.ok((await rejection(client.ready({ timeout: 100 }))) instanceof TimeoutError);
  await client.close({ timeout: 1000 });
});

test('signal aborts a declare the broker does not answer', { timeout: 15_000 }, async () => {
  const client = clients.make({ urls: [proxy.url()], heartbeat: 0 });
  await client.ready({ timeout: 5000 });
  proxy.freeze();
  const controller = new AbortController();
  const declaring = client.declareExchange(resources.exchange('stuck'), 'fanout', { signal: controller.signal });
  setTimeout(() => controller.abort(), 200);
  assert.ok((await rejection(declaring)) instanceof AbortError);
  proxy.thaw();
});

test('await using closes a connection, a channel, a publisher, a subscription and a client', async () => {
  const queue = resources.queue('dispose');
  let conn: Connection | undefined;
  let ch: Channel | undefined;
  {
    await using c = await connect(AMQP_URL);
    await using channel = await c.openChannel();
    conn = c;
    ch = channel;
    await channel.queueDeclare(queue);
  }
  assert.equal(ch.isOpen, false);
  assert.equal(conn.isOpen, false);
  assert.equal(conn.signal.aborted, true, 'the lifetime signal fired with the close');

  const client = clients.make();
  {
    await using pub = client.publisher();
    await using sub = client.consume(queue, async () => {});
    await sub.ready();
    await pub.publish('', queue, 'x');
  }
  await waitFor(async () => (await withChannel((c) => c.queueDeclare(queue, { passive: true }))).consumerCount === 0, {
    what: 'the subscription to be cancelled at the end of its scope',
  });
  let scoped: { isClosed: boolean } | undefined;
  {
    await using inner = clients.make();
    await inner.ready();
    scoped = inner;
    assert.equal(inner.isClosed, false);
  }
  assert.equal(scoped.isClosed, true);
});

test('sessionSignal aborts when the connection under the client ends', { timeout: 15_000 }, async () => {
  const client = clients.make({ urls: [proxy.url()], backoff: { initialDelay: 20, maxDelay: 50 } });
  const before: AbortSignal | undefined = client.sessionSignal;
  assert.equal(before, undefined);
  await client.ready({ timeout: 5000 });
  const first: AbortSignal | undefined = client.sessionSignal;
  assert.ok(first !== undefined && !first.aborted);
  proxy.cutAll();
  await waitFor(() => first.aborted, { what: 'the session signal to abort' });
  await waitFor(() => client.sessionSignal !== undefined && client.sessionSignal !== first, {
    what: 'the next session',
  });
  assert.equal(client.sessionSignal?.aborted, false);
});
