/**
 * A connection that came up and had its topology replayed is a success, however short its life: the
 * next outage starts again from the first backoff round. Through a proxy that cuts every connection
 * shortly after the client reports it connected, the time from each cut to the next connect stays
 * small cut after cut, instead of growing with the backoff as it did when a connection had to live
 * a second to count.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileFixture } from '../support/client.js';
import { nextEvent } from '../support/wait.js';

const { clients, resources, brokerProxy } = fileFixture();

test('short-lived but established connections do not grow the reconnect delay', { timeout: 60_000 }, async () => {
  const proxy = await brokerProxy();
  const queue = resources.queue('backoff');
  const client = clients.make({ urls: [proxy.url()], backoff: { initialDelay: 400, maxDelay: 10_000 } });
  await client.declareQueue(queue, { durable: false });
  const pub = client.publisher();
  const delays: number[] = [];
  for (let cut = 0; cut < 6; cut++) {
    await client.ready({ timeout: 15_000 });
    await pub.publish('', queue, `before cut ${cut}`);
    await sleep(100); // well under a second: the old rule counted this connection as a failure
    const reconnected = nextEvent(client, 'connect', 15_000);
    const cutAt = Date.now();
    proxy.cutAll();
    await reconnected;
    delays.push(Date.now() - cutAt);
  }
  // The first backoff round after a healthy connection is an immediate retry; the handshake and the
  // replay of one queue take a few ms on loopback. Growing backoff would reach seconds by cut 4.
  assert.ok(Math.max(...delays) < 1000, `reconnect delays after each cut: ${delays.join(', ')} ms`);
});

test('a broker that accepts and drops at once is still retried with growing delays', { timeout: 60_000 }, async () => {
  const proxy = await brokerProxy();
  await proxy.refuse(true, 'close');
  const client = clients.make({ urls: [proxy.url()], backoff: { initialDelay: 100, maxDelay: 800 } });
  let failed = 0;
  client.on('connectFailed', () => failed++);
  await sleep(2000);
  // Without backoff this would be hundreds of attempts; with it, a handful (100, 200, 400, 800… ms with jitter).
  assert.ok(failed >= 2 && failed < 40, `${failed} attempts in 2 s`);
  await proxy.refuse(false);
  await client.ready({ timeout: 10_000 });
});
