/**
 * What a broker does rarely or only under conditions hard to arrange: confirms out of order and
 * mixed with nacks, returns, server-side consumer cancel, channel.flow, channel.close 406,
 * connection.blocked, a forced connection.close, deliveries in many body frames, empty bodies and
 * odd TCP chunking, and acknowledgements after the connection died.
 */
import assert from 'node:assert/strict';
import {
  type BasicProperties,
  type Channel,
  ChannelClosedByServer,
  ClosedError,
  ConnectionClosedByServer,
  type Message,
  MessageReturned,
  PublishNacked,
} from '../../src/index.js';
import type { MethodArgsByName, MethodInputByName } from '../../src/protocol/generated/methods.js';
import type { FakeConnection } from '../support/fake-server.js';
import { assertInstance, countEvents, fakeTest, type Observed, observe, open, serve, serveBroker } from './helpers.js';
import { sleep, within } from '../support/wait.js';
import { contentBytes, methodFrame } from '../support/frames.js';
import { framesAfter, type Input, playBroker } from '../support/fake-server.js';

/** Publishes `n` messages and records the order in which their promises settle. */
function publishMany(
  ch: Channel,
  n: number,
  order: string[],
  firstTag = 1,
  options: { mandatory?: boolean } = {},
): Observed<void>[] {
  const out: Observed<void>[] = [];
  for (let i = 0; i < n; i++) {
    const tag = firstTag + i;
    const p = ch.basicPublish('ex', 'rk', Buffer.from(`m${tag}`), {}, options);
    p.then(
      () => order.push(`${tag}:ack`),
      (e: unknown) => order.push(`${tag}:${e instanceof Error ? e.name : String(e)}`),
    );
    out.push(observe(p));
  }
  return out;
}

function isMethod<N extends keyof MethodArgsByName>(
  input: Input,
  name: N,
): input is { kind: 'method'; m: { channel: number; name: N; args: MethodArgsByName[N] } } {
  return input.kind === 'method' && input.m.name === name;
}

// ------------------------------------------------------------------------------------- confirms

fakeTest('confirms: ack 3 multiple, nack 5, ack 4 → 1–3 resolve, 4 resolves, 5 rejects PublishNacked', async () => {
  let published = 0;
  const server = await serveBroker({
    onInput: (input, s) => {
      if (input.kind === 'publish' && ++published === 5) {
        s.send(1, 'basic.ack', { deliveryTag: 3, multiple: true });
        s.send(1, 'basic.nack', { deliveryTag: 5, multiple: false, requeue: false });
        s.send(1, 'basic.ack', { deliveryTag: 4, multiple: false });
      }
      return false;
    },
  });
  const conn = await open(server);
  const ch = await conn.openChannel();
  await ch.confirmSelect();
  assert.equal(ch.confirmMode, true);
  const order: string[] = [];
  const pubs = publishMany(ch, 5, order);
  assert.equal(ch.unconfirmedCount, 5);
  const outcomes = await within(Promise.all(pubs.map((p) => p.settled)), 3000, 'the confirms');
  for (const i of [0, 1, 2, 3]) assert.equal(outcomes[i]?.ok, true, `publish ${i + 1} resolves`);
  const fifth = outcomes[4];
  assert.ok(fifth && !fifth.ok);
  assertInstance(fifth.error, PublishNacked, 'publish 5');
  assert.deepEqual(order, ['1:ack', '2:ack', '3:ack', '5:PublishNacked', '4:ack'], 'settled in the order confirmed');
  assert.equal(ch.unconfirmedCount, 0);
  await conn.close();
  await server.done();
});

