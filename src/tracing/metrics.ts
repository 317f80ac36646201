/**
 * OpenTelemetry metrics for the robust client, optional: with a meter provider (the global one of
 * `@opentelemetry/api` when an SDK registered it, or one given to `configureMetrics`), each client
 * records the instruments below, named after the OpenTelemetry messaging semantic conventions where
 * they name one, and `warren.*` otherwise. Without a provider a client has no metrics object at all:
 * the per-message cost is one `=== undefined` test.
 *
 * The provider is looked up when a client is created: register the SDK (or call
 * `configureMetrics`) before `createClient()`.
 *
 * | instrument | kind | attributes |
 * | --- | --- | --- |
 * | `messaging.client.sent.messages` | counter | destination (exchange) |
 * | `messaging.client.operation.duration` (s) | histogram | publish: from `publish()` to its confirm |
 * | `warren.publish.outcomes` | counter | `warren.outcome`: confirmed, nacked, returned, failed, sent |
 * | `messaging.client.consumed.messages` | counter | subscription (queue) |
 * | `messaging.process.duration` (s) | histogram | handler time; `error.type` when it threw |
 * | `warren.consume.outcomes` | counter | `warren.outcome`: ack or nack (the handler threw) |
 * | `warren.client.reconnects` | counter | |
 * | `warren.publish.in_flight`, `warren.publish.pending` | gauges | sent unconfirmed, not yet settled |
 * | `warren.consume.running`, `warren.consume.buffered` | gauges | per queue |
 *
 * Every measurement has `messaging.system: rabbitmq`; `error.type` is the error's `code`.
 *
 * @module
 */
import { reportUserCodeError } from '../user-code.js';
import { VERSION } from '../version.js';
import { loadedOtelApi, type PublishSpan } from './index.js';
import type {
  OtelCounter,
  OtelHistogram,
  OtelMeter,
  OtelMeterProvider,
  OtelMetricAttributes,
  OtelObservable,
  OtelObservableResult,
} from './otel-api.js';

export type { OtelMeterProvider } from './otel-api.js';

const SDK = 'OpenTelemetry metrics SDK called by warren';

let configured: OtelMeterProvider | undefined;
let disabled = false;

/**
 * Options of {@link configureMetrics}.
 *
 * @example
 * ```ts
 * configureMetrics({ meterProvider: new MeterProvider({ readers: [reader] }) });
 * ```
 */
export interface MetricsOptions {
  /** The provider clients created from now on record into (instead of the global one). */
  meterProvider?: OtelMeterProvider;
  /** `false`: clients created from now on record nothing. */
  enabled?: boolean;
}

/**
 * Sets where clients created from now on record their metrics, or turns metrics off.
 *
 * @example
 * ```ts
 * import { metrics } from '@opentelemetry/api';
 * configureMetrics({ meterProvider: metrics.getMeterProvider() });
 * ```
 */
export function configureMetrics(options: MetricsOptions): void {
  if (options.meterProvider !== undefined) configured = options.meterProvider;
  if (options.enabled !== undefined) disabled = !options.enabled;
}

/** @internal Forgets `configureMetrics`, for tests. */
export function resetMetricsForTests(): void {
  configured = undefined;
  disabled = false;
}

/** The global provider of the API, unless it is the API's no-op one (no SDK registered). */
function globalProvider(): OtelMeterProvider | undefined {
  const provider = loadedOtelApi()?.metrics?.getMeterProvider();
  if (provider === undefined || provider.constructor?.name === 'NoopMeterProvider') return undefined;
  return provider;
}

/** What the gauges read, when the metrics reader asks. */
export interface GaugeSource {
  publishers(): { pending: number; inFlight: number };
  consumers(): { queue: string; running: number; buffered: number }[];
}

const BASE = { 'messaging.system': 'rabbitmq' } as const;

/** The counters: name, description and unit. */
const COUNTERS = {
  sent: [
    'messaging.client.sent.messages',
    'Messages published (each publish() call once, resends not counted)',
    '{message}',
  ],
  publishOutcomes: [
    'warren.publish.outcomes',
    'Settled publishes by outcome: confirmed, nacked, returned, failed, sent (without confirms)',
    '{message}',
  ],
  consumed: ['messaging.client.consumed.messages', 'Messages delivered to subscriptions', '{message}'],
  consumeOutcomes: [
    'warren.consume.outcomes',
    'Handled messages by outcome: ack, or nack when the handler threw',
    '{message}',
  ],
  reconnects: ['warren.client.reconnects', 'Connections after the first one', '{connection}'],
} as const satisfies Record<string, readonly [name: string, description: string, unit: string]>;

function errorType(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code !== '') return code;
  return error instanceof Error ? error.name : '_OTHER';
}

/**
 * A client's instruments. Created only when a meter provider is there, so that callers test
 * `metrics !== undefined` and do nothing else without one.
 * @internal
 */
export class ClientMetrics {
  private readonly counters: { [K in keyof typeof COUNTERS]: OtelCounter };
  private readonly publishDuration: OtelHistogram;
  private readonly processDuration: OtelHistogram;
  private readonly gauges: [OtelObservable, (r: OtelObservableResult) => void][] = [];
  /** Attribute objects per destination, so that recording allocates nothing. */
  private readonly byExchange = new Map<string, OtelMetricAttributes>();
  private readonly byQueue = new Map<string, OtelMetricAttributes>();

