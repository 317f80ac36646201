/**
 * Deadlines of synchronous channel methods against a broker that never answers them: the call
 * rejects with `TimeoutError` (or `AbortError`), its channel is closed on the wire, a late reply is
 * dropped rather than taken for the answer to something else, and the connection and its other
 * channels go on. Also the connection's lifetime signal.
 */
import assert from 'node:assert/strict';
import {
  AbortError,
  type Channel,
  ClosedError,
  type Connection,
  ConnectionClosedByServer,
  TimeoutError,
} from '../../src/index.js';
import { assertInstance, fakeTest, open, rejection, serve } from './helpers.js';
import { within } from '../support/wait.js';

fakeTest(
  'a declare that gets no reply rejects with TimeoutError, its channel is closed, the others go on',
  async () => {
    const closes: { channel: number; replyText: string }[] = [];
    const server = await serve(async (s) => {
      await s.handshake({ heartbeat: 0 });
      const stuck = await s.acceptChannel();
      const other = await s.acceptChannel();
      const declare = await s.recvMethod('queue.declare');
      assert.equal(declare.channel, stuck);
      // No declare-ok: the broker is stuck on this one. Then warren closes the channel.
      const close = await s.recvMethod('channel.close');
      closes.push({ channel: close.channel, replyText: close.args.replyText });
      // The late reply, then the close-ok: neither may disturb the connection.
      s.send(stuck, 'queue.declare-ok', { queue: 'q', messageCount: 0, consumerCount: 0 });
      s.send(stuck, 'channel.close-ok', {});
      const declare2 = await s.recvMethod('queue.declare');
      assert.equal(declare2.channel, other);
      s.send(other, 'queue.declare-ok', { queue: 'q2', messageCount: 0, consumerCount: 0 });
      await s.expectClose();
    });
    const conn = await open(server);
    const ch = await conn.openChannel();
    const other = await conn.openChannel();
    const started = Date.now();
    const declaring = ch.queueDeclare('q', { timeout: 200 });
    const queued = ch.queueBind('q', 'amq.direct', 'k'); // waits behind the declare
    const err = assertInstance(await rejection(declaring), TimeoutError);
    const took = Date.now() - started;
    assert.ok(took >= 190 && took < 2000, `rejected after ${took} ms`);
    assert.match(err.message, /queue\.declare got no reply .* within 200 ms; channel \d+ was closed/);
    assert.ok(await rejection(queued), 'the call queued behind it rejects too');
    assert.equal(ch.isOpen, false);
    assertInstance(ch.closeReason, TimeoutError);
    assertInstance(await rejection(ch.queuePurge('q')), ClosedError);
    // The connection and the other channel are fine.
    assert.equal(conn.isOpen, true);
    assert.deepEqual(await within(other.queueDeclare('q2'), 2000, 'declare on the other channel'), {
      queue: 'q2',
      messageCount: 0,
      consumerCount: 0,
    });
    assert.equal(closes.length, 1);
    assert.equal(closes[0]!.channel, ch.id);
    await conn.close();
    await server.done();
  },
);

fakeTest('the id of a timed-out channel is not reused before its close-ok arrives', async () => {
  const server = await serve(async (s) => {
    await s.handshake({ heartbeat: 0 });
    const first = await s.acceptChannel();
    await s.recvMethod('basic.qos');
    await s.recvMethod('channel.close');
    // While close-ok is outstanding, a new channel must get another id.
    const open = await s.recvMethod('channel.open');
    assert.notEqual(open.channel, first);
    s.send(open.channel, 'channel.open-ok', {});
    s.send(first, 'channel.close-ok', {});
    await s.expectClose();
  });
  const conn = await open(server, { operationTimeout: 150 });
  const ch = await conn.openChannel();
  // No timeout given: the connection's operationTimeout applies.
  assertInstance(await rejection(ch.basicQos(10)), TimeoutError);
  const next = await conn.openChannel();
  assert.notEqual(next.id, ch.id);
  await conn.close();
  await server.done();
});