fakeTest('confirms: out-of-order single acks, a stale duplicate, then a multiple nack', async () => {
  let published = 0;
  const server = await serveBroker({
    onInput: (input, s) => {
      if (input.kind !== 'publish') return false;
      published++;
      if (published === 4) {
        for (const tag of [3, 1, 4, 2]) s.send(1, 'basic.ack', { deliveryTag: tag, multiple: false });
        s.send(1, 'basic.ack', { deliveryTag: 1, multiple: false }); // stale: already confirmed
      } else if (published === 7) {
        s.send(1, 'basic.nack', { deliveryTag: 6, multiple: true, requeue: false });
        s.send(1, 'basic.ack', { deliveryTag: 7, multiple: false });
      }
      return false;
    },
  });
  const conn = await open(server);
  const ch = await conn.openChannel();
  await ch.confirmSelect();
  const order: string[] = [];
  const first = publishMany(ch, 4, order);
  const firstOutcomes = await within(Promise.all(first.map((p) => p.settled)), 3000, 'the first confirms');
  assert.ok(
    firstOutcomes.every((o) => o.ok),
    'all four resolve',
  );
  assert.deepEqual(order, ['3:ack', '1:ack', '4:ack', '2:ack']);
  const second = publishMany(ch, 3, order, 5);
  const secondOutcomes = await within(Promise.all(second.map((p) => p.settled)), 3000, 'the later confirms');
  assert.deepEqual(
    secondOutcomes.map((o) => (o.ok ? 'ok' : (o.error as Error).name)),
    ['PublishNacked', 'PublishNacked', 'ok'],
    'tags keep counting after out-of-order acks; a multiple nack covers everything up to its tag',
  );
  assert.equal(ch.unconfirmedCount, 0);
  assert.ok(conn.isOpen);
  await conn.close();
  await server.done();
});

fakeTest(
  'a returned mandatory publish followed by its ack rejects with MessageReturned carrying body and properties',
  async () => {
    const props: BasicProperties = {
      contentType: 'application/json',
      messageId: 'm-1',
      correlationId: 'c-1',
      headers: { 'x-attempt': 2, source: 'test' },
      deliveryMode: 2,
    };
    let published = 0;
    const server = await serveBroker({
      onInput: (input, s) => {
        if (input.kind !== 'publish') return false;
        published++;
        if (published === 1) {
          // RabbitMQ: basic.return first, then the ack for the same message.
          const c = input.c;
          s.sendContent(
            1,
            'basic.return',
            { replyCode: 312, replyText: 'NO_ROUTE', exchange: c.args.exchange, routingKey: c.args.routingKey },
            c.properties,
            c.body,
          );
          s.send(1, 'basic.ack', { deliveryTag: 1, multiple: false });
        } else if (published === 2) {
          s.send(1, 'basic.ack', { deliveryTag: 2, multiple: false });
        }
        return false;
      },
    });
    const conn = await open(server);
    const ch = await conn.openChannel();
    const returns = countEvents(ch, 'return');
    await ch.confirmSelect();
    const body = Buffer.from('{"unroutable":true}');
    const first = observe(ch.basicPublish('ex', 'nowhere', body, props, { mandatory: true }));
    const second = observe(ch.basicPublish('ex', 'nowhere', Buffer.from('routed'), {}, { mandatory: true }));
    const o1 = await within(first.settled, 3000, 'the returned publish');
    assert.ok(!o1.ok, 'the returned publish rejects');
    const returned = assertInstance(o1.error, MessageReturned);
    assert.equal(returned.replyCode, 312);
    assert.equal(returned.replyText, 'NO_ROUTE');
    assert.equal(returned.returned.exchange, 'ex');
    assert.equal(returned.returned.routingKey, 'nowhere');
    assert.deepEqual(returned.returned.body, body);
    assert.equal(returned.returned.properties.contentType, 'application/json');
    assert.equal(returned.returned.properties.messageId, 'm-1');
    assert.equal(returned.returned.properties.correlationId, 'c-1');
    assert.equal(returned.returned.properties.deliveryMode, 2);
    assert.deepEqual(returned.returned.properties.headers, { 'x-attempt': 2, source: 'test' });
    const o2 = await within(second.settled, 3000, 'the routed publish');
    assert.ok(o2.ok, 'the later publish with the same exchange and key is not blamed for the return');
    assert.equal(returns.count, 1, 'the return event fired once');
    await conn.close();
    await server.done();
  },
);

// ------------------------------------------------------------------------------------ consumers

