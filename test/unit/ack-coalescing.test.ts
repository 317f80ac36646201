import { decodeContentHeader } from '../../src/protocol/content-header.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Channel } from '../../src/channel/channel.js';
import type { Message } from '../../src/channel/message.js';
import { FrameDecoder } from '../../src/protocol/frame-decoder.js';
import { decodeMethod, METHOD_IDS } from '../../src/protocol/generated/methods.js';
import { Reader } from '../../src/protocol/reader.js';
import { EncoderHost } from '../support/channel-host.js';

/** A channel wired to an encoder instead of a socket, with deliveries fed in directly. */
async function harness() {
  const host = new EncoderHost();
  const channel = new Channel(host, 1);
  const delivered: Message[] = [];
  // Open the channel and start one consumer by answering its calls directly.
  const opening = channel.open();
  channel.inbound.method({
    id: METHOD_IDS['channel.open-ok'],
    name: 'channel.open-ok',
    args: { channelId: '' },
  } as never);
  await opening;
  const consuming = channel.basicConsume('q', {}, (m) => {
    delivered.push(m);
  });
  channel.inbound.method({
    id: METHOD_IDS['basic.consume-ok'],
    name: 'basic.consume-ok',
    args: { consumerTag: 'c' },
  } as never);
  const deliver = (tag: number) => {
    channel.inbound.method({
      id: METHOD_IDS['basic.deliver'],
      name: 'basic.deliver',
      args: { consumerTag: 'c', deliveryTag: tag, redelivered: false, exchange: '', routingKey: 'q' },
    } as never);
    const header = Buffer.alloc(14);
    header.writeUInt16BE(60, 0);
    header.writeUInt32BE(0, 8);
    channel.inbound.header(decodeContentHeader(new Reader(header, 0, 14)));
  };
  /** Flushes (pre-flush hooks first, as the transport does) and returns the acks written since last time. */
  const flush = () => {
    const out: { name: string; args: Record<string, unknown> }[] = [];
    const d = new FrameDecoder(131072, (type, _ch, buf, start, end) => {
      if (type !== 1) return;
      const m = decodeMethod(new Reader(buf, start, end));
      if (m) out.push({ name: m.name, args: m.args as Record<string, unknown> });
    });
    for (const c of host.flush()) d.push(c);
    return out.filter((m) => m.name.startsWith('basic.ack') || m.name === 'basic.nack' || m.name === 'basic.reject');
  };
  return { channel, delivered, deliver, flush, consuming };
}

test('in-order acks within a tick become one basic.ack with multiple=true', async () => {
  const h = await harness();
  await h.consuming;
  for (let t = 1; t <= 5; t++) h.deliver(t);
  h.flush();
  for (const m of h.delivered) m.ack();
  assert.deepEqual(h.flush(), [{ name: 'basic.ack', args: { deliveryTag: 5, multiple: true } }]);
});

test('a single ack is sent without multiple', async () => {
  const h = await harness();
  await h.consuming;
  h.deliver(1);
  h.flush();
  h.delivered[0]!.ack();
  assert.deepEqual(h.flush(), [{ name: 'basic.ack', args: { deliveryTag: 1, multiple: false } }]);
});

test('an out-of-order ack goes alone and never lets a run cover an unsettled tag', async () => {
  const h = await harness();
  await h.consuming;
  for (let t = 1; t <= 4; t++) h.deliver(t);
  h.flush();
  const [m1, m2, m3, m4] = h.delivered;
  m1!.ack();
  m3!.ack(); // tag 2 is still unsettled: 3 must go alone
  assert.deepEqual(h.flush(), [
    { name: 'basic.ack', args: { deliveryTag: 1, multiple: false } },
    { name: 'basic.ack', args: { deliveryTag: 3, multiple: false } },
  ]);
  m2!.ack(); // closes the gap: 1..3 settled, run is just tag 2
  m4!.ack(); // extends the run to 4
  assert.deepEqual(h.flush(), [{ name: 'basic.ack', args: { deliveryTag: 4, multiple: true } }]);
});

test('a nack writes the pending ack run first, keeping wire order', async () => {
  const h = await harness();
  await h.consuming;
  for (let t = 1; t <= 3; t++) h.deliver(t);
  h.flush();
  const [m1, m2, m3] = h.delivered;
  m1!.ack();
  m2!.ack();
  m3!.nack({ requeue: false });
  assert.deepEqual(h.flush(), [
    { name: 'basic.ack', args: { deliveryTag: 2, multiple: true } },
    { name: 'basic.nack', args: { deliveryTag: 3, multiple: false, requeue: false } },
  ]);
});

test('acks are single-use and dropped after the channel is gone', async () => {
  const h = await harness();
  await h.consuming;
  h.deliver(1);
  h.deliver(2);
  h.flush();
  assert.equal(h.delivered[0]!.ack(), true);
  assert.equal(h.delivered[0]!.ack(), false);
  h.channel.onConnectionLost(new Error('gone') as never);
  assert.equal(h.delivered[1]!.ack(), false);
  assert.deepEqual(h.flush(), []);
});
