/**
 * OpenTelemetry tracing for warren, optional: when `@opentelemetry/api` is installed, each publish
 * gets a PRODUCER span and each handled message a CONSUMER span, following the messaging semantic
 * conventions, and the trace context travels in the message headers (W3C `traceparent`). When the
 * package is absent nothing changes and the cost is one comparison per message.
 *
 * The package is loaded on first use: synchronously where `require` can find it (the CommonJS build,
 * or an ESM application whose working directory resolves it), else through `import()` — the spans
 * then start once it has loaded. `await tracingReady()` (or `configureTracing({ api })`) at start-up
 * makes that deterministic.
 *
 * Hooks for the layers above the channel: `startPublishSpan` (publishers), `traceProcess`
 * (consumers), and `tracePublish` for low-level code.
 *
 * @module
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Message } from '../channel/message.js';
import type { BasicProperties } from '../protocol/generated/properties.js';
import type { FieldTable } from '../protocol/field-values.js';
import { reportUserCodeError } from '../user-code.js';
import { VERSION } from '../version.js';
import { readEnv } from '../env.js';
import type {
  OpenTelemetryApi,
  OtelAttributes,
  OtelContext,
  OtelGetter,
  OtelSetter,
  OtelSpan,
  OtelTracer,
} from './otel-api.js';

export type { OpenTelemetryApi } from './otel-api.js';

const PACKAGE = '@opentelemetry/api';
/** Named in reports of what the application's OpenTelemetry SDK threw. */
const SDK = 'OpenTelemetry SDK called by warren';

type State = 'unloaded' | 'loading' | 'ready' | 'absent' | 'disabled';

let state: State = 'unloaded';
let api: OpenTelemetryApi | undefined;
let tracer: OtelTracer | undefined;
let loading: Promise<boolean> | undefined;

/** Read through a call, so that checks after an await are not narrowed away by the compiler. */
function currentState(): State {
  return state;
}

/** A module namespace from `import()` may hold the API as its default export (CommonJS interop). */
function asApi(mod: unknown): OpenTelemetryApi | undefined {
  const m = mod as Partial<OpenTelemetryApi> & { default?: Partial<OpenTelemetryApi> };
  const candidate = m?.trace !== undefined ? m : m?.default;
  if (candidate?.trace === undefined || candidate.propagation === undefined || candidate.context === undefined) {
    return undefined;
  }
  return candidate as OpenTelemetryApi;
}

function use(found: OpenTelemetryApi): void {
  api = found;
  tracer = found.trace.getTracer('warren', VERSION);
  state = 'ready';
}

/** `require` that works from the CommonJS build, and from ESM relative to the working directory. */
function requireSync(): OpenTelemetryApi | undefined {
  const requirers: ((id: string) => unknown)[] = [];
  if (typeof require === 'function') requirers.push(require);
  requirers.push(createRequire(join(process.cwd(), 'noop.js')));
  for (const req of requirers) {
    try {
      const found = asApi(req(PACKAGE));
      if (found !== undefined) return found;
    } catch {
      // Not installed where this require looks: try the next way.
    }
  }
  return undefined;
}

function disabledByEnv(): boolean {
  const v = readEnv('WARREN_TRACING');
  return v === '0' || v === 'off' || v === 'false';
}

/** Loads the API if that was not tried yet; returns it when it is ready. */
function ensure(): OpenTelemetryApi | undefined {
  if (state === 'ready') return api;
  if (state !== 'unloaded') return undefined;
  if (disabledByEnv()) {
    state = 'disabled';
    return undefined;
  }
  const found = requireSync();
  if (found !== undefined) {
    use(found);
    return api;
  }
  state = 'loading';
  loading = import(PACKAGE).then(
    (mod: unknown) => {
      // configureTracing() may have settled things meanwhile: it wins.
      if (currentState() !== 'loading') return currentState() === 'ready';
      const lateFound = asApi(mod);
      if (lateFound === undefined) state = 'absent';
      else use(lateFound);
      return currentState() === 'ready';
    },
    () => {
      if (currentState() === 'loading') state = 'absent';
      return false;
    },
  );
  return undefined;
}

