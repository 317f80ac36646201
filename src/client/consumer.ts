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
 * @module
 */
import { EventEmitter } from 'node:events';
import type { Channel } from '../channel/channel.js';
import type { Consumer } from '../channel/consumer.js';
import type { Message } from '../channel/message.js';
import { type AMQPError, ClosedError, ConsumerCancelled, InvalidArgumentError } from '../errors.js';
import type { FieldTable } from '../protocol/primitives.js';
import { Waiter } from './backoff.js';
import { traceProcess } from '../tracing/index.js';
import type { ClientHost, Session } from './host.js';
import { asAMQPError } from './topology.js';

/**
 * Options of `client.consume()`.
 *
 * @example
 * ```ts
 * client.consume('jobs', handle, { concurrency: 8, prefetch: 32, requeueOnError: false });
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
  /** Put a message back in the queue when its handler throws (default `true`); `false` dead-letters or drops it. */
  requeueOnError?: boolean;
  /** Ask to be the queue's only consumer. */
  exclusive?: boolean;
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
  /** The broker cancelled the consumer (queue deleted). */
  cancel: [error: ConsumerCancelled];
  /**
   * A handler threw or rejected; its message was nacked. Also a message whose properties could not
   * be decoded (`error` is its `msg.decodeError`): rejected without requeue, the handler not called.
   */
  handlerError: [error: unknown, message: Message];
  /** Subscribing failed (e.g. 404 no such queue); the subscription retries with backoff. Emitted only when listened to. */
  error: [error: AMQPError];
}

/**
 * Handles one message: resolve to ack it, throw (or reject) to nack it.
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
}

/** One channel of a subscription, on one connection. */
class Lease {
  readonly channel: Channel;
  consumer: Consumer | undefined;
  alive = true;
  /** Deliveries whose handler has not started (concurrency limit); at most `prefetch`. */
  buffer: Message[] = [];
  bufHead = 0;
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
export class Subscription extends EventEmitter<SubscriptionEvents> {
  /** The queue, as named by the application. */
  readonly queue: string;
  /** Resolves once the subscription has ended for good: `undefined` after `cancel()`/close, else why. */
  readonly closed: Promise<AMQPError | undefined>;
  private resolveClosed!: (error: AMQPError | undefined) => void;
  private readonly host: ClientHost;
  private readonly handler: InternalHandler;
  private readonly concurrency: number;
  private readonly prefetch: number;
  private readonly requeueOnError: boolean;
  private readonly options: InternalSubscribeOptions;
  private state: 'active' | 'stopping' | 'ended' = 'active';
  private lease: Lease | undefined;
  private session: Session | undefined;
  private seq = 0;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
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
    this.requeueOnError = options.requeueOnError ?? true;
    this.options = options;
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    host.register(this);
    host.consumerStarted(queue);
    if (host.session !== undefined) this.attach(host.session);
  }

  /** The broker's tag for the current consumer, while subscribed. */
  get consumerTag(): string | undefined {
    return this.lease?.alive ? this.lease.consumer?.consumerTag : undefined;
  }

  /** True while subscribed on a live channel. */
  get isActive(): boolean {
    return this.state === 'active' && this.lease?.alive === true && this.lease.consumer?.isActive === true;
  }

  /** Handlers running now. */
  get runningCount(): number {
    return this.running;
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
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const lease = this.lease;
    // basic.cancel goes out first, so that messages handed back below are not delivered to us again.
    const cancelling = lease?.alive && lease.consumer?.isActive ? lease.consumer.cancel() : undefined;
    this.options.onStopping?.();
    if (lease?.alive) {
      try {
        await cancelling;
      } catch {
        // The channel died meanwhile: the broker requeues what it had sent.
      }
      // Only after cancel-ok: a message requeued earlier would be delivered to us again at once.
      if (lease.alive) this.returnBuffered(lease);
    }
    await this.idle(signal);
    if (lease?.alive) {
      try {
        await lease.channel.close();
      } catch {
        // Closed either way.
      }
    }
    this.end(error);
    return { requeued: this.requeued };
  }

