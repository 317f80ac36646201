/**
 * Connection retry limits against ports that refuse (a proxy that stopped listening):
 * `connectionAttempts` per URL and round, `maxAttempts` in all, a fixed `retryDelay`; giving up
 * rejects every waiter (ready, a declare, a publish) with `ConnectionAttemptsExhausted`, emits
 * `'error'` only where someone listens, and a connection that comes up resets the count.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { ClosedError, ConnectionAttemptsExhausted, createClient, SocketError } from '../../src/index.js';
import { Resources, rejection } from '../support/broker.js';
import { Clients } from '../support/client.js';
import { startProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait.js';

const clients = new Clients();
const resources = new Resources();
const proxies: TcpProxy[] = [];
after(async () => {
  await clients.closeAll();
  for (const p of proxies) await p.close();
  await resources.cleanup();
});

async function refusingProxy(): Promise<TcpProxy> {
  return (await refusingProxies(1))[0]!;
}

/** Proxies that refuse (closed ports); all listen first, so that none gets a port another let go. */
async function refusingProxies(n: number): Promise<TcpProxy[]> {
  const made: TcpProxy[] = [];
  for (let i = 0; i < n; i++) made.push(await startProxy({ target: { host: '127.0.0.1', port: 5672 } }));
  proxies.push(...made);
  for (const proxy of made) await proxy.refuse(true, 'unlisten');
  return made;
}

test('maxAttempts with a fixed retryDelay: gives up with a typed error on every waiter', async () => {
  const proxy = await refusingProxy();
  const client = clients.make({ urls: [proxy.url()], maxAttempts: 3, retryDelay: 150 });
  const failedAt: number[] = [];
  const started = Date.now();
  client.on('connectFailed', (err) => {
    assert.ok(err instanceof SocketError);
    failedAt.push(Date.now() - started);
  });
  const errors: unknown[] = [];
  client.on('error', (err) => errors.push(err));
  const waiters = [
    client.ready(),
    client.declareQueue(resources.queue('never')),
    client.publisher().publish('', 'q', 'never sent'),
  ];
  const outcomes = await Promise.all(waiters.map((w) => rejection(w)));
  for (const err of outcomes) {
    assert.ok(err instanceof ConnectionAttemptsExhausted, `expected ConnectionAttemptsExhausted, got ${String(err)}`);
    assert.equal(err.attempts, 3);
    assert.ok(err.cause instanceof SocketError);
  }
  assert.equal(failedAt.length, 3);
  // A fixed delay, not jitter: attempts about 150 ms apart.
  assert.ok(failedAt[1]! - failedAt[0]! >= 140 && failedAt[2]! - failedAt[1]! >= 140, `attempts at ${failedAt}`);
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof ConnectionAttemptsExhausted);
  assert.equal(client.isClosed, true);
  assert.ok((await rejection(client.declareQueue('later'))) instanceof ClosedError);
});

test('connectionAttempts per URL, in order, counted into maxAttempts; no error event without a listener', async () => {
  const [a, b] = (await refusingProxies(2)) as [TcpProxy, TcpProxy];
  const client = createClient({
    urls: [a.url(), b.url()],
    connectionAttempts: 2,
    maxAttempts: 4,
    retryDelay: 10,
  });
  const tried: string[] = [];
  client.on('connectFailed', (_err, { url }) =>
    tried.push(url.endsWith(`:${a.port}`) ? 'a' : url.endsWith(`:${b.port}`) ? 'b' : url),
  );
  // No 'error' listener: giving up must not throw an unhandled 'error' event.
  const err = await rejection(client.ready());
  assert.ok(err instanceof ConnectionAttemptsExhausted);
  assert.deepEqual(tried, ['a', 'a', 'b', 'b']);
  await client.close();
});

test('a connection that comes up resets the count', async () => {
  const proxy = await refusingProxy();
  const client = clients.make({ urls: [proxy.url()], maxAttempts: 3, retryDelay: 30 });
  let failed = 0;
  client.on('connectFailed', () => {
    failed++;
    if (failed === 2) void proxy.refuse(false);
  });
  await client.ready({ timeout: 5000 });
  // Two more failures after a cut would have made four in all: still connecting.
  await proxy.refuse(true, 'unlisten');
  proxy.cutAll();
  await waitFor(() => failed >= 4, { what: 'two more failed attempts' });
  await proxy.refuse(false);
  await client.ready({ timeout: 5000 });
  assert.equal(client.isClosed, false);
});