/**
 * Options of {@link configureTracing}.
 */
export interface TracingOptions {
  /** `false` turns tracing off (as `WARREN_TRACING=off` does); `true` turns it back on. */
  enabled?: boolean;
  /** The `@opentelemetry/api` module to use, instead of loading it. */
  api?: OpenTelemetryApi;
}

/**
 * Turns tracing off or on, or hands warren the OpenTelemetry API module explicitly (useful with
 * bundlers, or to start tracing from the very first message in an ES module application).
 *
 * @example
 * ```ts
 * import * as otel from '@opentelemetry/api';
 * import { configureTracing } from 'warren';
 * configureTracing({ api: otel });      // or configureTracing({ enabled: false })
 * ```
 */
export function configureTracing(options: TracingOptions): void {
  if (options.api !== undefined) {
    const found = asApi(options.api);
    if (found === undefined) throw new TypeError('configureTracing: api is not the @opentelemetry/api module');
    use(found);
  }
  if (options.enabled === false) state = 'disabled';
  else if (options.enabled === true && state === 'disabled') state = api !== undefined ? 'ready' : 'unloaded';
}

/**
 * Resolves `true` once tracing is active, `false` if `@opentelemetry/api` is not installed or
 * tracing is off.
 *
 * @example
 * ```ts
 * if (!(await tracingReady())) console.log('no @opentelemetry/api: messages are not traced');
 * ```
 */
export async function tracingReady(): Promise<boolean> {
  ensure();
  if (state === 'loading' && loading !== undefined) return loading;
  return state === 'ready';
}

/** True when spans are being made. Loads the API on the first call. */
export function isTracing(): boolean {
  return state === 'ready' || ensure() !== undefined;
}

// ------------------------------------------------------------------------------------------ carriers

function headerString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return undefined;
}

const setter: OtelSetter = {
  set(carrier, key, value) {
    carrier[key] = value;
  },
};

const getter: OtelGetter = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => headerString(carrier[key]),
};

/** The trace id of "no trace" (W3C trace context). */
const INVALID_TRACE_ID = '00000000000000000000000000000000';

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * Puts the trace context of `ctx` into `headers`: through the application's propagator, or — when
 * none is registered (API without SDK) — as a W3C `traceparent` written by warren itself, so that
 * the trace still crosses the broker.
 */
