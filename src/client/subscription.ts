/**
 * The robust consumer: a subscription that survives reconnects.
 *
 * Each subscription has its own channel per connection (so its QoS is its own and a failure stays
 * its own). A handler that resolves acks its message, one that throws nacks it, as soon as it
 * finishes: the channel coalesces in-order acks into one `multiple=true` ack written with its next
 * flush (same tick, never behind a timer), so that a cut requeues as little as possible. Messages are
 * bound to the channel that delivered them: when it dies, their acks are dropped (the broker requeues
 * them) and never reach the channel that replaces it.
 *
 * The next handler starts only once the acks of handlers that finished before it are written: its
 * synchronous work may hold the event loop (past the heartbeat), and those acks must not wait for it.
 *
 * A message whose handler throws is retried through a retry queue with a delay, a bounded number of
 * times, then dead-lettered or dropped (see `retry.ts`): never a hot loop.
 *
 * @module
 */
import { reportUserCodeError, SafeEmitter } from '../user-code.js';
import { inspectCustom } from '../redact.js';
import type { Channel } from '../channel/channel.js';
import type { Consumer } from '../channel/consumer.js';
import type { Message } from '../channel/message.js';
import { type AMQPError, ClosedError, ConsumerCancelled, InvalidArgumentError } from '../errors.js';
import type { FieldTable } from '../protocol/field-values.js';
import { traceProcess } from '../tracing/index.js';
import { ChannelLease } from './channel-lease.js';
import { Fifo } from './fifo.js';
import type { ClientHost, Session } from './host.js';
import { Waiter } from './waiting.js';
import {
  type RetryOptions,
  type RetryPolicy,
  type RetryTransport,
  retriesSoFar,
  retryPolicy,
  retryProperties,
  retryQueueOptions,
} from './retry.js';
import type { ClientMetrics } from '../tracing/metrics.js';
import { type Logger, log } from './logger.js';
import { StreamCursor, streamOffsetOf } from './stream-cursor.js';
import { asAMQPError } from './topology.js';