fakeTest(
  'a second consume-ok for a consumer that is already registered is let pass; one for no consumer is a 505',
  async () => {
    const server = await serveBroker({
      onInput: (input, s) => {
        if (isMethod(input, 'basic.consume')) {
          const tag = input.m.args.consumerTag;
          s.send(1, 'basic.consume-ok', { consumerTag: tag });
          s.send(1, 'basic.consume-ok', { consumerTag: tag });
          s.sendContent(
            1,
            'basic.deliver',
            { consumerTag: tag, deliveryTag: 1, redelivered: false, exchange: '', routingKey: 'q' },
            {},
            Buffer.from('after'),
          );
          return true;
        }
        if (isMethod(input, 'queue.declare') && input.m.args.queue === 'stray') {
          s.send(1, 'basic.consume-ok', { consumerTag: 'nobody' });
          return true;
        }
        return false;
      },
    });
    const conn = await open(server);
    const ch = await conn.openChannel();
    const bodies: string[] = [];
    await ch.basicConsume('q', { consumerTag: 'ctag-twice', noAck: true }, (msg) => {
      bodies.push(msg.body.toString());
    });
    assert.equal((await ch.queueDeclare('fine')).queue, 'fine');
    assert.deepEqual(bodies, ['after'], 'the consumer goes on receiving');
    assert.equal(ch.isOpen, true);
    const closed = new Promise((resolve) => conn.once('close', resolve));
    void ch.queueDeclare('stray').catch(() => {});
    const error = await within(closed, 3000, 'the connection close');
    assert.match(String(error), /unexpected basic\.consume-ok on channel 1/);
    await server.done();
  },
);

for (const nowait of [false, true]) {
  fakeTest(
    `a server-sent basic.cancel (nowait ${nowait}) ends the consumer with serverCancelled; cancel-ok ${nowait ? 'is not' : 'is'} sent`,
    async () => {
      let answer: Input | undefined;
      const server = await serveBroker({
        onInput: async (input, s) => {
          if (!isMethod(input, 'queue.declare') || input.m.args.queue !== 'consuming') return false;
          // The client has its consumer: cancel it, as RabbitMQ does when the queue is deleted.
          s.send(1, 'queue.declare-ok', { queue: 'consuming', messageCount: 0, consumerCount: 1 });
          s.send(1, 'basic.cancel', { consumerTag: 'ctag-x', nowait });
          answer = await s.recvInput(); // cancel-ok, or (nowait) the queue.declare the test sends next
          if (isMethod(answer, 'queue.declare')) {
            s.send(1, 'queue.declare-ok', { queue: answer.m.args.queue, messageCount: 0, consumerCount: 0 });
          }
          return true;
        },
      });
      const conn = await open(server);
      const ch = await conn.openChannel();
      const consumer = await ch.basicConsume('q', { consumerTag: 'ctag-x' }, () => {});
      const cancelEvents = countEvents(consumer, 'cancel');
      await ch.queueDeclare('consuming');
      const cancelled = await within(consumer.cancelled, 3000, 'the consumer cancel');
      assert.deepEqual(cancelled, { serverCancelled: true, error: undefined });
      assert.equal(consumer.isActive, false);
      await consumer.cancel(); // idempotent: nothing to do
      assert.equal(ch.isOpen, true, 'the channel lives on');
      assert.equal((await ch.queueDeclare('after')).queue, 'after');
      await conn.close();
      await server.done();
      assert.equal(cancelEvents.count, 1, 'one cancel event');
      assert.deepEqual(cancelEvents.args[0], [{ serverCancelled: true, error: undefined }]);
      assert.ok(answer?.kind === 'method');
      if (nowait) assert.equal(answer.m.name, 'queue.declare', 'no cancel-ok for a nowait cancel');
      else {
        assert.equal(answer.m.name, 'basic.cancel-ok');
        assert.equal((answer.m.args as MethodArgsByName['basic.cancel-ok']).consumerTag, 'ctag-x');
      }
    },
  );
}

