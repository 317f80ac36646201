/**
 * What `rpcServer()` writes, read off its frame trace against the real broker. A direct reply-to
 * reply goes out on the request's own channel, just before the request's ack and in the same write:
 * the broker handles a channel's frames in order, so it has routed the reply before it takes the ack,
 * and a cut before the ack arrives redelivers the request. No confirm round trip sits in the call.
 * A reply to a queue of the caller's own is published with a confirm, and the request is acked only
 * after that confirm (the queue may hold it on disk; the ack must not outrun it).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { connect } from '../../src/index.js';
import { AMQP_URL } from '../support/broker.js';
import { fileFixture } from '../support/client.js';
import { waitFor } from '../support/wait.js';

const { clients, resources } = fileFixture();

/** The server connection's frame lines, without the `warren ` prefix. */
function tracer(): { lines: string[]; line: (l: string) => void } {
  const lines: string[] = [];
  return { lines, line: (l: string) => lines.push(l.replace(/^warren /, '')) };
}

function channelOf(line: string): number {
  return Number(/ch=(\d+)/.exec(line)?.[1] ?? -1);
}

describe('rpcServer on the wire', () => {
  test('a direct reply-to reply leaves on the request channel, then its ack, with no confirm', async () => {
    const trace = tracer();
    const server = clients.make({ name: 'rpc-wire-server', debug: trace.line });
    const caller = clients.make({ name: 'rpc-wire-caller' });
    const queue = resources.queue('rpc-wire');
    await server.declareQueue(queue);
    const sub = server.rpcServer(queue, (req) => Buffer.concat([Buffer.from('re:'), req.body]));
    await sub.ready();
    for (let i = 0; i < 3; i++) {
      const reply = await caller.rpc(queue, `q${i}`, { timeout: 5000 });
      assert.equal(reply.body.toString(), `re:q${i}`);
    }
    await waitFor(() => trace.lines.filter((l) => / basic\.ack /.test(l) && l.startsWith('>')).length >= 3, {
      timeout: 5000,
      what: 'three acks',
    });
    const deliveries = trace.lines.filter((l) => l.startsWith('< ') && l.includes(' basic.deliver '));
    assert.equal(deliveries.length, 3);
    const consumerChannel = channelOf(deliveries[0]!);
    const out = trace.lines.filter((l) => l.startsWith('> ') && / basic\.(publish|ack) /.test(l));
    assert.deepEqual(
      out.map((l) => `${/basic\.(\w+)/.exec(l)?.[1]}@${channelOf(l)}`),
      Array.from({ length: 3 }, () => [`publish@${consumerChannel}`, `ack@${consumerChannel}`]).flat(),
      'each reply is published on the request channel, and the ack follows it',
    );
    assert.ok(!trace.lines.some((l) => l.includes('confirm.select')), 'no confirm channel was needed');
    await sub.cancel();
  });

  test('a reply to an ordinary queue is confirmed before the request is acked', async () => {
    const trace = tracer();
    const server = clients.make({ name: 'rpc-wire-server-queue', debug: trace.line });
    const queue = resources.queue('rpc-wire-q');
    const replies = resources.queue('rpc-wire-replies');
    await server.declareQueue(queue);
    await server.declareQueue(replies);
    const sub = server.rpcServer(queue, (req) => req.body);
    await sub.ready();
    const conn = await connect(AMQP_URL);
    try {
      const ch = await conn.openChannel();
      await ch.basicPublish('', queue, Buffer.from('hello'), { replyTo: replies, correlationId: 'c1' });
      await waitFor(() => trace.lines.some((l) => l.startsWith('> ') && / basic\.ack /.test(l)), {
        timeout: 5000,
        what: 'the ack',
      });
      const got = await ch.basicGet(replies, { noAck: true });
      assert.equal(got?.body.toString(), 'hello');
      assert.equal(got?.properties.correlationId, 'c1');
    } finally {
      await conn.close();
    }
    const publishAt = trace.lines.findIndex((l) => l.startsWith('> ') && l.includes(' basic.publish '));
    const publishChannel = channelOf(trace.lines[publishAt]!);
    const confirmAt = trace.lines.findIndex(
      (l, i) => i > publishAt && l.startsWith('< ') && l.includes(' basic.ack ') && channelOf(l) === publishChannel,
    );
    const ackAt = trace.lines.findIndex((l) => l.startsWith('> ') && l.includes(' basic.ack '));
    assert.ok(publishAt >= 0 && confirmAt > publishAt, 'the reply was confirmed');
    assert.ok(ackAt > confirmAt, 'the request was acked after the reply was confirmed');
    assert.ok(trace.lines.some((l) => l.includes(`ch=${publishChannel} confirm.select`)));
    await sub.cancel();
  });
});