  constructor(meter: OtelMeter, source: GaugeSource) {
    const counters: Partial<Record<keyof typeof COUNTERS, OtelCounter>> = {};
    for (const [key, [name, description, unit]] of Object.entries(COUNTERS)) {
      counters[key as keyof typeof COUNTERS] = meter.createCounter(name, { description, unit });
    }
    this.counters = counters as { [K in keyof typeof COUNTERS]: OtelCounter };
    this.publishDuration = meter.createHistogram('messaging.client.operation.duration', {
      description: 'Time from publish() to its confirm (or failure)',
      unit: 's',
      advice: { explicitBucketBoundaries: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10] },
    });
    this.processDuration = meter.createHistogram('messaging.process.duration', {
      description: 'Time a message handler took',
      unit: 's',
    });
    const perClient = (pick: (p: ReturnType<GaugeSource['publishers']>) => number) => (r: OtelObservableResult) =>
      r.observe(pick(source.publishers()), BASE);
    const perQueue =
      (pick: (c: ReturnType<GaugeSource['consumers']>[number]) => number) => (r: OtelObservableResult) => {
        for (const c of source.consumers()) r.observe(pick(c), this.queueAttributes(c.queue));
      };
    const gauges: [name: string, description: string, read: (r: OtelObservableResult) => void][] = [
      ['warren.publish.in_flight', 'Publishes sent and not yet confirmed', perClient((p) => p.inFlight)],
      ['warren.publish.pending', 'Publishes not yet settled (waiting or in flight)', perClient((p) => p.pending)],
      ['warren.consume.running', 'Message handlers running', perQueue((c) => c.running)],
      ['warren.consume.buffered', 'Deliveries waiting for a handler', perQueue((c) => c.buffered)],
    ];
    for (const [name, description, read] of gauges) {
      const gauge = meter.createObservableGauge(name, { description, unit: '{message}' });
      gauge.addCallback(read);
      this.gauges.push([gauge, read]);
    }
  }

  private exchangeAttributes(exchange: string): OtelMetricAttributes {
    return cached(this.byExchange, exchange, () => ({
      ...BASE,
      'messaging.operation.name': 'publish',
      'messaging.destination.name': exchange,
    }));
  }

  private queueAttributes(queue: string): OtelMetricAttributes {
    return cached(this.byQueue, queue, () => ({
      ...BASE,
      'messaging.operation.name': 'process',
      'messaging.destination.subscription.name': queue,
    }));
  }

  /**
   * A publish starts: counts it, and returns the span (wrapped) whose `end` records its outcome and
   * duration. `span` is the tracing span, if any; `properties` what to send without one.
   */
  publish<P>(
    span: PublishSpan | undefined,
    exchange: string,
    properties: P,
    confirm: boolean,
  ): { properties: P | PublishSpan['properties']; end(error?: unknown): void } {
    const attributes = this.exchangeAttributes(exchange);
    const started = performance.now();
    this.guard(() => this.counters.sent.add(1, attributes));
    let ended = false;
    return {
      properties: span === undefined ? properties : span.properties,
      end: (error?: unknown) => {
        if (ended) return;
        ended = true;
        span?.end(error);
        const seconds = (performance.now() - started) / 1000;
        const outcome = error === undefined ? (confirm ? 'confirmed' : 'sent') : publishFailure(error);
        this.guard(() => {
          this.counters.publishOutcomes.add(1, { ...attributes, 'warren.outcome': outcome });
          this.publishDuration.record(
            seconds,
            error === undefined ? attributes : { ...attributes, 'error.type': errorType(error) },
          );
        });
      },
    };
  }

  /** A delivery reached a subscription. */
  delivered(queue: string): void {
    this.guard(() => this.counters.consumed.add(1, this.queueAttributes(queue)));
  }

  /** A handler finished after `seconds`, threw `error` if `failed`. */
  processed(queue: string, seconds: number, failed: boolean, error: unknown): void {
    const attributes = this.queueAttributes(queue);
    this.guard(() => {
      this.processDuration.record(seconds, failed ? { ...attributes, 'error.type': errorType(error) } : attributes);
      this.counters.consumeOutcomes.add(1, { ...attributes, 'warren.outcome': failed ? 'nack' : 'ack' });
    });
  }

  reconnected(): void {
    this.guard(() => this.counters.reconnects.add(1, BASE));
  }

  /** The client closed: the gauges stop reading it. */
  close(): void {
    for (const [gauge, read] of this.gauges) this.guard(() => gauge.removeCallback(read));
    this.gauges.length = 0;
  }

  /** What the SDK throws is contained: metrics never break messaging. */
  private guard(record: () => void): void {
    try {
      record();
    } catch (err) {
      reportUserCodeError(SDK, err);
    }
  }
}

/** The attributes for `key`, made once and kept (up to 1000 destinations, so that odd names cannot grow it). */
function cached(
  cache: Map<string, OtelMetricAttributes>,
  key: string,
  make: () => OtelMetricAttributes,
): OtelMetricAttributes {
  let attributes = cache.get(key);
  if (attributes === undefined) {
    attributes = make();
    if (cache.size < 1000) cache.set(key, attributes);
  }
  return attributes;
}

function publishFailure(error: unknown): string {
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'PublishNacked') return 'nacked';
  if (name === 'MessageReturned') return 'returned';
  return 'failed';
}

/** @internal The metrics of a new client, or `undefined` (no provider, or turned off). */
export function clientMetrics(source: GaugeSource): ClientMetrics | undefined {
  if (disabled) return undefined;
  const provider = configured ?? globalProvider();
  if (provider === undefined) return undefined;
  try {
    return new ClientMetrics(provider.getMeter('warren', VERSION), source);
  } catch (err) {
    reportUserCodeError(SDK, err);
    return undefined;
  }
}