fakeTest(
  'a basic.cancel that arrives together with consume-ok: basicConsume resolves with a consumer already cancelled',
  async () => {
    const server = await serveBroker({
      onInput: (input, s) => {
        if (!isMethod(input, 'basic.consume')) return false;
        s.sendRaw(
          Buffer.concat([
            methodFrame(1, 'basic.consume-ok', { consumerTag: 'ctag-y' }),
            methodFrame(1, 'basic.cancel', { consumerTag: 'ctag-y', nowait: true }),
          ]),
        );
        return true;
      },
    });
    const conn = await open(server);
    const ch = await conn.openChannel();
    const consumed = await within(observe(ch.basicConsume('q', {}, () => {})).settled, 3000, 'basicConsume');
    assert.ok(consumed.ok, `basicConsume resolves, got ${consumed.ok ? '' : String(consumed.error)}`);
    assert.equal(consumed.value.consumerTag, 'ctag-y');
    assert.equal(consumed.value.isActive, false);
    assert.deepEqual(await within(consumed.value.cancelled, 1000, 'cancelled'), {
      serverCancelled: true,
      error: undefined,
    });
    assert.equal(ch.isOpen, true);
    await conn.close();
    await server.done();
  },
);

fakeTest('server channel.flow(false) then (true): warren answers flow-ok and emits flow', async () => {
  const flowOks: boolean[] = [];
  const server = await serveBroker({
    onInput: (input, s) => {
      if (isMethod(input, 'queue.declare')) {
        s.send(1, 'queue.declare-ok', { queue: input.m.args.queue, messageCount: 0, consumerCount: 0 });
        s.send(1, 'channel.flow', { active: input.m.args.queue !== 'stop' });
        return true;
      }
      if (isMethod(input, 'channel.flow-ok')) flowOks.push(input.m.args.active);
      return false;
    },
  });
  const conn = await open(server);
  const ch = await conn.openChannel();
  const flows: boolean[] = [];
  const nextFlow = () => new Promise<boolean>((resolve) => ch.once('flow', resolve));
  ch.on('flow', (active) => flows.push(active));
  let flow = nextFlow();
  await ch.queueDeclare('stop');
  assert.equal(await within(flow, 3000, 'flow(false)'), false);
  assert.equal(ch.isFlowActive, false);
  flow = nextFlow();
  await ch.queueDeclare('go');
  assert.equal(await within(flow, 3000, 'flow(true)'), true);
  assert.equal(ch.isFlowActive, true);
  await conn.close();
  await server.done();
  assert.deepEqual(flows, [false, true]);
  assert.deepEqual(flowOks, [false, true], 'flow-ok echoes each active flag');
});

// -------------------------------------------------------------------------------------- closes

