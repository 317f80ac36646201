/**
 * `close({ timeout })` returns within its timeout (guarantee 5) even when the connection is
 * blackholed (a frozen TCP proxy: the socket stays open, the broker's close-ok never arrives):
 * it resolves, what was pending rejects with `ClosedError`, the socket is destroyed and no timer is
 * left. The low-level `connection.close({ timeout })` does the same.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, afterEach, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClosedError, type Connection, connect } from '../../src/index.js';
import { Resources, rejection } from '../support/broker.js';
import { Clients } from '../support/client.js';
import { startProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { within } from '../support/wait.js';

const SLACK_MS = 300;
const clients = new Clients();
const resources = new Resources();
let proxy: TcpProxy;

before(async () => {
  proxy = await startProxy({ target: { host: '127.0.0.1', port: 5672 } });
});
afterEach(() => proxy.thaw());
after(async () => {
  await clients.closeAll();
  await proxy.close();
  await resources.cleanup();
});

function timers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

/** The socket under a connection (kept out of enumerable fields, but there). */
function socketOf(conn: Connection): Socket {
  return (conn as unknown as { socket: Socket }).socket;
}

test('client.close({ timeout: 1000 }) on a blackholed connection returns within about 1000 ms and leaves nothing running', {
  timeout: 20_000,
}, async () => {
  const queue = resources.queue('close-deadline');
  const baseline = timers();
  const client = clients.make({ urls: [proxy.url()], heartbeat: 0 });
  await client.declareQueue(queue);
  const pub = client.publisher();
  await within(pub.publish('', queue, Buffer.from('before')), 5000, 'a publish before the freeze');
  const conn = (client as unknown as { connection: Connection }).connection;
  assert.ok(conn?.isOpen, 'the client has its connection');

  proxy.freeze();
  const pending = [1, 2, 3].map((i) => rejection(pub.publish('', queue, Buffer.from(`stuck ${i}`))));
  await sleep(50);
  const started = Date.now();
  await within(client.close({ timeout: 1000 }), 5000, 'close()');
  const took = Date.now() - started;
  assert.ok(took <= 1000 + SLACK_MS, `close() took ${took} ms`);
  for (const err of await Promise.all(pending)) assert.ok(err instanceof ClosedError, String(err));
  assert.ok(socketOf(conn).destroyed, 'the socket was destroyed');
  assert.equal(conn.isOpen, false);
  await sleep(20);
  assert.ok(timers() <= baseline, `timers left: ${timers()} (before the client: ${baseline})`);
  proxy.thaw();
});

test('connection.close({ timeout: 500 }) on a blackholed connection returns within about 500 ms and destroys the socket', {
  timeout: 20_000,
}, async () => {
  const conn = await connect(proxy.url(), { heartbeat: 0 });
  const ch = await conn.openChannel();
  proxy.freeze();
  const pending = rejection(ch.queueDeclare(resources.queue('close-deadline-low')));
  const started = Date.now();
  await within(conn.close({ timeout: 500 }), 5000, 'close()');
  const took = Date.now() - started;
  assert.ok(took <= 500 + SLACK_MS, `close() took ${took} ms`);
  assert.ok((await pending) instanceof ClosedError);
  assert.ok(socketOf(conn).destroyed, 'the socket was destroyed');
  assert.equal(await conn.closed, undefined, 'a close that timed out is still a clean close');
  proxy.thaw();
});

test('connection.close() still waits for close-ok from a live broker, and accepts a reason string', {
  timeout: 20_000,
}, async () => {
  const conn = await connect(proxy.url());
  await within(conn.close('bye'), 5000, 'close()');
  assert.equal(conn.isOpen, false);
  await assert.rejects(conn.close({ timeout: -1 }), /timeout must be 0 or more/);
});
