/**
 * The containment primitives: `SafeEmitter` runs every listener whatever the earlier ones threw and
 * reports each throw once; the tracing hooks survive an OpenTelemetry SDK that throws.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Message } from '../../src/channel/message.js';
import {
  configureTracing,
  type OpenTelemetryApi,
  resetTracingForTests,
  startPublishSpan,
  traceProcess,
} from '../../src/tracing/index.js';
import { reportUserCodeError, SafeEmitter, UserCodeError } from '../../src/user-code.js';

let warnings: UserCodeError[] = [];
const onWarning = (w: Error): void => {
  if (w instanceof UserCodeError) warnings.push(w);
};
beforeEach(() => {
  warnings = [];
  process.on('warning', onWarning);
});
afterEach(() => {
  process.off('warning', onWarning);
  resetTracingForTests();
});

test('every listener runs in order although earlier ones throw; each throw is reported once', async () => {
  const emitter = new SafeEmitter<{ tick: [n: number] }>();
  const calls: string[] = [];
  const first = new Error('first');
  emitter.on('tick', () => {
    calls.push('a');
    throw first;
  });
  emitter.once('tick', (n) => {
    calls.push(`once ${n}`);
    throw new Error('second');
  });
  emitter.on('tick', (n) => calls.push(`c ${n}`));
  assert.equal(emitter.emit('tick', 1), true);
  assert.equal(emitter.emit('tick', 2), true);
  assert.deepEqual(calls, ['a', 'once 1', 'c 1', 'a', 'c 2']);
  assert.equal(emitter.listenerCount('tick'), 2, 'the once listener was removed although it threw');
  await sleep(10);
  // `first` was thrown twice: the same object is reported once.
  assert.equal(warnings.length, 2);
  assert.equal(warnings.filter((w) => w.cause === first).length, 1);
  assert.equal(warnings[0]!.source, "SafeEmitter 'tick' listener");
});

test('the same error object is reported once however many layers see it', async () => {
  const error = new Error('twice');
  reportUserCodeError('a', error);
  reportUserCodeError('b', error);
  await sleep(10);
  assert.equal(warnings.length, 1);
});

test('an async listener that rejects is reported, not an unhandled rejection', async () => {
  const crashes: unknown[] = [];
  const onCrash = (e: unknown) => crashes.push(e);
  process.on('unhandledRejection', onCrash);
  try {
    const emitter = new SafeEmitter<{ go: [] }>();
    const error = new Error('async');
    emitter.on('go', async () => {
      throw error;
    });
    emitter.emit('go');
    await sleep(20);
    assert.deepEqual(crashes, []);
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.cause, error);
  } finally {
    process.off('unhandledRejection', onCrash);
  }
});

test("an 'error' nobody listens to still throws, as in Node; emit with no listeners returns false", () => {
  const emitter = new SafeEmitter<{ error: [Error]; other: [] }>();
  assert.equal(emitter.emit('other'), false);
  assert.throws(() => emitter.emit('error', new Error('unheard')), /unheard/);
});

/** An OpenTelemetry API whose tracer (or its spans) throw. */
function brokenApi(where: 'startSpan' | 'end'): OpenTelemetryApi {
  const span = {
    isRecording: () => true,
    spanContext: () => ({ traceId: '1'.repeat(32), spanId: '2'.repeat(16), traceFlags: 1 }),
    setAttribute() {},
    setStatus() {},
    recordException() {},
    end() {
      throw new Error('SDK bug in end');
    },
  };
  const api = {
    trace: {
      getTracer: () => ({
        startSpan: () => {
          if (where === 'startSpan') throw new Error('SDK bug in startSpan');
          return span;
        },
      }),
      setSpan: (ctx: unknown) => ctx,
      setSpanContext: (ctx: unknown) => ctx,
    },
    propagation: { fields: () => [], inject() {}, extract: (ctx: unknown) => ctx },
    context: { active: () => ({}), with: (_ctx: unknown, fn: () => unknown) => fn() },
    SpanKind: { PRODUCER: 3, CONSUMER: 4 },
    SpanStatusCode: { ERROR: 2 },
  };
  return api as unknown as OpenTelemetryApi;
}

const message = {
  properties: {},
  body: Buffer.from('x'),
  exchange: '',
  routingKey: 'q',
  deliveryTag: 1,
} as unknown as Message;

test('a tracing SDK that throws in startSpan: publishes go out untraced, handlers run once', async () => {
  configureTracing({ api: brokenApi('startSpan') });
  assert.equal(
    startPublishSpan({ exchange: '', routingKey: 'q', body: Buffer.from('x'), properties: undefined }),
    undefined,
  );
  let runs = 0;
  assert.equal(
    traceProcess(message, 'q', () => ++runs),
    1,
  );
  assert.equal(runs, 1);
  // A handler's own throw is the handler's, not the SDK's: it propagates and is not run again.
  configureTracing({ api: brokenApi('end') });
  assert.throws(
    () =>
      traceProcess(message, 'q', () => {
        runs++;
        throw new Error('handler failure');
      }),
    /handler failure/,
  );
  assert.equal(runs, 2);
  await sleep(10);
  assert.ok(warnings.length >= 2, `SDK failures reported: ${warnings.map((w) => w.message).join('; ')}`);
  assert.ok(warnings.every((w) => /OpenTelemetry SDK/.test(w.source)));
});

test('a tracing SDK that throws in span.end: the publish span ends quietly', async () => {
  configureTracing({ api: brokenApi('end') });
  const span = startPublishSpan({ exchange: '', routingKey: 'q', body: Buffer.from('x'), properties: undefined });
  assert.ok(span !== undefined);
  span.end();
  span.end(new Error('publish failed'));
  await sleep(10);
  assert.equal(warnings.length, 1);
});