fakeTest(
  'server channel.close 406: that channel’s pending calls reject ChannelClosedByServer naming the method; other channels go on; close-ok is sent',
  async () => {
    let closeOkChannel = -1;
    const server = await serve(async (s) => {
      await s.handshake({ heartbeat: 0 });
      let pendingOn2: MethodArgsByName['queue.declare'] | undefined;
      let closed1 = false;
      const answer2 = (args: MethodArgsByName['queue.declare']) =>
        s.send(2, 'queue.declare-ok', { queue: args.queue, messageCount: 0, consumerCount: 0 });
      await playBroker(s, {
        onInput: (input) => {
          if (isMethod(input, 'queue.declare') && input.m.channel === 1 && !closed1) {
            s.send(1, 'channel.close', {
              replyCode: 406,
              replyText: "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q1'",
              classId: 50,
              methodId: 10,
            });
            return true;
          }
          if (isMethod(input, 'queue.declare') && input.m.channel === 2 && !closed1) {
            pendingOn2 = input.m.args; // answered once channel 1 is closed
            return true;
          }
          if (isMethod(input, 'channel.close-ok')) {
            closeOkChannel = input.m.channel;
            closed1 = true;
            if (pendingOn2) answer2(pendingOn2);
            return true;
          }
          return false;
        },
      });
    });
    const conn = await open(server);
    const ch1 = await conn.openChannel();
    const ch2 = await conn.openChannel();
    await ch1.confirmSelect();
    const ch1Close = countEvents(ch1, 'close');
    const declare1 = observe(ch1.queueDeclare('q1', { durable: true }));
    const queued1 = observe(ch1.exchangeDeclare('x1', 'topic'));
    const publish1 = observe(ch1.basicPublish('ex', 'rk', Buffer.from('p')));
    const declare2 = observe(ch2.queueDeclare('q2'));

    const o = await within(declare1.settled, 3000, 'queueDeclare on channel 1');
    assert.ok(!o.ok);
    const err = assertInstance(o.error, ChannelClosedByServer);
    assert.equal(err.replyCode, 406);
    assert.match(err.replyText, /PRECONDITION_FAILED/);
    assert.equal(err.classId, 50);
    assert.equal(err.methodId, 10);
    assert.equal(err.method, 'queue.declare');
    assert.match(err.message, /queue\.declare/);
    for (const [what, p] of [
      ['the queued exchangeDeclare', queued1],
      ['the confirm-mode publish', publish1],
    ] as [string, Observed<unknown>][]) {
      const r = await within(p.settled, 1000, what);
      assert.ok(!r.ok, `${what} rejects`);
      assert.ok(
        r.error === err || (r.error instanceof ClosedError && r.error.cause === err),
        `${what} rejects with the channel's close reason, got ${String(r.error)}`,
      );
    }
    const o2 = await within(declare2.settled, 3000, 'queueDeclare on channel 2');
    assert.ok(o2.ok, 'the other channel’s call succeeds');
    assert.equal(o2.value.queue, 'q2');
    assert.equal(ch1.isOpen, false);
    assert.equal(ch1.closeReason, err);
    assert.equal(ch2.isOpen, true);
    assert.ok(conn.isOpen);
    const later = await within(observe(ch1.queueDeclare('q3')).settled, 1000, 'a call on the closed channel');
    assert.ok(!later.ok);
    assertInstance(later.error, ClosedError);
    const ch3 = await conn.openChannel();
    assert.equal((await ch3.queueDeclare('q4')).queue, 'q4');
    await conn.close();
    await server.done();
    assert.equal(closeOkChannel, 1, 'warren sent channel.close-ok on channel 1');
    assert.equal(ch1Close.count, 1);
    assert.equal(ch1Close.args[0]?.[0], err);
  },
);

fakeTest('connection.blocked and unblocked: events and isBlocked', async () => {
  const server = await serveBroker({
    onInput: (input, s) => {
      if (!isMethod(input, 'queue.declare')) return false;
      s.send(1, 'queue.declare-ok', { queue: input.m.args.queue, messageCount: 0, consumerCount: 0 });
      if (input.m.args.queue === 'block') s.send(0, 'connection.blocked', { reason: 'low on memory' });
      else s.send(0, 'connection.unblocked', {});
      return true;
    },
  });
  const conn = await open(server);
  const ch = await conn.openChannel();
  assert.equal(conn.isBlocked, false);
  const blocked = new Promise<string>((resolve) => conn.once('blocked', resolve));
  await ch.queueDeclare('block');
  assert.equal(await within(blocked, 3000, 'blocked'), 'low on memory');
  assert.equal(conn.isBlocked, true);
  const unblocked = new Promise<void>((resolve) => conn.once('unblocked', resolve));
  await ch.queueDeclare('unblock');
  await within(unblocked, 3000, 'unblocked');
  assert.equal(conn.isBlocked, false);
  await conn.close();
  await server.done();
});