  /** Prefetched messages whose handler has not started go back to the queue. */
  private returnBuffered(lease: Lease): void {
    const buffer = lease.buffer;
    const from = lease.bufHead;
    lease.buffer = [];
    lease.bufHead = 0;
    for (let i = from; i < buffer.length; i++) {
      buffer[i]!.nack({ requeue: true });
      this.requeued++;
    }
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
    this.endError = error;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.seq++;
    const lease = this.lease;
    this.lease = undefined;
    if (lease !== undefined) {
      lease.alive = false;
      if (lease.channel.isOpen) void lease.channel.close();
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

  private onDelivery(lease: Lease, msg: Message): void {
    if (!lease.alive) return;
    if (msg.decodeError !== undefined) {
      // No handler can act on a message it cannot read, and requeueing it would loop: dead-letter it.
      msg.reject({ requeue: false });
      this.reportHandlerError(msg.decodeError, msg);
      return;
    }
    // While stopping, deliveries (sent before the broker saw basic.cancel) only wait to be returned.
    if (this.state === 'active' && this.running < this.concurrency && lease.bufHead === lease.buffer.length) {
      this.run(lease, msg);
    } else lease.buffer.push(msg);
  }

  private run(lease: Lease, msg: Message): void {
    this.running++;
    let result: void | Promise<void>;
    try {
      // A CONSUMER span around the handler (when tracing is on), child of the producer's span.
      result = traceProcess(msg, this.queue, () => this.handler(msg, lease.isCurrent));
    } catch (err) {
      this.handled(msg, err, true);
      return;
    }
    if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
      (result as Promise<void>).then(
        () => this.handled(msg, undefined, false),
        (err: unknown) => this.handled(msg, err, true),
      );
    } else {
      this.handled(msg, undefined, false);
    }
  }

  /**
   * Settles a message whose handler has finished (unless the handler settled it itself). A message
   * of a channel that has died is settled as a no-op: its generation no longer matches.
   */
  private handled(msg: Message, error: unknown, failed: boolean): void {
    this.running--;
    if (!failed) msg.ack();
    else if (error === REQUEUE) {
      if (msg.nack({ requeue: true })) this.requeued++;
    } else {
      msg.nack({ requeue: this.requeueOnError });
      this.reportHandlerError(error, msg);
    }
    this.pumpBuffer();
    if (this.running === 0 && this.idleWaiters.length > 0) {
      for (const w of [...this.idleWaiters]) w();
    }
  }

  private reportHandlerError(error: unknown, msg: Message): void {
    if (this.listenerCount('handlerError') > 0) {
      this.emit('handlerError', error, msg);
    } else if (!this.warned) {
      this.warned = true;
      process.emitWarning(
        `warren: a handler of the subscription to '${this.queue}' threw and nobody listens for 'handlerError' ` +
          `(the message was nacked; further errors are not reported): ${String(error)}`,
      );
    }
  }

  /** Starts buffered deliveries while below the concurrency limit. Not re-entrant: sync handlers loop here. */
  private pumpBuffer(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      let lease = this.lease;
      while (
        lease?.alive &&
        this.state === 'active' &&
        this.running < this.concurrency &&
        lease.bufHead < lease.buffer.length
      ) {
        const msg = lease.buffer[lease.bufHead]!;
        lease.buffer[lease.bufHead++] = undefined as never;
        if (lease.bufHead === lease.buffer.length) {
          lease.buffer = [];
          lease.bufHead = 0;
        }
        this.run(lease, msg);
        lease = this.lease;
      }
    } finally {
      this.pumping = false;
    }
  }

  // ------------------------------------------------------------------ channel lifecycle

  /** @internal */
  attach(session: Session): void {
    if (this.state !== 'active') return;
    this.session = session;
    this.failures = 0;
    void this.subscribe(session);
  }

  /** @internal */
  detach(): void {
    this.session = undefined;
    this.seq++;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private async subscribe(session: Session): Promise<void> {
    const seq = ++this.seq;
    let lease: Lease | undefined;
    try {
      const channel = await session.connection.openChannel();
      lease = new Lease(channel);
      const current = lease;
      channel.on('close', (err) => this.onChannelClose(current, err));
      if (seq !== this.seq || this.state !== 'active') throw new ClosedError('superseded');
      this.lease = lease;
      await channel.basicQos(this.prefetch);
      const consumer = await channel.basicConsume(
        this.host.resolveQueue(this.queue),
        { exclusive: this.options.exclusive ?? false, arguments: this.options.arguments ?? {} },
        (msg) => this.onDelivery(current, msg),
      );
      lease.consumer = consumer;
      consumer.on('cancel', ({ serverCancelled }) => {
        if (serverCancelled) this.onServerCancel(current);
      });
      if (!consumer.isActive) throw new ClosedError('the consumer stopped while subscribing');
    } catch (err) {
      if (lease !== undefined) {
        lease.alive = false;
        if (this.lease === lease) this.lease = undefined;
        if (lease.channel.isOpen) void lease.channel.close();
      }
      if (seq !== this.seq || this.state !== 'active') return;
      // A dead connection: the client attaches the next one.
      if (!session.alive || !session.connection.isOpen) return;
      this.subscribeFailed(session, asAMQPError(err));
      return;
    }
    this.failures = 0;
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.resolve();
    if (this.listenerCount('subscribe') > 0) {
      this.emit('subscribe', { queue: this.queue, consumerTag: lease.consumer!.consumerTag });
    }
  }

  /** The broker refused (no such queue, exclusive consumer elsewhere…): report and retry with backoff. */
  private subscribeFailed(session: Session, error: AMQPError): void {
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.reject(error);
    if (this.listenerCount('error') > 0) this.emit('error', error);
    this.retryLater(session);
  }

  private retryLater(session: Session): void {
    clearTimeout(this.retryTimer);
    const delay = Math.max(10, this.host.backoff.delay(++this.failures));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.state === 'active' && session.alive && this.session === session) void this.subscribe(session);
    }, delay);
  }

  private onChannelClose(lease: Lease, error: AMQPError | undefined): void {
    const wasSubscribed = lease.alive && lease.consumer !== undefined;
    lease.alive = false;
    // Deliveries not yet handled are requeued by the broker; their handlers must not run.
    lease.buffer = [];
    lease.bufHead = 0;
    if (this.lease === lease) this.lease = undefined;
    if (!wasSubscribed || this.state !== 'active') return;
    const session = this.session;
    // The broker closed just this channel (e.g. 406 after a bad ack): subscribe again on a new one.
    if (session?.alive && session.connection.isOpen) {
      if (error !== undefined && this.listenerCount('error') > 0) this.emit('error', error);
      this.retryLater(session);
    }
  }

  private onServerCancel(lease: Lease): void {
    if (this.state !== 'active' || this.lease !== lease) return;
    const error = new ConsumerCancelled(this.host.resolveQueue(this.queue));
    if (this.listenerCount('cancel') > 0) this.emit('cancel', error);
    else if (!this.options.resubscribeOnCancel && this.options.onStopping === undefined) {
      process.emitWarning(`warren: ${error.message} (listen for 'cancel' on the subscription to handle this)`);
    }
    if (this.options.resubscribeOnCancel) {
      // Start afresh on a new channel once the queue is back; running handlers' acks are dropped
      // with this channel (the messages of a deleted queue are gone anyway).
      this.lease = undefined;
      lease.alive = false;
      void lease.channel.close();
      const session = this.session;
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
}