function describeThrown(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** The consumer arguments of a subscription: `arguments` with `priority` and `streamOffset` added. */
function consumeArguments(options: SubscribeOptions): FieldTable {
  const args: FieldTable = { ...(options.arguments ?? {}) };
  if (options.priority !== undefined) {
    const { priority } = options;
    if (!Number.isInteger(priority) || priority < -2147483648 || priority > 2147483647) {
      throw new InvalidArgumentError(`priority must be a whole number (a 32-bit integer), got ${String(priority)}`);
    }
    if (args['x-priority'] !== undefined && args['x-priority'] !== priority) {
      throw new InvalidArgumentError("priority contradicts arguments['x-priority']; give one of them");
    }
    args['x-priority'] = priority;
  }
  if (options.streamOffset !== undefined) {
    const offset = options.streamOffset;
    const valid =
      offset === 'first' ||
      offset === 'last' ||
      offset === 'next' ||
      (typeof offset === 'number' && Number.isSafeInteger(offset) && offset >= 0) ||
      (offset instanceof Date && !Number.isNaN(offset.getTime()));
    if (!valid) {
      throw new InvalidArgumentError(
        `streamOffset must be 'first', 'last', 'next', an offset ≥ 0 or a Date, got ${String(offset)}`,
      );
    }
    if (args['x-stream-offset'] !== undefined) {
      throw new InvalidArgumentError("give streamOffset or arguments['x-stream-offset'], not both");
    }
    args['x-stream-offset'] = offset;
  }
  return args;
}

/**
 * Options of `client.consume()`.
 *
 * @example
 * ```ts
 * client.consume('jobs', handle, { concurrency: 8, prefetch: 32, retry: { attempts: 3, delay: 5000 } });
 * ```
 */
export interface SubscribeOptions {
  /** Handlers running at once. Default 1. */
  concurrency?: number;
  /**
   * Unacknowledged messages the broker may send ahead (basic.qos). Default `max(10, 2 × concurrency)`:
   * enough that handlers never wait for the network, and bounded so that memory stays bounded.
   */
  prefetch?: number;
  /**
   * Give a message whose handler throws another chance (default `true`): through the retry queue
   * with a delay (see `retry`), or, with `retry: false`, by requeueing it at once (a hot loop for a
   * message that always fails, unless the queue bounds it, e.g. a quorum queue's `x-delivery-limit`).
   * `false` nacks it without requeue at once: dead-lettered if the queue has a dead-letter exchange,
   * dropped otherwise.
   */
  requeueOnError?: boolean;
  /**
   * How a failed message is retried (when `requeueOnError` is on). Default `{ attempts: 5, delay:
   * 1 s doubling to 30 s }`: the message is published (confirmed) to the retry queue `<queue>.retry`
   * with the delay as its `expiration`, then acked; the broker dead-letters it back to the queue when
   * the delay is over and counts the round trips in its `x-death` header. After the last attempt it is
   * nacked without requeue (dead-lettered or dropped) and `'retriesExhausted'` is emitted. Body and
   * properties are kept (its own `expiration` excepted); headers gain only what the broker adds
   * (`x-death`, `x-first-death-*`). `false`: no retry queue (see `requeueOnError`).
   *
   * The retry queue is declared durable, with `x-dead-letter-exchange: ''` and
   * `x-dead-letter-routing-key: <queue>`, on the first failure, and declared again after reconnects;
   * it is not deleted by the client. A server-named queue (`amq.gen-…`) gets no retry queue: a
   * failed message is requeued after the delay, without an attempt limit.
   */
  retry?: RetryOptions | false;
  /** Ask to be the queue's only consumer. */
  exclusive?: boolean;
  /**
   * The broker considers each message handled as soon as it sends it (at-most-once): no acks, no
   * prefetch limit (the broker sends as fast as the connection takes), a failed handler's message
   * is gone unless `retry` copies it, and messages buffered when the subscription stops or its
   * connection drops are lost. Default `false`. Not for streams (they need acks).
   */
  noAck?: boolean;
  /**
   * Consumer priority (`x-priority`): while consumers of higher priority can take messages, those of
   * lower priority get none. Default: the broker's (0). Streams refuse it (406).
   */
  priority?: number;
  /**
   * For a stream queue: where to start reading (`x-stream-offset`): `'first'`, `'last'`, `'next'`,
   * an offset, or a `Date`. After a reconnect the subscription resumes from the first offset it had
   * not finished handling, and skips redeliveries of offsets it has handled (see `stream-cursor.ts`).
   * Also enabled by an `x-stream-offset` entry in `arguments`.
   */
  streamOffset?: 'first' | 'last' | 'next' | number | Date;
  /** Consumer arguments, e.g. `{ 'x-priority': 10 }`. */
  arguments?: FieldTable;
  /**
   * When the broker cancels the consumer (its queue was deleted), keep trying to subscribe again
   * (with the client's backoff) until the queue is back. Default `false`: delivery stops for good.
   */
  resubscribeOnCancel?: boolean;
}

/**
 * Events of a subscription.
 *
 * @example
 * ```ts
 * sub.on('handlerError', (err, msg) => log.error({ err, id: msg.properties.messageId }));
 * sub.on('cancel', (err) => log.warn(err.message));
 * ```
 */
export interface SubscriptionEvents {
  /** Subscribed (again) on a new channel. */
  subscribe: [info: { queue: string; consumerTag: string }];
  /**
   * The first delivery reached this consumer on its current channel (emitted before its handler
   * runs). On a single-active-consumer queue this is the sign that this consumer has become the
   * active one: RabbitMQ tells a 0-9-1 consumer nothing else (consume-ok comes for waiting consumers
   * too). Emitted again after each re-subscribe; a consumer that is active on an empty queue learns
   * it only when a message comes.
   */
  active: [info: { queue: string; consumerTag: string }];
  /** The broker cancelled the consumer (queue deleted). */
  cancel: [error: ConsumerCancelled];
  /**
   * A handler threw or rejected; its message is retried (see `retry`) or nacked. Also a message whose
   * properties could not be decoded (`error` is its `msg.decodeError`): rejected without requeue,
   * the handler not called.
   */
  handlerError: [error: unknown, message: Message];
  /**
   * A message failed its last attempt (`attempts` handler calls): it was nacked without requeue,
   * so dead-lettered if its queue has a dead-letter exchange, dropped otherwise.
   */
  retriesExhausted: [error: unknown, message: Message, attempts: number];
  /**
   * Subscribing failed (e.g. 404 no such queue; the subscription retries with backoff), or a failed
   * message could not be sent to its retry queue (it is then requeued after the delay). Emitted only
   * when listened to.
   */
  error: [error: AMQPError];
}

/**
 * Handles one message: resolve to ack it, throw (or reject) to have it retried later (see
 * `SubscribeOptions.retry`) and, after the last attempt, dead-lettered or dropped.
 *
 * @example
 * ```ts
 * const handler: SubscriptionHandler = async (msg) => { await save(msg.json()); };
 * ```
 */
export type SubscriptionHandler = (message: Message) => void | Promise<void>;

/** @internal The handler as the subscription calls it: with a test of whether its channel is still the live one. */
export type InternalHandler = (message: Message, isCurrent: () => boolean) => void | Promise<void>;

/** @internal Thrown by an internal handler to requeue a message without reporting a handler error. */
export const REQUEUE: unique symbol = Symbol('warren.requeue');

/** @internal */
export interface InternalSubscribeOptions extends SubscribeOptions {
  /** Called when the subscription starts to stop (cancel, close, broker cancel without resubscribe). */
  onStopping?: () => void;
  /** How failed messages reach their retry queue; without it, `retry` is off. */
  retryVia?: RetryTransport;
  /** The client's `logger`: gets what no listener hears. */
  logger?: Logger;
}

/** One channel of a subscription, on one connection. */
class HeldChannel {
  readonly channel: Channel;
  consumer: Consumer | undefined;
  alive = true;
  /** Deliveries whose handler has not started (concurrency limit); at most `prefetch`. */
  readonly buffer = new Fifo<Message>();
  /** The next handler waits for the flush of acks that were pending when it was due to start. */
  flushAwaited = false;
  /** A delivery has come on this channel ('active' was emitted). */
  delivering = false;
  readonly isCurrent = (): boolean => this.alive;
  constructor(channel: Channel) {
    this.channel = channel;
  }
}

/**
 * A subscription to a queue that survives reconnects. Get one with `client.consume()`.
 *
 * @example
 * ```ts
 * const sub = client.consume('jobs', async (msg) => {
 *   await processJob(msg.json());          // resolve → ack, throw → nack
 * }, { concurrency: 4 });
 * await sub.ready();                         // subscribed
 * const { requeued } = await sub.cancel();   // stop, wait for running handlers
 * ```
 */
export class Subscription extends SafeEmitter<SubscriptionEvents> {
  /** The queue, as named by the application. */
  readonly queue: string;
  /** Resolves once the subscription has ended for good: `undefined` after `cancel()`/close, else why. */
  readonly closed: Promise<AMQPError | undefined>;
  private resolveClosed!: (error: AMQPError | undefined) => void;
  private readonly host: ClientHost;
  private readonly handler: InternalHandler;
  private readonly concurrency: number;
  private prefetch: number;
  private readonly noAck: boolean;
  private readonly consumeArguments: FieldTable;
  private readonly stream: StreamCursor | undefined;
  private prefetchChange: Promise<void> = Promise.resolve();
  private readonly requeueOnError: boolean;
  private readonly retry: RetryPolicy | undefined;
  /** Retry queues declared by this subscription (the client replays them after a reconnect). */
  private readonly retryQueues = new Set<string>();
  /** Wakes messages waiting to be requeued (their retry queue unusable) when the subscription stops. */
  private readonly retryWaits = new Set<() => void>();
  private readonly options: InternalSubscribeOptions;
  private state: 'active' | 'stopping' | 'ended' = 'active';
  private held: HeldChannel | undefined;
  /** `failures`: subscribe attempts refused and channels lost in a row, since the last subscribe. */
  private readonly lease = new ChannelLease({
    wanted: () => this.state === 'active',
    setup: (channel, _session, current) => this.subscribe(channel, current),
    openFailed: (session, error) => this.subscribeFailed(session, error),
  });
  private running = 0;
  private pumping = false;
  private requeued = 0;
  private readyWaiters: Waiter<void>[] = [];
  private idleWaiters: (() => void)[] = [];
  private stopping: Promise<{ requeued: number }> | undefined;
  private endError: AMQPError | undefined;
  private warned = false;

  /** @internal Use `client.consume()`. */
  constructor(host: ClientHost, queue: string, handler: InternalHandler, options: InternalSubscribeOptions = {}) {
    super();
    if (typeof handler !== 'function') throw new InvalidArgumentError('consume() needs a handler function');
    const concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new InvalidArgumentError(`concurrency must be a whole number of at least 1, got ${concurrency}`);
    }
    const prefetch = options.prefetch ?? Math.min(65535, Math.max(10, 2 * concurrency));
    if (!Number.isInteger(prefetch) || prefetch < 1 || prefetch > 65535) {
      throw new InvalidArgumentError(`prefetch must be a whole number from 1 to 65535, got ${prefetch}`);
    }
    this.host = host;
    this.queue = queue;
    this.handler = handler;
    this.concurrency = concurrency;
    this.prefetch = prefetch;
    this.noAck = options.noAck ?? false;
    this.consumeArguments = consumeArguments(options);
    const offset = this.consumeArguments['x-stream-offset'];
    this.stream = offset === undefined ? undefined : new StreamCursor(offset);
    if (this.stream !== undefined && this.noAck) {
      throw new InvalidArgumentError('a stream consumer needs acks: noAck cannot be used with streamOffset');
    }
    this.requeueOnError = options.requeueOnError ?? true;
    const retry = retryPolicy(options.retry);
    this.retry = this.requeueOnError && options.retryVia !== undefined ? retry : undefined;
    this.options = options;
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    host.register(this);
    host.consumerStarted(queue);
    if (host.session !== undefined) this.attach(host.session);
  }

  /** What `console.log(subscription)` shows: its queue and state (its connection holds credentials). */
  [inspectCustom](): string {
    return `Subscription { '${this.queue}', ${this.state}, ${this.running} running }`;
  }

  /** What `JSON.stringify(subscription)` gives. */
  toJSON(): { type: 'Subscription'; queue: string; state: string; running: number } {
    return { type: 'Subscription', queue: this.queue, state: this.state, running: this.running };
  }

  /** The broker's tag for the current consumer, while subscribed. */
  get consumerTag(): string | undefined {
    return this.held?.alive ? this.held.consumer?.consumerTag : undefined;
  }

  /** True while subscribed on a live channel. */
  get isActive(): boolean {
    return this.state === 'active' && this.held?.alive === true && this.held.consumer?.isActive === true;
  }

  /** Handlers running now. */
  get runningCount(): number {
    return this.running;
  }

  /** The prefetch (basic.qos) this subscription asks for; see `setPrefetch`. */
  get prefetchCount(): number {
    return this.prefetch;
  }

  /** Deliveries waiting for a handler slot. */
  get bufferedCount(): number {
    const held = this.held;
    return held?.alive ? held.buffer.length : 0;
  }

  /**
   * Changes the prefetch at runtime, and remembers it for the channels of later connections.
   * Resolves once the broker applies it. RabbitMQ applies a consumer prefetch only to consumers
   * started after basic.qos, so on the live channel this starts a new consumer with the new
   * prefetch, then cancels the old one; messages in hand stay in hand and are acked as usual. On a
   * single-active-consumer queue that hands the active role to the next consumer in line: give such
   * a subscription its prefetch when it subscribes instead.
   *
   * @example
   * ```ts
   * await sub.setPrefetch(100); // the backlog is large: let the broker send more ahead
   * ```
   * @throws `InvalidArgumentError` unless `prefetch` is a whole number from 1 to 65535.
   */
  setPrefetch(prefetch: number): Promise<void> {
    if (!Number.isInteger(prefetch) || prefetch < 1 || prefetch > 65535) {
      return Promise.reject(
        new InvalidArgumentError(`prefetch must be a whole number from 1 to 65535, got ${prefetch}`),
      );
    }
    this.prefetch = prefetch;
    const change = this.prefetchChange.then(() => this.applyPrefetch());
    this.prefetchChange = change.catch(() => {});
    return change;
  }

  private async applyPrefetch(): Promise<void> {
    const held = this.held;
    const old = held?.consumer;
    // Not subscribed now: the next subscribe applies it.
    if (held === undefined || old === undefined || !held.alive || !old.isActive || this.state !== 'active') return;
    const prefetch = this.prefetch;
    try {
      await held.channel.basicQos(prefetch);
      const consumer = await this.startConsumer(held);
      held.consumer = consumer;
      if (old.isActive) await old.cancel();
    } catch (err) {
      // The channel died meanwhile: the next subscribe uses the new prefetch.
      if (held.alive) throw asAMQPError(err);
    }
  }

  private async startConsumer(held: HeldChannel): Promise<Consumer> {
    const args = this.stream === undefined ? this.consumeArguments : { ...this.consumeArguments };
    if (this.stream !== undefined) args['x-stream-offset'] = this.stream.startOffset();
    const consumer = await held.channel.basicConsume(
      this.host.resolveQueue(this.queue),
      { exclusive: this.options.exclusive ?? false, noAck: this.noAck, arguments: args },
      (msg) => this.onDelivery(held, msg),
    );
    consumer.on('cancel', ({ serverCancelled }) => {
      if (serverCancelled && (held.consumer === consumer || held.consumer === undefined)) this.onServerCancel(held);
    });
    return consumer;
  }

  /**
   * Resolves once subscribed. Rejects when a subscribe attempt fails (e.g. 404, no such queue: the
   * subscription keeps retrying, call `ready()` again to wait for the next attempt), when the
   * subscription has ended, or when `signal` fires.
   *
   * @example
   * ```ts
   * await sub.ready(AbortSignal.timeout(5000));
   * ```
   */
  ready(signal?: AbortSignal): Promise<void> {
    if (this.state !== 'active') return Promise.reject(this.endedError());
    if (this.isActive) return Promise.resolve();
    const waiter = new Waiter<void>(signal, 'waiting for the subscription was aborted');
    if (!waiter.settled) {
      this.readyWaiters.push(waiter);
      void waiter.promise.then(undefined, () => this.dropReadyWaiter(waiter));
    }
    return waiter.promise;
  }

  private dropReadyWaiter(waiter: Waiter<void>): void {
    const i = this.readyWaiters.indexOf(waiter);
    if (i >= 0) this.readyWaiters.splice(i, 1);
  }

  /**
   * Stops delivery (basic.cancel), returns prefetched messages whose handler had not started to the
   * queue, waits for running handlers (until `signal` fires) and their acks, and closes the channel.
   * Resolves with how many messages were returned to the queue. Idempotent.
   *
   * @example
   * ```ts
   * const { requeued } = await sub.cancel();
   * ```
   */
  cancel(options: { signal?: AbortSignal } = {}): Promise<{ requeued: number }> {
    this.stopping ??= this.stop(undefined, options.signal);
    return this.stopping;
  }

  private async stop(error: AMQPError | undefined, signal: AbortSignal | undefined): Promise<{ requeued: number }> {
    if (this.state === 'ended') return { requeued: this.requeued };
    this.state = 'stopping';
    this.lease.cancelRetry();
    const held = this.held;
    // basic.cancel goes out first, so that messages handed back below are not delivered to us again.
    const cancelling = held?.alive && held.consumer?.isActive ? held.consumer.cancel() : undefined;
    this.options.onStopping?.();
    if (held?.alive) {
      try {
        await cancelling;
      } catch {
        // The channel died meanwhile: the broker requeues what it had sent.
      }
      // Only after cancel-ok: a message requeued earlier would be delivered to us again at once.
      if (held.alive) this.returnBuffered(held);
    }
    this.wakeRetryWaits();
    await this.idle(signal);
    if (held?.alive) {
      try {
        await held.channel.close();
      } catch {
        // Closed either way.
      }
    }
    this.end(error);
    return { requeued: this.requeued };
  }

  /** Prefetched messages whose handler has not started go back to the queue. */
  private returnBuffered(held: HeldChannel): void {
    for (const msg of held.buffer.takeAll()) {
      if (msg.nack({ requeue: true })) this.requeued++;
    }
    // A stream does not take messages back: they are delivered again from the resume point.
    this.stream?.channelLost();
  }

  private idle(signal: AbortSignal | undefined): Promise<void> {
    if (this.running === 0 || signal?.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        signal?.removeEventListener('abort', done);
        const i = this.idleWaiters.indexOf(done);
        if (i >= 0) this.idleWaiters.splice(i, 1);
        resolve();
      };
      signal?.addEventListener('abort', done, { once: true });
      this.idleWaiters.push(done);
    });
  }

  private end(error: AMQPError | undefined): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    this.wakeRetryWaits();
    this.endError = error;
    this.lease.supersede();
    const held = this.held;
    this.held = undefined;
    if (held !== undefined) {
      held.alive = false;
      if (held.channel.isOpen) void held.channel.close();
    }
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.reject(this.endedError());
    this.host.unregister(this);
    this.host.consumerStopped(this.queue);
    this.resolveClosed(error);
  }

  private endedError(): AMQPError {
    if (this.endError !== undefined) {
      return new ClosedError(`the subscription to '${this.queue}' has ended: ${this.endError.message}`, {
        cause: this.endError,
      });
    }
    return this.host.isOpen
      ? new ClosedError(`the subscription to '${this.queue}' was cancelled`)
      : this.host.closedError();
  }

  // ------------------------------------------------------------------ deliveries

  private onDelivery(held: HeldChannel, msg: Message): void {
    if (!held.alive) return;
    if (msg.decodeError !== undefined) {
      // No handler can act on a message it cannot read, and requeueing it would loop: dead-letter it.
      msg.reject({ requeue: false });
      this.reportHandlerError(msg.decodeError, msg);
      return;
    }
    if (this.host.metrics !== undefined) this.host.metrics.delivered(this.queue);
    if (!held.delivering) {
      held.delivering = true;
      if (this.listenerCount('active') > 0 && held.consumer !== undefined) {
        this.emit('active', { queue: this.queue, consumerTag: held.consumer.consumerTag });
      }
    }
    if (this.stream !== undefined) {
      const offset = streamOffsetOf(msg);
      // Handled already (or being handled) before a reconnect or a consumer restart: skip it.
      if (offset !== undefined && !this.stream.delivered(offset)) {
        msg.ack();
        return;
      }
    }
    // While stopping, deliveries (sent before the broker saw basic.cancel) only wait to be returned.
    if (
      this.state === 'active' &&
      this.running < this.concurrency &&
      held.buffer.length === 0 &&
      !this.mustAwaitFlush(held)
    ) {
      this.run(held, msg);
    } else held.buffer.push(msg);
  }

  /**
   * True when acks (or other frames) wait for the end-of-turn flush: the next handler then starts
   * right after that flush, not now, since its synchronous work (CPU-bound, past the heartbeat)
   * would hold them back. Handlers that finish in one turn still share one coalesced ack. With no
   * handler running (concurrency 1), nothing could join the write: it is done at once instead.
   */
  private mustAwaitFlush(held: HeldChannel): boolean {
    if (!held.channel.hasPendingWrites) return false;
    if (this.running === 0) {
      // No other handler can finish in this turn and share the write: write now, start now.
      held.channel.flushNow();
      return false;
    }
    if (!held.flushAwaited) {
      held.flushAwaited = true;
      held.channel.afterNextFlush(() => {
        held.flushAwaited = false;
        if (this.held === held) this.pumpBuffer();
      });
    }
    // False when that flush happened at once (a large backlog is written without waiting).
    return held.flushAwaited;
  }

  private run(held: HeldChannel, msg: Message): void {
    const metrics = this.host.metrics;
    if (metrics === undefined) this.runWith(held, msg, this.handler);
    else this.runMeasured(held, msg, metrics);
  }

  private runWith(held: HeldChannel, msg: Message, handler: InternalHandler): void {
    this.running++;
    if (this.stream !== undefined) {
      const offset = streamOffsetOf(msg);
      if (offset !== undefined) this.stream.running(offset);
    }
    let result: void | Promise<void>;
    try {
      // A CONSUMER span around the handler (when tracing is on), child of the producer's span.
      result = traceProcess(msg, this.queue, () => handler(msg, held.isCurrent));
    } catch (err) {
      this.handled(held, msg, err, true);
      return;
    }
    if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
      (result as Promise<void>).then(
        () => this.handled(held, msg, undefined, false),
        (err: unknown) => this.handled(held, msg, err, true),
      );
    } else {
      this.handled(held, msg, undefined, false);
    }
  }

  /** `run` with the handler's time and outcome recorded (only with a meter provider). */
  private runMeasured(held: HeldChannel, msg: Message, metrics: ClientMetrics): void {
    const started = performance.now();
    const done = (failed: boolean, error: unknown): void =>
      metrics.processed(this.queue, (performance.now() - started) / 1000, failed, error);
    const handler = this.handler;
    const measured: InternalHandler = (m, isCurrent) => {
      let result: void | Promise<void>;
      try {
        result = handler(m, isCurrent);
      } catch (err) {
        done(true, err);
        throw err;
      }
      if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
        return (result as Promise<void>).then(
          () => done(false, undefined),
          (err: unknown) => {
            done(true, err);
            throw err;
          },
        );
      }
      done(false, undefined);
      return result;
    };
    this.runWith(held, msg, measured);
  }

  /**
   * Settles a message whose handler has finished (unless the handler settled it itself). A message
   * of a channel that has died is settled as a no-op: its generation no longer matches.
   */
  private handled(held: HeldChannel, msg: Message, error: unknown, failed: boolean): void {
    if (this.stream !== undefined) {
      const offset = streamOffsetOf(msg);
      if (offset !== undefined) this.stream.handled(offset);
    }
    if (!failed) msg.ack();
    else if (error === REQUEUE) {
      if (msg.nack({ requeue: true })) this.requeued++;
    } else if (this.retry !== undefined) {
      const attempt = retriesSoFar(msg, this.retryQueueName(this.retry)) + 1;
      if (attempt < this.retry.attempts) {
        // The handler's slot stays taken until the message is settled: cancel() and close() wait for it.
        const retrying = this.sendToRetry(this.retry, held, msg, attempt);
        this.reportHandlerError(error, msg);
        void retrying.then(() => this.release());
        return;
      }
      msg.nack({ requeue: false });
      this.reportHandlerError(error, msg);
      if (this.listenerCount('retriesExhausted') > 0) this.emit('retriesExhausted', error, msg, attempt);
    } else {
      msg.nack({ requeue: this.requeueOnError });
      this.reportHandlerError(error, msg);
    }
    this.release();
  }

  /** A handler's slot is free again. */
  private release(): void {
    this.running--;
    this.pumpBuffer();
    if (this.running === 0 && this.idleWaiters.length > 0) {
      for (const w of [...this.idleWaiters]) w();
    }
  }

  private retryQueueName(policy: RetryPolicy): string {
    return policy.queueFor(this.host.resolveQueue(this.queue));
  }

  /**
   * Sends a failed message to its retry queue, confirmed, and only then acks the original, so
   * that nothing is lost.
   */
  private async sendToRetry(policy: RetryPolicy, held: HeldChannel, msg: Message, attempt: number): Promise<void> {
    // The channel is gone: the broker requeues the message by itself, a copy would be a duplicate.
    if (!held.alive) return;
    const queue = this.host.resolveQueue(this.queue);
    const retryQueue = policy.queueFor(queue);
    let delay: number;
    try {
      delay = policy.delayFor(attempt);
    } catch (err) {
      this.reportRetryFailure(err);
      delay = 1000;
    }
    const via = this.options.retryVia;
    if (via === undefined || queue.startsWith('amq.')) {
      await this.requeueAfter(msg, delay);
      return;
    }
    try {
      if (!this.retryQueues.has(retryQueue)) {
        await via.declareQueue(retryQueue, retryQueueOptions(queue));
        this.retryQueues.add(retryQueue);
      }
      await via.publish(retryQueue, msg.body, retryProperties(msg, delay));
    } catch (err) {
      // Declared again on the next failure: it may have been deleted.
      this.retryQueues.delete(retryQueue);
      this.reportRetryFailure(err);
      await this.requeueAfter(msg, delay);
      return;
    }
    msg.ack();
  }

  /** Without a usable retry queue: the message waits in hand for the delay (or the stop), then goes back. */
  private requeueAfter(msg: Message, delay: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.retryWaits.delete(wake);
        msg.nack({ requeue: true });
        resolve();
      };
      const timer = setTimeout(wake, this.state === 'active' ? delay : 0);
      this.retryWaits.add(wake);
    });
  }

  private wakeRetryWaits(): void {
    for (const wake of [...this.retryWaits]) wake();
  }

  private reportRetryFailure(err: unknown): void {
    // While stopping, a publish refused because the client closes is no news: the message goes back.
    if (this.state !== 'active') return;
    const error = asAMQPError(err);
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else {
      log(
        this.options.logger,
        'warn',
        `could not send a failed message of '${this.queue}' to its retry queue, requeueing it after the delay: ${error.message}`,
        { queue: this.queue, err: error },
      );
    }
  }

  private reportHandlerError(error: unknown, msg: Message): void {
    if (this.listenerCount('handlerError') > 0) {
      this.emit('handlerError', error, msg);
    } else if (this.options.logger !== undefined) {
      log(
        this.options.logger,
        'error',
        `the message handler of the subscription to '${this.queue}' threw; the message was nacked or retried: ${describeThrown(error)}`,
        { queue: this.queue, err: error, messageId: msg.properties.messageId },
      );
    } else if (!this.warned) {
      this.warned = true;
      reportUserCodeError(
        `message handler of the subscription to '${this.queue}' (nobody listens for 'handlerError'; the message was nacked; further errors are not reported)`,
        error,
      );
    }
  }

  /** Starts buffered deliveries while below the concurrency limit. Not re-entrant: sync handlers loop here. */
  private pumpBuffer(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      let held = this.held;
      while (
        held?.alive &&
        this.state === 'active' &&
        this.running < this.concurrency &&
        held.buffer.length > 0 &&
        !this.mustAwaitFlush(held)
      ) {
        this.run(held, held.buffer.shift()!);
        held = this.held;
      }
    } finally {
      this.pumping = false;
    }
  }

  // ------------------------------------------------------------------ channel lifecycle

  /** @internal */
  attach(session: Session): void {
    if (this.state !== 'active') return;
    this.lease.attach(session);
  }

  /** @internal */
  detach(): void {
    this.lease.detach();
  }

  /** Subscribes on a new channel of the lease. */
  private async subscribe(channel: Channel, isCurrent: () => boolean): Promise<void> {
    const held = new HeldChannel(channel);
    try {
      channel.on('close', (err) => this.onChannelClose(held, err));
      if (!isCurrent() || this.state !== 'active') throw new ClosedError('superseded');
      this.held = held;
      const prefetch = this.prefetch;
      await channel.basicQos(prefetch);
      const consumer = await this.startConsumer(held);
      held.consumer = consumer;
      // setPrefetch() was called while subscribing: apply it to this consumer too.
      if (this.prefetch !== prefetch) void this.setPrefetch(this.prefetch).catch(() => {});
      if (!consumer.isActive) throw new ClosedError('the consumer stopped while subscribing');
    } catch (err) {
      // The lease closes the channel and, unless superseded or the connection is dead, calls subscribeFailed.
      held.alive = false;
      if (this.held === held) this.held = undefined;
      throw err;
    }
    this.lease.failures = 0;
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.resolve();
    if (this.listenerCount('subscribe') > 0) {
      this.emit('subscribe', { queue: this.queue, consumerTag: held.consumer!.consumerTag });
    }
  }

  /** The broker refused (no such queue, exclusive consumer elsewhere…): report and retry with backoff. */
  private subscribeFailed(session: Session, error: AMQPError): void {
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.reject(error);
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else
      log(this.options.logger, 'warn', `could not subscribe to '${this.queue}' (retrying): ${error.message}`, {
        queue: this.queue,
        err: error,
      });
    this.retryLater(session);
  }

  private retryLater(session: Session): void {
    this.lease.openIn(session, Math.max(10, this.host.backoff.delay(++this.lease.failures)));
  }

  private onChannelClose(held: HeldChannel, error: AMQPError | undefined): void {
    const wasSubscribed = held.alive && held.consumer !== undefined;
    held.alive = false;
    // Deliveries not yet handled are requeued by the broker; their handlers must not run.
    held.buffer.clear();
    this.stream?.channelLost();
    if (this.held === held) this.held = undefined;
    if (!wasSubscribed || this.state !== 'active') return;
    const session = this.lease.liveSession;
    // The broker closed just this channel (e.g. 406 after a bad ack): subscribe again on a new one.
    if (session !== undefined) {
      if (error !== undefined && this.listenerCount('error') > 0) this.emit('error', error);
      this.retryLater(session);
    }
  }

  private onServerCancel(held: HeldChannel): void {
    if (this.state !== 'active' || this.held !== held) return;
    const error = new ConsumerCancelled(this.host.resolveQueue(this.queue));
    if (this.listenerCount('cancel') > 0) this.emit('cancel', error);
    else if (this.options.logger !== undefined) {
      log(this.options.logger, 'warn', error.message, { queue: this.queue });
    } else if (!this.options.resubscribeOnCancel && this.options.onStopping === undefined) {
      process.emitWarning(`warren: ${error.message} (listen for 'cancel' on the subscription to handle this)`);
    }
    if (this.options.resubscribeOnCancel) {
      // Start afresh on a new channel once the queue is back; running handlers' acks are dropped
      // with this channel (the messages of a deleted queue are gone anyway).
      this.held = undefined;
      held.alive = false;
      void held.channel.close();
      const session = this.lease.session;
      if (session?.alive) this.retryLater(session);
      return;
    }
    this.stopping ??= this.stop(error, undefined);
  }

  /** @internal */
  drain(deadline: number): Promise<void> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), Math.max(0, deadline - Date.now()));
    return this.cancel({ signal: controller.signal }).then(() => clearTimeout(timer));
  }

  /** @internal */
  abort(error: AMQPError): void {
    this.options.onStopping?.();
    this.end(error instanceof ClosedError ? undefined : error);
  }

  /** `await using sub = client.consume(...)` cancels the subscription at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.cancel();
  }
}
