/**
 * Closing from the client: connection.close 200 and close-ok; a server that ends the socket instead
 * of answering; idempotence; what is refused after close, and what must not be sent once
 * connection.close has gone out.
 */
import assert from 'node:assert/strict';
import { ClosedError, ConnectionClosedByServer } from '../../src/index.js';
import type { MethodArgsByName } from '../../src/protocol/generated/methods.js';
import { assertInstance, countEvents, fakeTest, observe, open, rejection, serve, serveBroker } from './helpers.js';
import { sleep, within } from '../support/wait.js';
import { describeFrame } from '../support/frames.js';
import { framesAfter, playBroker } from '../support/fake-server.js';

fakeTest(
  'close() sends connection.close 200 and resolves once close-ok arrives; pending calls reject ClosedError',
  async () => {
    let closeArgs: MethodArgsByName['connection.close'] | undefined;
    let framesAfterClose = -1;
    let closeOkAt = 0;
    const server = await serve(async (s) => {
      await s.handshake({ heartbeat: 0 });
      await s.acceptChannel();
      await s.recvMethod('queue.declare'); // left unanswered
      closeArgs = (await s.recvMethod('connection.close')).args;
      await sleep(150);
      closeOkAt = Date.now();
      s.send(0, 'connection.close-ok', {});
      await within(s.closed, 3000, 'warren closing the socket');
      framesAfterClose = framesAfter(s, 'connection.close').length;
    });
    const conn = await open(server);
    const closes = countEvents(conn, 'close');
    const ch = await conn.openChannel();
    const declare = observe(ch.queueDeclare('q'));
    await sleep(20);
    await within(conn.close('shutting down'), 3000, 'close()');
    const resolvedAt = Date.now();
    assert.ok(closeOkAt > 0 && resolvedAt >= closeOkAt, 'close() waited for close-ok');
    assert.equal(await conn.closed, undefined, 'a clean close has no error');
    assert.equal(conn.closeReason, undefined);
    assert.equal(conn.isOpen, false);
    const o = await within(declare.settled, 1000, 'the pending queueDeclare');
    assert.ok(!o.ok, 'the pending call rejects');
    assertInstance(o.error, ClosedError);
    await server.done();
    assert.deepEqual(closeArgs, { replyCode: 200, replyText: 'shutting down', classId: 0, methodId: 0 });
    assert.equal(framesAfterClose, 0, 'nothing is sent after connection.close');
    await sleep(20);
    assert.equal(closes.count, 1);
    assert.deepEqual(closes.args[0], [undefined]);
    assert.equal(ch.isOpen, false);
  },
);

fakeTest('close() resolves promptly when the server ends the socket instead of answering', async () => {
  const server = await serve(async (s) => {
    await s.handshake({ heartbeat: 0 });
    const close = await s.recvMethod('connection.close');
    assert.equal(close.args.replyCode, 200);
    s.end(); // no close-ok
  });
  const conn = await open(server);
  const closes = countEvents(conn, 'close');
  const started = Date.now();
  await within(conn.close(), 3000, 'close()');
  const elapsed = Date.now() - started;
  assert.ok(elapsed < 1000, `resolved after ${elapsed} ms, not after the close timeout`);
  assert.equal(conn.closeReason, undefined, 'the end of the socket is the end of our close, not an error');
  assert.equal(conn.isOpen, false);
  await server.done();
  await sleep(20);
  assert.equal(closes.count, 1);
});

fakeTest('close() is idempotent: concurrent and repeated calls send one connection.close', async () => {
  const server = await serve(async (s) => {
    await s.handshake({ heartbeat: 0 });
    await playBroker(s);
    await within(s.closed, 3000, 'warren closing the socket');
  });
  const conn = await open(server);
  const closes = countEvents(conn, 'close');
  const a = conn.close();
  const b = conn.close();
  await within(Promise.all([a, b]), 3000, 'two concurrent close() calls');
  await within(conn.close(), 1000, 'close() after close');
  await server.done();
  const sent = server.connections[0]!.received.filter((f) => f.method?.name === 'connection.close');
  assert.equal(sent.length, 1, 'one connection.close');
  await sleep(20);
  assert.equal(closes.count, 1);
});

fakeTest('close() after the server closed the connection resolves at once', async () => {
  const server = await serve(async (s) => {
    await s.handshake({ heartbeat: 0 });
    await s.acceptChannel(); // well after open-ok (see handshake.test.ts for a close that comes with it)
    s.send(0, 'connection.close', { replyCode: 320, replyText: 'CONNECTION_FORCED', classId: 0, methodId: 0 });
    await s.recvMethod('connection.close-ok');
    await within(s.closed, 3000, 'warren closing the socket');
  });
  const conn = await open(server);
  await conn.openChannel();
  assertInstance(await within(conn.closed, 3000, 'conn.closed'), ConnectionClosedByServer);
  await within(conn.close(), 200, 'close() on a dead connection');
  assertInstance(conn.closeReason, ConnectionClosedByServer, 'close() does not erase why it died');
  await server.done();
});

fakeTest(
  'after close: openChannel, channel methods and publishes reject ClosedError; channel.close() resolves',
  async () => {
    const server = await serveBroker({});
    const conn = await open(server);
    const ch = await conn.openChannel();
    await conn.close();
    assertInstance(await rejection(conn.openChannel()), ClosedError, 'openChannel()');
    assertInstance(await rejection(ch.queueDeclare('q')), ClosedError, 'queueDeclare()');
    assertInstance(await rejection(ch.basicPublish('ex', 'rk', Buffer.from('x'))), ClosedError, 'basicPublish()');
    assertInstance(await rejection(ch.confirmSelect()), ClosedError, 'confirmSelect()');
    assertInstance(await rejection(conn.updateSecret('new-token')), ClosedError, 'updateSecret()');
    await within(ch.close(), 1000, 'channel close() after the connection closed');
    await server.done();
  },
);

fakeTest(
  'once close() has sent connection.close, nothing else is sent, and calls and publishes made meanwhile reject ClosedError',
  async () => {
    let after: string[] = [];
    const server = await serve(async (s) => {
      await s.handshake({ heartbeat: 0 });
      await s.acceptChannel();
      await s.recvMethod('connection.close');
      await sleep(150); // a broker busy closing: the client keeps going meanwhile
      after = framesAfter(s, 'connection.close').map(describeFrame);
      s.send(0, 'connection.close-ok', {});
      await within(s.closed, 3000, 'warren closing the socket');
    });
    const conn = await open(server);
    const ch = await conn.openChannel();
    const closing = conn.close();
    const declare = observe(ch.queueDeclare('late'));
    const publish = observe(ch.basicPublish('ex', 'rk', Buffer.from('would be dropped by the broker')));
    await within(closing, 3000, 'close()');
    const d = await within(declare.settled, 1000, 'the late queueDeclare');
    const p = await within(publish.settled, 1000, 'the late publish');
    await server.done();
    assert.deepEqual(after, [], 'nothing is sent after connection.close');
    assert.ok(!d.ok && d.error instanceof ClosedError, 'the late queueDeclare rejects ClosedError');
    assert.ok(!p.ok && p.error instanceof ClosedError, 'the late publish rejects ClosedError rather than being lost');
  },
);