fakeTest('server connection.close 320: ConnectionClosedByServer, close-ok sent, pending calls rejected', async () => {
  let afterCloseOk = -1;
  const server = await serveBroker({
    onInput: async (input, s) => {
      if (isMethod(input, 'queue.declare')) return true; // left unanswered
      if (input.kind !== 'publish') return false;
      s.send(0, 'connection.close', {
        replyCode: 320,
        replyText: "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'",
        classId: 0,
        methodId: 0,
      });
      await s.recvMethod('connection.close-ok');
      await within(s.closed, 3000, 'warren closing the socket');
      afterCloseOk = framesAfter(s, 'connection.close-ok').length;
      return 'stop';
    },
  });
  const conn = await open(server);
  const closes = countEvents(conn, 'close');
  const ch = await conn.openChannel();
  await ch.confirmSelect();
  const declare = observe(ch.queueDeclare('')); // never answered
  const publish = observe(ch.basicPublish('ex', 'rk', Buffer.from('x')));
  const reason = await within(conn.closed, 3000, 'conn.closed');
  const err = assertInstance(reason, ConnectionClosedByServer);
  assert.equal(err.replyCode, 320);
  assert.match(err.replyText, /CONNECTION_FORCED/);
  assert.equal(err.recoverable, true);
  for (const [what, p] of [
    ['queueDeclare', declare],
    ['the confirm-mode publish', publish],
  ] as [string, Observed<unknown>][]) {
    const r = await within(p.settled, 1000, what);
    assert.ok(!r.ok, `${what} rejects`);
    assert.ok(
      r.error === err || (r.error instanceof ClosedError && r.error.cause === err),
      `${what} rejects with the server's close, got ${String(r.error)}`,
    );
  }
  await server.done();
  assert.equal(afterCloseOk, 0, 'nothing follows close-ok');
  await sleep(20);
  assert.equal(closes.count, 1);
  await assert.rejects(conn.openChannel(), ClosedError);
});

// ----------------------------------------------------------------------------------- deliveries

fakeTest(
  'deliveries: many body frames, a body of exactly one full frame, an empty body, and a message in 5-byte TCP chunks arrive intact',
  async () => {
    const FRAME_MAX = 4096;
    const big = Buffer.alloc(100_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) % 256;
    const full = Buffer.alloc(FRAME_MAX - 8, 0x5a);
    const dribbled = Buffer.from('x'.repeat(300) + 'ünïcödé');
    const props: BasicProperties = {
      contentType: 'application/octet-stream',
      contentEncoding: 'identity',
      headers: { n: 1, nested: { deep: true } },
      deliveryMode: 2,
      priority: 5,
      correlationId: 'corr',
      replyTo: 'amq.rabbitmq.reply-to',
      expiration: '60000',
      messageId: 'id-1',
      timestamp: new Date(1_700_000_000_000),
      type: 'kind',
      userId: 'guest',
      appId: 'fake',
    };
    let lastAck: MethodArgsByName['basic.ack'] | undefined;
    const server = await serveBroker(
      {
        onInput: async (input, s) => {
          if (isMethod(input, 'basic.ack')) {
            lastAck = input.m.args;
            return true;
          }
          if (!isMethod(input, 'basic.consume')) return false;
          const ch = input.m.channel;
          s.send(ch, 'basic.consume-ok', { consumerTag: 'c1' });
          const deliver = (tag: number): MethodInputByName['basic.deliver'] => ({
            consumerTag: 'c1',
            deliveryTag: tag,
            redelivered: tag === 2,
            exchange: 'ex',
            routingKey: `rk.${tag}`,
          });
          s.sendContent(ch, 'basic.deliver', deliver(1), props, big);
          s.sendContent(ch, 'basic.deliver', deliver(2), {}, full);
          s.sendContent(ch, 'basic.deliver', deliver(3), { contentType: 'text/plain' }, Buffer.alloc(0));
          const bytes = contentBytes(FRAME_MAX, ch, 'basic.deliver', deliver(4), { messageId: 'dribble' }, dribbled);
          for (let i = 0; i < bytes.length; i += 5) {
            s.sendRaw(bytes.subarray(i, i + 5));
            await new Promise<void>((resolve) => setImmediate(resolve));
          }
          return true;
        },
      },
      { frameMax: FRAME_MAX },
    );
    const conn = await open(server);
    assert.equal(conn.frameMax, FRAME_MAX);
    const ch = await conn.openChannel();
    const got: Message[] = [];
    const acked: boolean[] = [];
    const all = new Promise<void>((resolve) => {
      void ch.basicConsume('q', {}, (msg) => {
        got.push(msg);
        acked.push(msg.ack());
        if (got.length === 4) resolve();
      });
    });
    await within(all, 5000, 'four deliveries');
    const [m1, m2, m3, m4] = got as [Message, Message, Message, Message];
    assert.deepEqual(
      got.map((m) => m.deliveryTag),
      [1, 2, 3, 4],
    );
    assert.deepEqual(acked, [true, true, true, true], 'each ack was sent');
    assert.equal(m1.body.length, big.length);
    assert.ok(m1.body.equals(big), 'the 25-frame body is intact');
    assert.deepEqual(m1.properties, props);
    assert.equal(m1.exchange, 'ex');
    assert.equal(m1.routingKey, 'rk.1');
    assert.equal(m1.consumerTag, 'c1');
    assert.equal(m1.redelivered, false);
    assert.ok(m2.body.equals(full), 'a body filling one whole frame is intact');
    assert.equal(m2.redelivered, true);
    assert.equal(m3.body.length, 0, 'an empty body');
    assert.equal(m3.properties.contentType, 'text/plain');
    assert.ok(m4.body.equals(dribbled), 'a message cut into 5-byte chunks is intact');
    assert.equal(m4.properties.messageId, 'dribble');
    await sleep(20);
    await conn.close();
    await server.done();
    assert.ok(lastAck, 'acks reached the server');
    assert.equal(lastAck.deliveryTag, 4, 'everything was acknowledged');
  },
);

