/**
 * OpenTelemetry metrics against the real broker, recorded by an in-memory meter provider: publishes
 * (confirmed, returned), deliveries and handler outcomes, reconnects, and the gauges; no metrics
 * object at all without a provider; a throwing SDK is contained.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { metrics as otelMetrics } from '@opentelemetry/api';
import { configureMetrics, MessageReturned } from '../../src/index.js';
import { resetMetricsForTests } from '../../src/tracing/metrics.js';
import { withChannel } from '../support/broker.js';
import { fileFixture } from '../support/client.js';
import { startProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait.js';

const { clients, resources } = fileFixture();
afterEach(() => {
  resetMetricsForTests();
  otelMetrics.disable();
});

const fast = { backoff: { initialDelay: 20, maxDelay: 200 } };

type Attrs = Record<string, string | number | boolean>;
interface Point {
  value: number;
  attributes: Attrs;
}

/** Records every measurement by instrument name; gauges are read by `collect()`. */
class MemoryMeterProvider {
  readonly points = new Map<string, Point[]>();
  readonly meters: string[] = [];
  private readonly callbacks = new Map<string, ((r: { observe(v: number, a?: Attrs): void }) => void)[]>();

  getMeter(name: string) {
    this.meters.push(name);
    const record =
      (instrument: string) =>
      (value: number, attributes: Attrs = {}) => {
        const list = this.points.get(instrument) ?? [];
        list.push({ value, attributes });
        this.points.set(instrument, list);
      };
    return {
      createCounter: (n: string) => ({ add: record(n) }),
      createHistogram: (n: string) => ({ record: record(n) }),
      createObservableGauge: (n: string) => ({
        addCallback: (cb: (r: { observe(v: number, a?: Attrs): void }) => void) =>
          this.callbacks.set(n, [...(this.callbacks.get(n) ?? []), cb]),
        removeCallback: (cb: (r: { observe(v: number, a?: Attrs): void }) => void) =>
          this.callbacks.set(
            n,
            (this.callbacks.get(n) ?? []).filter((c) => c !== cb),
          ),
      }),
    };
  }

  /** Sum of the values of `instrument` whose attributes include `where`. */
  sum(instrument: string, where: Attrs = {}): number {
    return (this.points.get(instrument) ?? [])
      .filter((p) => Object.entries(where).every(([k, v]) => p.attributes[k] === v))
      .reduce((a, p) => a + p.value, 0);
  }

  count(instrument: string, where: Attrs = {}): number {
    return (this.points.get(instrument) ?? []).filter((p) =>
      Object.entries(where).every(([k, v]) => p.attributes[k] === v),
    ).length;
  }

  collect(gauge: string): Point[] {
    const seen: Point[] = [];
    for (const cb of this.callbacks.get(gauge) ?? []) {
      cb({ observe: (value, attributes = {}) => seen.push({ value, attributes }) });
    }
    return seen;
  }
}

