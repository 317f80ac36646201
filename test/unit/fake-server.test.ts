/**
 * The fake server harness works: amqplib, a real client, completes the handshake against it, opens
 * a channel and publishes; what amqplib sends arrives decoded; the harness's waits fail clearly
 * instead of hanging.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import { connect } from 'amqplib';
import { PROTOCOL_HEADER } from '../../src/protocol/generated/constants.js';
import { fieldTypeOf } from '../../src/protocol/field-values.js';
import { untyped } from '../support/arbitraries.js';
import type { MethodArgsByName } from '../../src/protocol/generated/methods.js';
import {
  type FakeServer,
  type HandshakeResult,
  type ReceivedContent,
  startFakeServer,
} from '../support/fake-server.js';
import { frame } from '../support/frames.js';
import { firstEvent } from '../support/wait.js';

const servers: FakeServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});
async function serve(...args: Parameters<typeof startFakeServer>): Promise<FakeServer> {
  const s = await startFakeServer(...args);
  servers.push(s);
  return s;
}

test('amqplib connects, opens a channel and publishes through the fake server', async () => {
  let hs: HandshakeResult | undefined;
  let channelOpened: number | undefined;
  let published: ReceivedContent<'basic.publish'> | undefined;
  let closeArgs: MethodArgsByName['connection.close'] | undefined;
  const server = await serve(async (s) => {
    hs = await s.handshake({ frameMax: 4096, heartbeat: 0 });
    channelOpened = await s.acceptChannel();
    published = await s.recvContent('basic.publish');
    const chClose = await s.recvMethod('channel.close');
    s.send(chClose.channel, 'channel.close-ok', {});
    closeArgs = await s.expectClose();
    s.end();
  });
  const conn = await connect(server.url);
  assert.equal(conn.connection.serverProperties.product, 'RabbitMQ');
  const ch = await conn.createChannel();
  const body = Buffer.alloc(10000, 'abc');
  ch.publish('ex', 'rk', body, { contentType: 'text/plain', headers: { 'x-n': 1 }, persistent: true, messageId: 'm1' });
  await ch.close();
  await conn.close();
  await server.done();

  assert.ok(hs);
  assert.equal(hs.startOk.mechanism, 'PLAIN');
  assert.equal(hs.startOk.response, '\u0000guest\u0000guest');
  assert.equal(typeof hs.startOk.clientProperties.product, 'string');
  assert.equal(hs.tuneOk.frameMax, 4096, 'amqplib accepted the smaller frame-max');
  assert.equal(hs.open.virtualHost, '/');
  assert.equal(channelOpened, 1);

  assert.ok(published);
  assert.equal(published.channel, 1);
  assert.equal(published.args.exchange, 'ex');
  assert.equal(published.args.routingKey, 'rk');
  assert.equal(published.args.mandatory, false);
  assert.deepEqual(published.body, body);
  assert.equal(published.bodyFrames, 3, '10000 B at frame-max 4096 takes 3 body frames');
  assert.equal(published.properties.contentType, 'text/plain');
  assert.equal(published.properties.deliveryMode, 2);
  assert.equal(published.properties.messageId, 'm1');
  assert.deepEqual(untyped(published.properties.headers), { 'x-n': 1 });
  assert.equal(fieldTypeOf(published.properties.headers!, 'x-n'), 'b', 'amqplib sends a small integer as a byte');
  assert.equal(closeArgs?.replyCode, 200);

  const c = server.connections[0]!;
  assert.deepEqual(c.header, PROTOCOL_HEADER);
  const names = c.received.flatMap((f) =>
    f.method ? [f.method.name] : f.type === 2 ? ['header'] : f.type === 3 ? ['body'] : [],
  );
  assert.deepEqual(names, [
    'connection.start-ok',
    'connection.tune-ok',
    'connection.open',
    'channel.open',
    'basic.publish',
    'header',
    'body',
    'body',
    'body',
    'channel.close',
    'connection.close',
  ]);
});

test('the fake server delivers content to amqplib (sendContent) and closes the connection', async () => {
  const server = await serve(async (s) => {
    await s.handshake({ heartbeat: 0 });
    const ch = await s.acceptChannel();
    const consume = await s.recvMethod('basic.consume');
    s.send(ch, 'basic.consume-ok', { consumerTag: 'ctag-1' });
    assert.equal(consume.args.queue, 'q1');
    s.sendContent(
      ch,
      'basic.deliver',
      { consumerTag: 'ctag-1', deliveryTag: 7, redelivered: true, exchange: 'ex', routingKey: 'rk' },
      { correlationId: 'c1', headers: { a: 'b' } },
      Buffer.from('payload'),
    );
    const ack = await s.recvMethod('basic.ack');
    assert.equal(ack.args.deliveryTag, 7);
    s.send(0, 'connection.close', { replyCode: 320, replyText: 'CONNECTION_FORCED - test', classId: 0, methodId: 0 });
    await s.recvMethod('connection.close-ok');
    s.end();
  });
  const conn = await connect(server.url);
  const closed = firstEvent(conn, ['close'], 5000);
  conn.on('error', () => {});
  const ch = await conn.createChannel();
  const got = new Promise<{ body: string; tag: number; redelivered: boolean; corr: unknown }>((resolve) => {
    void ch.consume('q1', (msg) => {
      if (msg === null) return;
      ch.ack(msg);
      resolve({
        body: msg.content.toString(),
        tag: msg.fields.deliveryTag,
        redelivered: msg.fields.redelivered,
        corr: msg.properties.correlationId,
      });
    });
  });
  assert.deepEqual(await got, { body: 'payload', tag: 7, redelivered: true, corr: 'c1' });
  const { arg } = await closed;
  assert.match(String(arg), /CONNECTION_FORCED/);
  await server.done();
});

test('recv() times out with a clear error when the client sends nothing', async () => {
  let error: unknown;
  const server = await serve(async (s) => {
    await s.expectHeader();
    const started = Date.now();
    try {
      await s.recv({ timeoutMs: 200 });
    } catch (err) {
      error = err;
    }
    assert.ok(Date.now() - started < 2000);
    s.destroy();
  });
  const sock = net.connect(server.port, '127.0.0.1');
  sock.on('error', () => {});
  sock.write(PROTOCOL_HEADER);
  await server.done();
  sock.destroy();
  assert.ok(error instanceof Error);
  assert.match(error.message, /no frame from the client within 200 ms while waiting for any frame; no frame received/);
});

test('a waiting recv() fails at once when the client disconnects', async () => {
  let error: unknown;
  let waited = 0;
  const server = await serve(async (s) => {
    await s.expectHeader();
    const started = Date.now();
    try {
      await s.recvMethod('connection.start-ok', { timeoutMs: 4000 });
    } catch (err) {
      error = err;
    }
    waited = Date.now() - started;
  });
  const sock = net.connect(server.port, '127.0.0.1');
  sock.on('error', () => {});
  sock.write(PROTOCOL_HEADER);
  setTimeout(() => sock.destroy(), 50);
  await server.done();
  assert.ok(error instanceof Error);
  assert.match(error.message, /client closed connection #0 before connection.start-ok; no frame received/);
  assert.ok(waited < 2000, `waited ${waited} ms`);
});

test('a script that gets the wrong method fails, and done() reports it', async () => {
  const server = await serve(async (s) => {
    await s.expectHeader();
    s.send(0, 'connection.start', { serverProperties: {}, mechanisms: 'PLAIN', locales: 'en_US' });
    await s.recvMethod('connection.tune-ok'); // amqplib sends start-ok here
  });
  await assert.rejects(connect(server.url), 'the client must see the connection die');
  await assert.rejects(server.done(), /expected connection.tune-ok, got connection.start-ok on channel 0/);
  assert.equal(server.connections[0]?.scriptError?.message.includes('tune-ok'), true);
});

test('expectHeader rejects a wrong protocol header', async () => {
  const server = await serve(async (s) => {
    await s.expectHeader();
  });
  const sock = net.connect(server.port, '127.0.0.1');
  sock.on('error', () => {});
  sock.write(Buffer.from('AMQP\x00\x00\x09\x00'));
  await assert.rejects(server.done(), /expected the AMQP 0-9-1 protocol header, got <414d515000000900>/);
  sock.destroy();
});

test('sendRaw can feed amqplib a malformed frame', async () => {
  const server = await serve(async (s) => {
    await s.handshake({ heartbeat: 0 });
    await s.acceptChannel();
    s.sendRaw(frame(9, 0, Buffer.alloc(0))); // frame type 9 does not exist
    await s.closed;
  });
  const conn = await connect(server.url);
  const errored = firstEvent(conn, ['error'], 5000);
  await conn.createChannel();
  const ev = await errored;
  assert.match(String(ev.arg), /frame type 9/);
  assert.ok(ev.arg instanceof Error, `amqplib reported ${ev.name} without an error`);
  await server.done();
});

test('silence() makes the server look dead: amqplib with heartbeat 1 gives up', async () => {
  const server = await serve(async (s) => {
    await s.handshake({ heartbeat: 1 });
    s.silence(); // a paused socket never sees the client's FIN, so the script just returns
  });
  const conn = await connect(server.url);
  const started = Date.now();
  const ev = await firstEvent(conn, ['error', 'close'], 8000);
  const elapsed = Date.now() - started;
  assert.match(String(ev.arg), /[Hh]eartbeat/);
  assert.ok(elapsed >= 1000 && elapsed < 6000, `detected after ${elapsed} ms`);
  await server.done();
});

test('nextConnection() hands out accepted connections and times out clearly', async () => {
  const server = await serve();
  const sock = net.connect(server.port, '127.0.0.1');
  sock.on('error', () => {});
  const c = await server.nextConnection();
  assert.equal(c.index, 0);
  sock.write(PROTOCOL_HEADER);
  assert.deepEqual(await c.expectHeader(), PROTOCOL_HEADER);
  await assert.rejects(server.nextConnection({ timeoutMs: 100 }), /no client connected within 100 ms \(1 so far\)/);
  sock.destroy();
  await c.closed;
  assert.equal(c.isClosed, true);
});