for (const death of ['connection.close 320', 'socket reset'] as const) {
  fakeTest(
    `deliveries, then the connection dies (${death}): msg.ack() returns false and nothing is written`,
    async () => {
      let afterCloseOk = -1;
      let serverSide: FakeConnection | undefined;
      const server = await serve(async (s) => {
        serverSide = s;
        await s.handshake({ heartbeat: 0 });
        await playBroker(s, {
          onInput: async (input) => {
            if (isMethod(input, 'basic.consume')) {
              s.send(1, 'basic.consume-ok', { consumerTag: 'c1' });
              for (const tag of [1, 2, 3]) {
                s.sendContent(
                  1,
                  'basic.deliver',
                  { consumerTag: 'c1', deliveryTag: tag, exchange: '', routingKey: 'q' },
                  {},
                  Buffer.from(`m${tag}`),
                );
              }
              return true;
            }
            if (!isMethod(input, 'queue.declare')) return false;
            // The client holds the deliveries: the connection dies now.
            if (death === 'socket reset') {
              s.destroy();
              return 'stop';
            }
            s.send(0, 'connection.close', { replyCode: 320, replyText: 'CONNECTION_FORCED', classId: 0, methodId: 0 });
            await s.recvMethod('connection.close-ok');
            await within(s.closed, 3000, 'warren closing the socket');
            afterCloseOk = framesAfter(s, 'connection.close-ok').length;
            return 'stop';
          },
        });
      });
      const conn = await open(server);
      const ch = await conn.openChannel();
      const got: Message[] = [];
      const three = new Promise<void>((resolve) => {
        void ch.basicConsume('q', {}, (msg) => {
          got.push(msg);
          if (got.length === 3) resolve();
        });
      });
      await within(three, 3000, 'three deliveries');
      const sync = observe(ch.queueDeclare('holding'));
      await within(conn.closed, 3000, 'conn.closed');
      assert.equal((await sync.settled).ok, false);

      const writes: Buffer[] = [];
      conn.transport.onWrite = (chunk) => writes.push(chunk);
      const [m1, m2, m3] = got as [Message, Message, Message];
      assert.equal(m1.ack(), false, 'ack on a dead connection');
      assert.equal(m2.nack({ requeue: false }), false, 'nack on a dead connection');
      assert.equal(m3.reject(), false, 'reject on a dead connection');
      assert.doesNotThrow(() => ch.basicAck(3, { multiple: true }));
      await sleep(30); // any coalesced ack would be flushed by now
      assert.deepEqual(writes, [], 'nothing written');
      assert.equal(conn.transport.encoder.pending, 0, 'nothing encoded');
      await server.done();
      assert.ok(serverSide);
      assert.ok(
        !serverSide.received.some((f) => f.method?.name === 'basic.ack' || f.method?.name === 'basic.nack'),
        'the server never received an acknowledgement',
      );
      if (death === 'connection.close 320') assert.equal(afterCloseOk, 0, 'nothing follows close-ok');
    },
  );
}