describe('metrics', () => {
  test('publishes, deliveries, handler outcomes, reconnects and gauges are recorded', async () => {
    const provider = new MemoryMeterProvider();
    configureMetrics({ meterProvider: provider });
    const proxy = await startProxy({ target: { host: '127.0.0.1', port: 5672 } });
    try {
      const client = clients.make({ name: 'metrics', urls: [proxy.url()], ...fast });
      assert.deepEqual(provider.meters, ['warren']);
      const queue = resources.queue('metrics');
      await client.declareQueue(queue);
      const pub = client.publisher();
      await Promise.all([1, 2, 3, 4].map((i) => pub.publish('', queue, `m${i}`)));
      await assert.rejects(
        pub.publish('amq.direct', 'nobody-binds-this', 'lost', {}, { mandatory: true }),
        MessageReturned,
      );
      assert.equal(provider.sum('messaging.client.sent.messages'), 5);
      assert.equal(provider.sum('messaging.client.sent.messages', { 'messaging.destination.name': 'amq.direct' }), 1);
      assert.equal(provider.sum('warren.publish.outcomes', { 'warren.outcome': 'confirmed' }), 4);
      assert.equal(provider.sum('warren.publish.outcomes', { 'warren.outcome': 'returned' }), 1);
      assert.equal(provider.count('messaging.client.operation.duration'), 5);
      assert.equal(provider.count('messaging.client.operation.duration', { 'error.type': 'MESSAGE_RETURNED' }), 1);
      for (const p of provider.points.get('messaging.client.operation.duration') ?? []) {
        assert.equal(p.attributes['messaging.system'], 'rabbitmq');
        assert.ok(p.value >= 0 && p.value < 10, `a duration in seconds: ${p.value}`);
      }

      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const sub = client.consume(
        queue,
        async (msg) => {
          if (msg.body.toString() === 'm1') await gate;
          if (msg.body.toString() === 'm2') throw new Error('bad message');
        },
        { retry: false, requeueOnError: false, concurrency: 1, prefetch: 10 },
      );
      sub.on('handlerError', () => {});
      await waitFor(() => sub.runningCount === 1 && sub.bufferedCount === 3, { what: 'm1 running, 3 buffered' });
      const running = provider.collect('warren.consume.running');
      assert.deepEqual(
        running.map((p) => [p.value, p.attributes['messaging.destination.subscription.name']]),
        [[1, queue]],
      );
      assert.deepEqual(
        provider.collect('warren.consume.buffered').map((p) => p.value),
        [3],
      );
      assert.deepEqual(
        provider.collect('warren.publish.in_flight').map((p) => p.value),
        [0],
      );
      release();
      await waitFor(() => provider.count('messaging.process.duration') === 4, { what: 'four handled' });
      assert.equal(
        provider.sum('messaging.client.consumed.messages', { 'messaging.destination.subscription.name': queue }),
        4,
      );
      assert.equal(provider.sum('warren.consume.outcomes', { 'warren.outcome': 'ack' }), 3);
      assert.equal(provider.sum('warren.consume.outcomes', { 'warren.outcome': 'nack' }), 1);
      assert.equal(provider.count('messaging.process.duration', { 'error.type': 'Error' }), 1);

      const reconnected = new Promise((r) => client.once('connect', r));
      proxy.cutAll();
      await reconnected;
      assert.equal(provider.sum('warren.client.reconnects'), 1);
      await sub.cancel();
      await client.close();
      assert.deepEqual(provider.collect('warren.publish.pending'), [], 'a closed client is no longer read');
    } finally {
      await clients.closeAll();
      await proxy.close();
    }
  });

  test('the global meter provider of @opentelemetry/api is used when an SDK registered one', async () => {
    const provider = new MemoryMeterProvider();
    otelMetrics.setGlobalMeterProvider(provider as never);
    const client = clients.make({ name: 'metrics-global', ...fast });
    const queue = resources.queue('metrics-global');
    await client.declareQueue(queue);
    await client.publisher().publish('', queue, 'x');
    assert.equal(provider.sum('messaging.client.sent.messages'), 1);
    await client.close();
  });

  test('without a provider a client has no metrics object: nothing is recorded or allocated', async () => {
    // The API is installed and loaded, but no SDK registered a provider: its no-op provider is skipped.
    const client = clients.make({ name: 'metrics-none', ...fast });
    assert.equal((client as unknown as { host: { metrics?: unknown } }).host.metrics, undefined);
    configureMetrics({ meterProvider: new MemoryMeterProvider(), enabled: false });
    const off = clients.make({ name: 'metrics-off', ...fast });
    assert.equal((off as unknown as { host: { metrics?: unknown } }).host.metrics, undefined);
    await Promise.all([client.close(), off.close()]);
  });

  test('an SDK that throws is contained: publishes and handlers carry on', async () => {
    const throwing = {
      getMeter: () => ({
        createCounter: () => ({
          add() {
            throw new Error('sdk bug');
          },
        }),
        createHistogram: () => ({
          record() {
            throw new Error('sdk bug');
          },
        }),
        createObservableGauge: () => ({ addCallback() {}, removeCallback() {} }),
      }),
    };
    configureMetrics({ meterProvider: throwing });
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const client = clients.make({ name: 'metrics-throws', ...fast });
      const queue = resources.queue('metrics-throws');
      await client.declareQueue(queue);
      await client.publisher().publish('', queue, 'x');
      const handled: string[] = [];
      const sub = client.consume(queue, (msg) => void handled.push(msg.body.toString()));
      await waitFor(() => handled.length === 1, { what: 'the message handled' });
      await withChannel(async (ch) => assert.equal((await ch.queueDeclare(queue, { passive: true })).messageCount, 0));
      await sub.cancel();
      await client.close();
      assert.ok(warnings.length >= 1, 'reported as a UserCodeError');
    } finally {
      process.off('warning', onWarning);
    }
  });
});
