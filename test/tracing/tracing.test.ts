/**
 * OpenTelemetry tracing against the real broker: PRODUCER and CONSUMER spans with the messaging
 * semantic conventions, trace context carried in the headers, and the application's propagator
 * used when it has one. The SDK here is a small in-memory one (otel-harness.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  type Channel,
  type Connection,
  configureTracing,
  connect,
  createClient,
  type Message,
  traceProcess,
  tracePublish,
  tracingReady,
} from '../../src/index.js';
import { installSdk, propagation, type RecordedSpan, W3CPropagator } from './otel-harness.js';

const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const provider = installSdk();
const finished = provider.tracer.finished;

let conn: Connection;
let ch: Channel;
let queue: string;

before(async () => {
  assert.equal(await tracingReady(), true, '@opentelemetry/api is a devDependency: tracing must be on');
  conn = await connect(AMQP_URL);
  ch = await conn.openChannel();
  ({ queue } = await ch.queueDeclare('', { exclusive: true }));
  await ch.confirmSelect();
});

after(async () => {
  await conn.close();
});

function spansNamed(name: string): RecordedSpan[] {
  return finished.filter((s) => s.name === name);
}

/** Publishes `body` inside an application span, traced; resolves with the application span. */
async function publishInSpan(body: Buffer, properties: Parameters<typeof ch.basicPublish>[3]): Promise<RecordedSpan> {
  const root = provider.tracer.startSpan('http request');
  await context.with(trace.setSpan(context.active(), root), () =>
    tracePublish({ exchange: '', routingKey: queue, body, properties, server: conn.endpoint }, (p) =>
      ch.basicPublish('', queue, body, p),
    ),
  );
  root.end();
  return root;
}

/** Consumes one message through traceProcess; resolves with it and the span active in the handler. */
function consumeOne(handler?: (msg: Message) => Promise<void>): Promise<{ msg: Message; active: RecordedSpan }> {
  return new Promise((resolve, reject) => {
    ch.basicConsume(queue, {}, (msg) =>
      traceProcess(
        msg,
        queue,
        async () => {
          const active = trace.getActiveSpan() as RecordedSpan;
          try {
            if (handler) await handler(msg);
            msg.ack();
          } finally {
            resolve({ msg, active });
          }
        },
        conn.endpoint,
      ),
    )
      .then((consumer) => consumer.cancelled)
      .catch(reject);
  }).then(async (r) => {
    const consumer = r as { msg: Message; active: RecordedSpan };
    await ch.basicCancel(consumer.msg.consumerTag!);
    return consumer;
  });
}

