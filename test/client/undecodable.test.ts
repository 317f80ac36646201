/**
 * A message whose properties cannot be decoded (here: a header table whose type tag a proxy changes to
 * one no AMQP table uses, on its way from the broker to the client) affects that message alone. The
 * robust client's subscription rejects it without requeue — dead-lettered, since the queue has a
 * dead-letter exchange — reports it on `handlerError` without calling the handler, and goes on with the
 * next message on the same connection: no disconnect, no redelivery loop. The low-level channel hands
 * it to the consumer and to `basicGet` with `decodeError` set.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { connect, FrameError, type Message, MessageReturned } from '../../src/index.js';
import { Resources, withChannel } from '../support/broker.js';
import { Clients } from '../support/client.js';
import { startRecordingProxy } from '../support/recording-proxy.js';
import { waitFor } from '../support/wait.js';

const resources = new Resources();
const clients = new Clients();
after(async () => {
  await clients.closeAll();
  await resources.cleanup();
});

async function readyCount(queue: string): Promise<number> {
  return withChannel(async (ch) => (await ch.queueDeclare(queue, { passive: true })).messageCount);
}

/** The header key whose 'S' tag the proxy turns into 'Q' (0x51), a tag no field table has. */
const MARKER = Buffer.from('\x0dpoison-marker');

function poisonHeaders(chunk: Buffer): Buffer {
  const at = chunk.indexOf(MARKER);
  if (at < 0 || chunk[at + MARKER.length] !== 0x53) return chunk;
  const out = Buffer.from(chunk);
  out[at + MARKER.length] = 0x51;
  return out;
}

test('the robust client dead-letters an undecodable message, reports it and consumes on without a disconnect', async () => {
  const proxy = await startRecordingProxy({ host: '127.0.0.1', port: 5672 }, { rewriteDown: poisonHeaders });
  try {
    const queue = resources.queue('undecodable');
    const dlq = resources.queue('undecodable-dlq');
    const client = clients.make({ urls: [proxy.url()], name: 'undecodable' });
    let disconnects = 0;
    client.on('disconnect', () => disconnects++);
    await client.declareQueue(dlq);
    await client.declareQueue(queue, {
      arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq },
    });
    const pub = client.publisher({ confirm: true });
    await pub.publish('', queue, Buffer.from('before'), { messageId: 'before' });
    await pub.publish('', queue, Buffer.from('poison'), { messageId: 'poison', headers: { 'poison-marker': 'x' } });
    await pub.publish('', queue, Buffer.from('after'), { messageId: 'after' });

    const handled: string[] = [];
    const reported: [unknown, Message][] = [];
    const sub = client.consume(queue, (msg) => {
      handled.push(msg.body.toString());
    });
    sub.on('handlerError', (err, msg) => reported.push([err, msg]));
    await waitFor(() => handled.length === 2 && reported.length === 1, { what: 'two handled, one reported' });
    assert.deepEqual(handled, ['before', 'after'], 'the handler never saw the undecodable message');
    const [err, msg] = reported[0]!;
    assert.ok(err instanceof FrameError, String(err));
    assert.match(err.message, /unknown field type tag 0x51/);
    assert.equal(msg.decodeError, err);
    assert.equal(msg.body.toString(), 'poison', 'the body arrived whole');
    assert.deepEqual(msg.properties, {});
    await waitFor(async () => (await readyCount(dlq)) === 1, { what: 'the message dead-lettered' });
    assert.equal(await readyCount(queue), 0, 'not requeued');
    assert.equal(disconnects, 0, 'the connection was never lost');
    await sub.cancel();
  } finally {
    await clients.closeAll();
    await proxy.close();
  }
});

test('low level: the consumer and basicGet receive the message with decodeError; the channel goes on', async () => {
  const proxy = await startRecordingProxy({ host: '127.0.0.1', port: 5672 }, { rewriteDown: poisonHeaders });
  const conn = await connect(proxy.url(), { name: 'undecodable-low' });
  try {
    const ch = await conn.openChannel();
    await ch.confirmSelect();
    const queue = resources.queue('undecodable-low');
    await ch.queueDeclare(queue);
    const poison = { messageId: 'p', headers: { 'poison-marker': 'x' } };
    await ch.basicPublish('', queue, Buffer.from('got'), poison);
    const got = await ch.basicGet(queue);
    assert.ok(got?.decodeError instanceof FrameError);
    assert.equal(got.body.toString(), 'got');
    got.ack();

    await ch.basicPublish('', queue, Buffer.from('consumed'), poison);
    await ch.basicPublish('', queue, Buffer.from('fine'), { messageId: 'fine' });
    const seen: Message[] = [];
    await ch.basicConsume(queue, {}, (m) => {
      seen.push(m);
      m.ack();
    });
    await waitFor(() => seen.length === 2, { what: 'two deliveries' });
    assert.ok(seen[0]?.decodeError instanceof FrameError);
    assert.equal(seen[1]?.decodeError, undefined);
    assert.equal(seen[1]?.properties.messageId, 'fine');
    assert.ok(conn.isOpen && ch.isOpen);
  } finally {
    await conn.close();
    await proxy.close();
  }
});

test('a basic.return of an undecodable message rejects its publish with decodeError; the connection goes on', async () => {
  const proxy = await startRecordingProxy({ host: '127.0.0.1', port: 5672 }, { rewriteDown: poisonHeaders });
  const conn = await connect(proxy.url(), { name: 'undecodable-return' });
  try {
    const ch = await conn.openChannel();
    await ch.confirmSelect();
    const returned: unknown[] = [];
    ch.on('return', (r) => returned.push(r.decodeError));
    const err = await ch
      .basicPublish(
        '',
        resources.queue('nowhere'),
        Buffer.from('r'),
        { headers: { 'poison-marker': 'x' } },
        { mandatory: true },
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    assert.ok(err instanceof MessageReturned, String(err));
    assert.ok(err.returned.decodeError instanceof FrameError);
    assert.equal(err.returned.body.toString(), 'r');
    assert.equal(returned.length, 1);
    assert.ok(conn.isOpen && ch.isOpen);
    const { queue } = await ch.queueDeclare('', { exclusive: true });
    await ch.basicPublish('', queue, Buffer.from('still fine'));
  } finally {
    await conn.close();
    await proxy.close();
  }
});
