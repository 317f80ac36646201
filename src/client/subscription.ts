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
import { SafeEmitter } from '../user-code.js';
import { inspectCustom } from '../redact.js';
import type { Channel } from '../channel/channel.js';
import type { Consumer } from '../channel/consumer.js';
import type { Message } from '../channel/message.js';
import { type AMQPError, ClosedError, ConsumerCancelled, InvalidArgumentError } from '../errors.js';
import type { FieldTable } from '../protocol/field-values.js';
import { ChannelLease } from './channel-lease.js';
import type { ClientHost, Session } from './host.js';
import { StreamCursor, streamOffsetOf } from './stream-cursor.js';
import { HeldChannel } from './subscription-channel.js';
import { HandlerRuns } from './subscription-handler.js';
import {
  type InternalHandler,
  type InternalSubscribeOptions,
  prefetchError,
  type SubscriptionEvents,
  subscribeSettings,
} from './subscription-options.js';
import { SubscriptionReport } from './subscription-report.js';
import { asAMQPError } from './topology.js';
import { Waiter } from './waiting.js';

/**
 * A handler here may block the event loop, and the finished handlers' acks must not wait behind it
 * (see HeldChannel): each ack leaves with the next write, never held for a longer run.
 */
const NO_HELD_ACKS = { coalesceAcks: false } as const;

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
  private readonly concurrency: number;
  private prefetch: number;
  private readonly noAck: boolean;
  private readonly consumeArguments: FieldTable;
  private readonly stream: StreamCursor | undefined;
  private prefetchChange: Promise<void> = Promise.resolve();
  private readonly handlerRuns: HandlerRuns;
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
  private readonly report: SubscriptionReport;
  /** The flush a held channel's next handler waited for is done. */
  private readonly onFlushed = (held: HeldChannel): void => {
    if (this.held === held) this.pumpBuffer();
  };

  /** @internal Use `client.consume()`. */
  constructor(host: ClientHost, queue: string, handler: InternalHandler, options: InternalSubscribeOptions = {}) {
    super();
    if (typeof handler !== 'function') throw new InvalidArgumentError('consume() needs a handler function');
    const settings = subscribeSettings(options);
    this.host = host;
    this.queue = queue;
    this.concurrency = settings.concurrency;
    this.prefetch = settings.prefetch;
    this.noAck = settings.noAck;
    this.consumeArguments = settings.consumeArguments;
    const offset = this.consumeArguments['x-stream-offset'];
    this.stream = offset === undefined ? undefined : new StreamCursor(offset);
    this.options = options;
    this.report = new SubscriptionReport(this, queue, options.logger);
    this.handlerRuns = new HandlerRuns({
      host,
      queue,
      handler,
      requeueOnError: settings.requeueOnError,
      retry: settings.retry,
      retryVia: options.retryVia,
      stream: this.stream,
      report: this.report,
      active: () => this.state === 'active',
      requeued: () => this.requeued++,
      released: () => this.release(),
      exhausted: (error, msg, attempt) => {
        if (this.listenerCount('retriesExhausted') > 0) this.emit('retriesExhausted', error, msg, attempt);
      },
    });
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
    const invalid = prefetchError(prefetch);
    if (invalid !== undefined) return Promise.reject(invalid);
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
      await held.channel.basicQos(prefetch, NO_HELD_ACKS);
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
    this.handlerRuns.wakeRetries();
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
    this.handlerRuns.wakeRetries();
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
      this.report.handlerError(msg.decodeError, msg);
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
      !held.mustAwaitFlush(this.running)
    ) {
      this.run(held, msg);
    } else held.buffer.push(msg);
  }

  private run(held: HeldChannel, msg: Message): void {
    this.running++;
    this.handlerRuns.run(held, msg);
  }

  /** A handler's slot is free again. */
  private release(): void {
    this.running--;
    this.pumpBuffer();
    if (this.running === 0 && this.idleWaiters.length > 0) {
      for (const w of [...this.idleWaiters]) w();
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
        !held.mustAwaitFlush(this.running)
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
    const held = new HeldChannel(channel, this.onFlushed);
    try {
      channel.on('close', (err) => this.onChannelClose(held, err));
      if (!isCurrent() || this.state !== 'active') throw new ClosedError('superseded');
      this.held = held;
      const prefetch = this.prefetch;
      await channel.basicQos(prefetch, NO_HELD_ACKS);
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
    this.report.subscribeFailed(error);
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
    this.report.cancelled(error, {
      handled: this.options.resubscribeOnCancel === true || this.options.onStopping !== undefined,
    });
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