describe('OpenTelemetry tracing', () => {
  test('a PRODUCER span per publish and a CONSUMER span per message, one trace across the broker', async () => {
    finished.length = 0;
    const properties = { messageId: 'm-1', correlationId: 'c-1', headers: { keep: 'me' } };
    const root = await publishInSpan(Buffer.from('hello'), properties);
    assert.deepEqual(properties.headers, { keep: 'me' }, "the caller's properties are not modified");

    const { msg, active } = await consumeOne();
    const [producer] = spansNamed('publish');
    const [consumer] = spansNamed(`process ${queue}`);
    assert.ok(producer && consumer, `spans: ${finished.map((s) => s.name).join(', ')}`);

    assert.equal(producer.kind, SpanKind.PRODUCER);
    assert.equal(producer.parentSpanId, root.context.spanId, 'the publish is a child of the active span');
    assert.deepEqual(producer.attributes, {
      'messaging.system': 'rabbitmq',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'publish',
      'messaging.destination.name': '',
      'messaging.rabbitmq.destination.routing_key': queue,
      'messaging.message.id': 'm-1',
      'messaging.message.conversation_id': 'c-1',
      'messaging.message.body.size': 5,
      'server.address': '127.0.0.1',
      'server.port': 5672,
    });

    assert.equal(
      msg.properties.headers?.traceparent,
      `00-${producer.context.traceId}-${producer.context.spanId}-01`,
      'W3C traceparent in the headers, written by warren since no propagator is registered',
    );
    assert.equal(msg.properties.headers?.keep, 'me');

    assert.equal(consumer.kind, SpanKind.CONSUMER);
    assert.equal(consumer.context.traceId, root.context.traceId, 'same trace on both sides');
    assert.equal(consumer.parentSpanId, producer.context.spanId, 'the consumer span continues the producer span');
    assert.equal(active, consumer, 'the consumer span is active inside the handler');
    assert.equal(consumer.attributes['messaging.system'], 'rabbitmq');
    assert.equal(consumer.attributes['messaging.operation.type'], 'process');
    assert.equal(consumer.attributes['messaging.destination.subscription.name'], queue);
    assert.equal(consumer.attributes['messaging.rabbitmq.destination.routing_key'], queue);
    assert.equal(consumer.attributes['messaging.message.id'], 'm-1');
    assert.equal(consumer.attributes['messaging.message.body.size'], 5);
    assert.equal(consumer.attributes['messaging.rabbitmq.message.delivery_tag'], msg.deliveryTag);
    assert.equal(consumer.status.code, SpanStatusCode.UNSET);
    assert.deepEqual(provider.names, ['warren'], 'warren asks for its own tracer');
  });

  test("the application's propagator is used when one is registered", async () => {
    finished.length = 0;
    const propagator = new W3CPropagator();
    propagation.setGlobalPropagator(propagator);
    try {
      await publishInSpan(Buffer.from('x'), undefined);
      const { msg } = await consumeOne();
      const [producer] = spansNamed('publish');
      const [consumer] = spansNamed(`process ${queue}`);
      assert.ok(producer && consumer);
      assert.equal(msg.properties.headers?.['x-propagated-by'], 'test-propagator');
      assert.equal(consumer.parentSpanId, producer.context.spanId, 'extracted through the propagator');
      assert.ok(propagator.injected >= 1);
    } finally {
      propagation.disable();
    }
  });

  test('a failing handler marks its span as an error and still rejects', async () => {
    finished.length = 0;
    await publishInSpan(Buffer.from('boom'), undefined);
    const failure = new Error('handler failed');
    await consumeOne(async () => {
      throw failure;
    }).catch(() => {});
    await new Promise((r) => setImmediate(r));
    const [consumer] = spansNamed(`process ${queue}`);
    assert.ok(consumer);
    assert.equal(consumer.status.code, SpanStatusCode.ERROR);
    assert.equal(consumer.status.message, 'handler failed');
    assert.equal(consumer.attributes['error.type'], 'Error');
    assert.deepEqual(consumer.exceptions, [failure]);
    assert.equal(consumer.ended, true);
  });

  test('a rejected publish ends its span as an error', async () => {
    finished.length = 0;
    const err = await tracePublish(
      { exchange: '', routingKey: 'nowhere', body: Buffer.alloc(0), properties: undefined },
      () => ch.basicPublish('', `warren-no-such-queue-${process.pid}`, Buffer.alloc(0), undefined, { mandatory: true }),
    ).catch((e: unknown) => e);
    assert.equal((err as Error).name, 'MessageReturned');
    const [producer] = spansNamed('publish');
    assert.ok(producer);
    assert.equal(producer.status.code, SpanStatusCode.ERROR);
    assert.equal(producer.attributes['error.type'], 'MESSAGE_RETURNED');
  });

  test('configureTracing({ enabled: false }) stops spans and headers', async () => {
    finished.length = 0;
    configureTracing({ enabled: false });
    try {
      assert.equal(await tracingReady(), false);
      const seen = await tracePublish(
        { exchange: '', routingKey: queue, body: Buffer.alloc(0), properties: undefined },
        async (p) => p,
      );
      assert.equal(seen, undefined, 'properties passed through untouched');
      assert.equal(
        traceProcess({} as Message, queue, () => 42),
        42,
      );
      assert.equal(finished.length, 0);
    } finally {
      configureTracing({ enabled: true });
    }
    assert.equal(await tracingReady(), true);
  });

  test('the robust client traces publisher.publish and client.consume', async () => {
    finished.length = 0;
    const client = createClient(AMQP_URL);
    try {
      const q = `warren-tracing-${process.pid}`;
      await client.declareQueue(q, { exclusive: true });
      let resolveGot!: (m: Message) => void;
      const got = new Promise<Message>((resolve) => (resolveGot = resolve));
      const sub = client.consume(q, async (m) => resolveGot(m));
      await client.publisher().publish('', q, Buffer.from('traced'));
      const msg = await got;
      await sub.cancel();
      const [producer] = spansNamed('publish');
      assert.ok(producer, 'a producer span');
      assert.equal(msg.properties.headers?.traceparent, `00-${producer.context.traceId}-${producer.context.spanId}-01`);
      assert.ok(spansNamed(`process ${q}`)[0], 'a consumer span');
    } finally {
      await client.close();
    }
  });
});
