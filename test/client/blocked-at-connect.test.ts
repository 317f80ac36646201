/**
 * A `connection.blocked` that the broker sends right behind `connection.open-ok` (a broker already in
 * a memory alarm does exactly that) arrives before the robust client has attached its listeners to the
 * new connection; the client must still know it is blocked.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Clients } from '../support/client.js';
import { startFakeServer } from '../support/fake-server.js';
import { waitFor } from '../support/wait.js';

const clients = new Clients();

test('a connection.blocked in the same read as open-ok blocks the robust client', { timeout: 20_000 }, async () => {
  const server = await startFakeServer(async (s) => {
    await s.handshake();
    // Same tick as open-ok: both land in one read on the client side.
    s.send(0, 'connection.blocked', { reason: 'low on memory' });
    await sleep(500);
    s.send(0, 'connection.unblocked', {});
    await s.expectClose({ timeoutMs: 10_000 });
  });
  try {
    const client = clients.make({ urls: [server.url], backoff: { initialDelay: 50, maxDelay: 200 } });
    const seen: string[] = [];
    client.on('blocked', (reason) => seen.push(`blocked ${reason}`));
    client.on('unblocked', () => seen.push('unblocked'));
    await client.ready(AbortSignal.timeout(5000));
    assert.equal(client.isBlocked, true, 'blocked right after connecting');
    await waitFor(() => seen.length === 2, { what: 'blocked then unblocked', timeout: 5000 });
    assert.deepEqual(seen, ['blocked low on memory', 'unblocked']);
    assert.equal(client.isBlocked, false);
    await client.close({ timeout: 2000 });
    await server.done();
  } finally {
    await server.close();
    await clients.closeAll();
  }
});