function inject(otel: OpenTelemetryApi, ctx: OtelContext, span: OtelSpan, headers: FieldTable): void {
  if (otel.propagation.fields().length > 0) {
    otel.propagation.inject(ctx, headers as Record<string, unknown>, setter);
    return;
  }
  const sc = span.spanContext();
  if (!/^0*$/.test(sc.traceId)) {
    headers.traceparent = `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
    const state = sc.traceState?.serialize();
    if (state) headers.tracestate = state;
  }
}

/** The context a message's headers carry, or the active context when they carry none. */
function extract(otel: OpenTelemetryApi, headers: FieldTable | undefined): OtelContext {
  const active = otel.context.active();
  if (headers === undefined) return active;
  if (otel.propagation.fields().length > 0) {
    return otel.propagation.extract(active, headers as Record<string, unknown>, getter);
  }
  const m = TRACEPARENT.exec(headerString(headers.traceparent) ?? '');
  if (m === null || m[1] === 'ff') return active;
  return otel.trace.setSpanContext(active, {
    traceId: m[2]!,
    spanId: m[3]!,
    traceFlags: Number.parseInt(m[4]!, 16),
    isRemote: true,
  });
}

function fail(otel: OpenTelemetryApi, span: OtelSpan, error: unknown): void {
  if (!span.isRecording()) return;
  const err = error instanceof Error ? error : new Error(String(error));
  span.recordException(err);
  span.setAttribute(
    'error.type',
    (err as { code?: unknown }).code !== undefined ? String((err as { code?: unknown }).code) : err.name,
  );
  span.setStatus({ code: otel.SpanStatusCode.ERROR, message: err.message });
}

/** Ends `span`, failed when `error` is given; what the SDK throws is contained. */
function finish(otel: OpenTelemetryApi, span: OtelSpan, error?: unknown): void {
  try {
    if (error !== undefined) fail(otel, span, error);
    span.end();
  } catch (err) {
    reportUserCodeError(SDK, err);
  }
}

/** Where the broker is, for `server.address` / `server.port`. */
export interface ServerInfo {
  /** Broker host name or address (`server.address`). */
  host: string;
  /** Broker port (`server.port`). */
  port: number;
}

// ------------------------------------------------------------------------------------------ producer

/** What a publish is about. */
export interface PublishSpanInfo {
  /** Exchange published to (`messaging.destination.name`; `''` for the default exchange). */
  exchange: string;
  /** Routing key (`messaging.rabbitmq.destination.routing_key`). */
  routingKey: string;
  /** The body, for `messaging.message.body.size`. */
  body: Buffer;
  /** The message properties; the trace context is added to a copy of their headers. */
  properties: BasicProperties | undefined;
  /** The broker, for `server.address` and `server.port`, when known. */
  server?: ServerInfo | undefined;
}

/** A started PRODUCER span: send `properties` (they carry the trace context), then call `end`. */
export interface PublishSpan {
  /** The message properties with the trace context added to a copy of the headers. */
  readonly properties: BasicProperties;
  /** Ends the span: successful without an error, failed with one. */
  end(error?: unknown): void;
}

/** The attributes a publish ('send') and a delivery ('process') span share. */
function messageAttributes(
  type: 'send' | 'process',
  exchange: string,
  routingKey: string,
  body: Uint8Array,
  p: BasicProperties | undefined,
  server: ServerInfo | undefined,
): OtelAttributes {
  const attributes: OtelAttributes = {
    'messaging.system': 'rabbitmq',
    'messaging.operation.type': type,
    'messaging.operation.name': type === 'send' ? 'publish' : 'process',
    'messaging.destination.name': exchange,
    'messaging.message.body.size': body.length,
  };
  if (routingKey !== '') attributes['messaging.rabbitmq.destination.routing_key'] = routingKey;
  if (p?.messageId !== undefined) attributes['messaging.message.id'] = p.messageId;
  if (p?.correlationId !== undefined) attributes['messaging.message.conversation_id'] = p.correlationId;
  if (server !== undefined) {
    attributes['server.address'] = server.host;
    attributes['server.port'] = server.port;
  }
  return attributes;
}

/**
 * Starts a PRODUCER span for a publish (`publish <exchange>`) and returns the properties to send,
 * with the trace context in their headers; `undefined` when tracing is not active, in which case
 * the message is sent as it is. The caller's properties are never modified.
 *
 * @example
 * ```ts
 * const span = startPublishSpan({ exchange, routingKey, body, properties });
 * try { await ch.basicPublish(exchange, routingKey, body, span?.properties ?? properties); span?.end(); }
 * catch (err) { span?.end(err); throw err; }
 * ```
 */
export function startPublishSpan(info: PublishSpanInfo): PublishSpan | undefined {
  const otel = state === 'ready' ? api : ensure();
  if (otel === undefined || tracer === undefined) return undefined;
  const p = info.properties;
  const attributes = messageAttributes('send', info.exchange, info.routingKey, info.body, p, info.server);
  let span: OtelSpan;
  let headers: FieldTable;
  try {
    const parent = otel.context.active();
    span = tracer.startSpan(
      info.exchange === '' ? 'publish' : `publish ${info.exchange}`,
      { kind: otel.SpanKind.PRODUCER, attributes },
      parent,
    );
    // The API without an SDK, and no trace to continue: nothing to record or propagate, so the message
    // goes out exactly as given (no copied properties, no added headers table).
    if (!span.isRecording() && span.spanContext().traceId === INVALID_TRACE_ID) return undefined;
    headers = { ...p?.headers };
    inject(otel, otel.trace.setSpan(parent, span), span, headers);
  } catch (err) {
    // The application's SDK (tracer, propagator) threw: the message goes out untraced.
    reportUserCodeError(SDK, err);
    return undefined;
  }
  let ended = false;
  return {
    properties: { ...p, headers },
    end(error?: unknown) {
      if (ended) return;
      ended = true;
      finish(otel, span, error);
    },
  };
}

/**
 * Publishes through `publish` inside a PRODUCER span: the span ends when the returned promise
 * settles. For low-level code; the robust publisher does this for every message.
 *
 * @example
 * ```ts
 * await tracePublish({ exchange: '', routingKey: 'jobs', body, properties },
 *   (props) => ch.basicPublish('', 'jobs', body, props));
 * ```
 */
export function tracePublish<T>(
  info: PublishSpanInfo,
  publish: (properties: BasicProperties | undefined) => Promise<T>,
): Promise<T> {
  const span = startPublishSpan(info);
  if (span === undefined) return publish(info.properties);
  let sent: Promise<T>;
  try {
    sent = publish(span.properties);
  } catch (err) {
    span.end(err);
    throw err;
  }
  return sent.then(
    (value) => {
      span.end();
      return value;
    },
    (err: unknown) => {
      span.end(err);
      throw err;
    },
  );
}

// ------------------------------------------------------------------------------------------ consumer

/**
 * Runs `handler` for `msg` inside a CONSUMER span (`process <queue>`) whose parent is the context
 * the message's headers carry, so that spans the handler starts join the producer's trace. The span
 * ends when the handler returns or its promise settles, failed if it threw. Without tracing this is
 * `handler()`.
 *
 * @example
 * ```ts
 * await ch.basicConsume('jobs', {}, (msg) => traceProcess(msg, 'jobs', async () => { await work(msg); msg.ack(); }));
 * ```
 */
export function traceProcess<R>(msg: Message, queue: string, handler: () => R, server?: ServerInfo): R {
  const otel = state === 'ready' ? api : ensure();
  if (otel === undefined || tracer === undefined) return handler();
  const p = msg.properties;
  const attributes = messageAttributes('process', msg.exchange, msg.routingKey, msg.body, p, server);
  attributes['messaging.rabbitmq.message.delivery_tag'] = msg.deliveryTag;
  if (queue !== '') attributes['messaging.destination.subscription.name'] = queue;
  if (msg.consumerTag !== undefined) attributes['messaging.consumer.id'] = msg.consumerTag;
  let span: OtelSpan;
  let spanContext: OtelContext | undefined;
  try {
    const parent = extract(otel, p.headers);
    span = tracer.startSpan(
      queue === '' ? 'process' : `process ${queue}`,
      { kind: otel.SpanKind.CONSUMER, attributes },
      parent,
    );
    // Nothing recorded and no trace to continue (the API without an SDK): just run the handler.
    if (span.isRecording() || span.spanContext().traceId !== INVALID_TRACE_ID) {
      spanContext = otel.trace.setSpan(parent, span);
    }
  } catch (err) {
    // The application's SDK threw: the message is handled untraced.
    reportUserCodeError(SDK, err);
    return handler();
  }
  if (spanContext === undefined) return handler();
  const active = spanContext;
  let result: R;
  let entered = false;
  try {
    result = otel.context.with(active, () => {
      entered = true;
      return handler();
    });
  } catch (err) {
    if (!entered) {
      // The context manager failed before the handler ran: run it without the span's context.
      reportUserCodeError(SDK, err);
      finish(otel, span);
      return handler();
    }
    finish(otel, span, err);
    throw err;
  }
  if (result !== null && typeof result === 'object' && typeof (result as { then?: unknown }).then === 'function') {
    (result as unknown as PromiseLike<unknown>).then(
      () => finish(otel, span),
      (err: unknown) => finish(otel, span, err),
    );
  } else {
    finish(otel, span);
  }
  return result;
}

/** @internal The `@opentelemetry/api` module when it is loaded (loading it if not tried yet), for metrics. */
export function loadedOtelApi(): OpenTelemetryApi | undefined {
  return state === 'ready' ? api : (ensure() ?? api);
}

/** @internal Forgets what was loaded, for tests. */
export function resetTracingForTests(): void {
  state = 'unloaded';
  api = undefined;
  tracer = undefined;
  loading = undefined;
}
