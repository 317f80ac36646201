/**
 * The part of `@opentelemetry/api` that warren uses, declared structurally here so that warren's
 * published types never mention the package: it is an optional peer dependency, and an application
 * without it must compile and run unchanged.
 *
 * @module
 */

/** An OpenTelemetry `Context` (opaque to warren). */
export type OtelContext = object;

/** Attribute values warren sets. */
export type OtelAttributes = Record<string, string | number | boolean>;

/** `SpanContext`. */
export interface OtelSpanContext {
  traceId: string;
  spanId: string;
  traceFlags: number;
  isRemote?: boolean;
  traceState?: { serialize(): string };
}

/** `Span`. */
export interface OtelSpan {
  setAttribute(key: string, value: string | number | boolean): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  recordException(exception: Error | string): void;
  end(): void;
  isRecording(): boolean;
  spanContext(): OtelSpanContext;
}

/** `Tracer`. */
export interface OtelTracer {
  startSpan(name: string, options?: { kind?: number; attributes?: OtelAttributes }, context?: OtelContext): OtelSpan;
}

/** `TextMapSetter` / `TextMapGetter` as warren passes them. */
export interface OtelSetter {
  set(carrier: Record<string, unknown>, key: string, value: string): void;
}
export interface OtelGetter {
  keys(carrier: Record<string, unknown>): string[];
  get(carrier: Record<string, unknown>, key: string): string | string[] | undefined;
}

/**
 * The subset of `@opentelemetry/api` warren calls. Pass the real module to `configureTracing({ api })`.
 *
 * @example
 * ```ts
 * import * as otel from '@opentelemetry/api';
 * configureTracing({ api: otel });
 * ```
 */
export interface OpenTelemetryApi {
  /** `trace`: the tracer warren starts its spans with, and span-in-context helpers. */
  trace: {
    /** Returns warren's tracer (`'warren'`, with warren's version). */
    getTracer(name: string, version?: string): OtelTracer;
    /** A context with `span` as its active span. */
    setSpan(context: OtelContext, span: OtelSpan): OtelContext;
    /** A context whose parent is a remote span (read from a `traceparent` header). */
    setSpanContext(context: OtelContext, spanContext: OtelSpanContext): OtelContext;
  };
  /** `context`: the application's active context. */
  context: {
    /** The active context, whose span becomes the parent of a publish span. */
    active(): OtelContext;
    /** Runs `fn` with `context` active: a message handler runs inside its consumer span. */
    with<R>(context: OtelContext, fn: () => R): R;
  };
  /** `propagation`: the application's propagator, which writes and reads trace context in headers. */
  propagation: {
    /** Writes the trace context of `context` into message headers. */
    inject(context: OtelContext, carrier: Record<string, unknown>, setter?: OtelSetter): void;
    /** Reads a trace context from message headers. */
    extract(context: OtelContext, carrier: Record<string, unknown>, getter?: OtelGetter): OtelContext;
    /** The header names the propagator uses; none means no propagator is registered. */
    fields(): string[];
  };
  /** Span kinds: PRODUCER for publishes, CONSUMER for handled messages. */
  SpanKind: { PRODUCER: number; CONSUMER: number };
  /** Status codes: ERROR for a failed publish or handler. */
  SpanStatusCode: { ERROR: number };
  /** The empty context. */
  ROOT_CONTEXT: OtelContext;
  /** `metrics`: the global meter provider (API 1.3 and later). */
  metrics?: { getMeterProvider(): OtelMeterProvider };
}

/** Attributes of a measurement. */
export type OtelMetricAttributes = Record<string, string | number | boolean>;

/** `Counter` / `Histogram` as warren records into them. */
export interface OtelCounter {
  add(value: number, attributes?: OtelMetricAttributes): void;
}
export interface OtelHistogram {
  record(value: number, attributes?: OtelMetricAttributes): void;
}
/** `ObservableResult`. */
export interface OtelObservableResult {
  observe(value: number, attributes?: OtelMetricAttributes): void;
}
/** `ObservableGauge` (or up-down counter). */
export interface OtelObservable {
  addCallback(callback: (result: OtelObservableResult) => void): void;
  removeCallback(callback: (result: OtelObservableResult) => void): void;
}
/** Options of an instrument. */
export interface OtelInstrumentOptions {
  description?: string;
  unit?: string;
  advice?: { explicitBucketBoundaries?: number[] };
}
/** `Meter`. */
export interface OtelMeter {
  createCounter(name: string, options?: OtelInstrumentOptions): OtelCounter;
  createHistogram(name: string, options?: OtelInstrumentOptions): OtelHistogram;
  createObservableGauge(name: string, options?: OtelInstrumentOptions): OtelObservable;
}
/** `MeterProvider`: pass one to `configureMetrics({ meterProvider })`, or register it globally. */
export interface OtelMeterProvider {
  getMeter(name: string, version?: string): OtelMeter;
}