fakeTest('an aborted consume closes the channel; a call still waiting is just dropped', async () => {
  const server = await serve(async (s) => {
    await s.handshake({ heartbeat: 0 });
    const ch = await s.acceptChannel();
    await s.recvMethod('basic.consume');
    const close = await s.recvMethod('channel.close');
    assert.equal(close.channel, ch);
    // A late consume-ok and a delivery for it, then the close-ok: all dropped quietly.
    s.send(ch, 'basic.consume-ok', { consumerTag: 'ctag' });
    s.sendContent(
      ch,
      'basic.deliver',
      { consumerTag: 'ctag', deliveryTag: 1, redelivered: false, exchange: '', routingKey: 'q' },
      {},
      Buffer.from('late'),
    );
    s.send(ch, 'channel.close-ok', {});
    await s.expectClose();
  });
  const conn = await open(server);
  const ch = await conn.openChannel();
  const controller = new AbortController();
  const waitingController = new AbortController();
  const consuming = ch.basicConsume('q', { signal: controller.signal }, () => assert.fail('no delivery expected'));
  const waiting = ch.queuePurge('q', { signal: waitingController.signal });
  waitingController.abort(new Error('not needed'));
  assertInstance(await rejection(waiting), AbortError);
  assert.equal(ch.isOpen, true, 'dropping a call that was not sent leaves the channel open');
  controller.abort();
  assertInstance(await rejection(consuming), AbortError);
  assert.equal(ch.isOpen, false);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(conn.isOpen, true, 'the late consume-ok and delivery did not break the connection');
  await conn.close();
  await server.done();
});

fakeTest('connection.signal aborts with the reason when the connection dies; await using closes', async () => {
  let connections = 0;
  const server = await serve(async (s) => {
    await s.handshake({ heartbeat: 0 });
    if (++connections === 1) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      s.send(0, 'connection.close', { replyCode: 320, replyText: 'CONNECTION_FORCED', classId: 0, methodId: 0 });
      await s.recvMethod('connection.close-ok');
      return;
    }
    const ch = await s.acceptChannel();
    await s.recvMethod('channel.close');
    s.send(ch, 'channel.close-ok', {});
    await s.expectClose();
  });
  const conn = await open(server);
  const signal = conn.signal;
  assert.equal(signal.aborted, false);
  await within(new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true })), 2000, 'the abort');
  assertInstance(signal.reason, ConnectionClosedByServer);
  let scoped: { conn: Connection; ch: Channel } | undefined;
  {
    await using second = await open(server);
    await using ch = await second.openChannel();
    scoped = { conn: second, ch };
    assert.equal(ch.isOpen, true);
  }
  assert.equal(scoped.ch.isOpen, false, 'the channel was closed at the end of the scope');
  assert.equal(scoped.conn.isOpen, false, 'and then the connection');
  await server.done({ connections: 2 });
});

fakeTest('a close() queued behind a method that times out still goes out, once', async () => {
  let closes = 0;
  const server = await serve(async (s) => {
    await s.handshake({ heartbeat: 0 });
    const ch = await s.acceptChannel();
    await s.recvMethod('exchange.declare');
    await s.recvMethod('channel.close');
    closes++;
    s.send(ch, 'channel.close-ok', {});
    const next = await s.recv({ timeoutMs: 3000 });
    assert.equal(next.method?.name, 'connection.close', 'no second channel.close');
    s.send(0, 'connection.close-ok', {});
  });
  const conn = await open(server);
  const ch = await conn.openChannel();
  const declaring = ch.exchangeDeclare('x', 'direct', { timeout: 200 });
  const closing = ch.close();
  assertInstance(await rejection(declaring), TimeoutError);
  await within(closing, 2000, 'close()');
  assert.equal(ch.isOpen, false);
  await new Promise((resolve) => setTimeout(resolve, 50));
  await conn.close();
  await server.done();
  assert.equal(closes, 1);
});
