/**
 * An AMQP channel: every 0-9-1 method as a typed async call.
 *
 * One synchronous method is in flight at a time; later calls wait in a FIFO. Content (deliveries,
 * get-ok, returns) is assembled from method, header and body frames. A channel error rejects what is
 * pending on this channel only.
 *
 * @module
 */
import { disposable } from '../dispose.js';
import { SafeEmitter } from '../user-code.js';
import { inspectCustom } from '../redact.js';
import type { ChannelHost } from '../connection/endpoint.js';
import {
  type AMQPError,
  AbortError,
  ChannelClosedByServer,
  ClosedError,
  FrameError,
  InvalidArgumentError,
  MessageReturned,
  type ReturnedMessageInfo,
  TimeoutError,
} from '../errors.js';
import {
  type AMQPMethod,
  METHOD_IDS,
  METHOD_NAMES,
  type MethodInputByName,
  type MethodName,
  SYNC_RESPONSES,
} from '../protocol/generated/methods.js';
import { type BasicProperties, PROPERTY_NAMES } from '../protocol/generated/properties.js';
import type { FieldTable } from '../protocol/field-values.js';
import type { ContentHeader } from '../protocol/content-header.js';
import { AckTracker } from './ack-tracker.js';
import { type CallReply, CallQueue, type PendingCall } from './call-queue.js';
import { ConfirmTracker, type PendingConfirm } from './confirms.js';
import { type AssembledContent, ContentAssembler } from './content-assembler.js';
import { Consumer, type MessageHandler } from './consumer.js';
import {
  type ExchangeArgumentOptions,
  exchangeArguments,
  type QueueArgumentOptions,
  queueArguments,
} from './declare-options.js';
import { Message } from './message.js';

/**
 * The deadline of one synchronous channel method (declare, bind, qos, consume, get, …).
 *
 * AMQP cannot cancel a method once it is sent, and a reply that comes later would be taken for the
 * answer to the next one; so when a method that was already sent times out or is aborted, the
 * channel is closed (channel.close on the wire) and every later call on it rejects. The connection
 * and its other channels are not affected. A call still waiting behind another is just dropped.
 *
 * @example
 * ```ts
 * try {
 *   await ch.queueDeclare('jobs', { durable: true, timeout: 5000 });
 * } catch (err) {
 *   if (err instanceof TimeoutError) ch = await conn.openChannel(); // that channel is closed now
 * }
 * ```
 */
export interface CallOptions {
  /** Abandons the call: it rejects with `AbortError` (and closes the channel if the method was sent). */
  signal?: AbortSignal;
  /**
   * Milliseconds to wait for the broker's reply, counted from the call; then it rejects with
   * `TimeoutError` and the channel is closed. Default: the connection's `operationTimeout` (none
   * unless set; the robust client sets 30000). 0 waits forever.
   */
  timeout?: number;
}

/** Options of `exchangeDeclare` (friendly argument options: see `declare-options.ts`). */
export interface ExchangeDeclareOptions extends CallOptions, ExchangeArgumentOptions {
  durable?: boolean;
  autoDelete?: boolean;
  internal?: boolean;
  /** Only check that the exchange exists (404 if not). */
  passive?: boolean;
  arguments?: FieldTable;
}

/** Options of `queueDeclare` (`messageTtl`, `queueType`, ...: see `declare-options.ts`). */
export interface QueueDeclareOptions extends CallOptions, QueueArgumentOptions {
  durable?: boolean;
  exclusive?: boolean;
  autoDelete?: boolean;
  /** Only check that the queue exists (404 if not). */
  passive?: boolean;
  /** e.g. `{ 'x-queue-type': 'quorum' }`, `{ 'x-message-ttl': 60000 }`. */
  arguments?: FieldTable;
}

/** Result of `queueDeclare`. */
export interface QueueDeclareResult {
  /** The queue name (the broker's choice when declared with `''`). */
  queue: string;
  messageCount: number;
  consumerCount: number;
}

/** Options of `basicConsume`. */
export interface ConsumeOptions extends CallOptions {
  /** The broker considers messages acknowledged as soon as it sends them. */
  noAck?: boolean;
  exclusive?: boolean;
  /** A tag of your own; the broker makes one up when empty. */
  consumerTag?: string;
  noLocal?: boolean;
  /** e.g. `{ 'x-priority': 10 }`, `{ 'x-stream-offset': 'first' }`. */
  arguments?: FieldTable;
}

/** Options of `basicPublish`. */
export interface PublishOptions {
  /** Return the message (reject with `MessageReturned` in confirm mode) if no queue is bound for it. */
  mandatory?: boolean;
  /** Stops waiting for the socket or the confirm; the message may still reach the broker. */
  signal?: AbortSignal;
}

/** A message returned by the broker (basic.return). */
export type ReturnedMessage = ReturnedMessageInfo;

/** Events of a channel. */
export interface ChannelEvents {
  /** The channel closed: by `close()` (no error), by the broker or with its connection (the error). */
  close: [error: AMQPError | undefined];
  /** A mandatory message came back. In confirm mode its publish also rejects with `MessageReturned`. */
  return: [message: ReturnedMessage];
  /** The broker asked to stop (false) or resume (true) publishing (channel.flow). */
  flow: [active: boolean];
}

const RESOLVED: Promise<void> = Promise.resolve();
const NO_REPLY: readonly number[] = [];
/** Longest delay a Node timer takes (longer ones fire at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** What `call()` needs for some methods besides their deadline. */
interface CallExtra {
  /** channel.open is sent while the channel is still opening. */
  opening?: boolean;
  /** basic.consume: the handler to register when consume-ok arrives. */
  handler?: MessageHandler;
}

let generations = 0;

/**
 * A channel on a connection. Get one with `connection.openChannel()`.
 *
 * @example
 * ```ts
 * const ch = await conn.openChannel();
 * const { queue } = await ch.queueDeclare('', { exclusive: true });
 * await ch.basicPublish('', queue, Buffer.from('hello'));
 * const msg = await ch.basicGet(queue, { noAck: true });
 * await ch.close();
 * ```
 */
// No `implements ChannelEndpoint`: that contract is internal and stripped from the .d.ts; the
// connection's allocateChannel<T extends ChannelEndpoint>() checks the fit where it matters.
export class Channel extends SafeEmitter<ChannelEvents> {
  /** The channel number on its connection. */
  readonly id: number;
  private readonly host: ChannelHost;
  /** Distinguishes this channel from earlier ones that had the same id, so stale acks are dropped. */
  private readonly generation = ++generations;
  private state: 'opening' | 'open' | 'closing' | 'closed' = 'opening';
  private closeError: AMQPError | undefined;
  private readonly calls = new CallQueue((call) => this.send(call.name, call.args as never));
  private readonly content: ContentAssembler;
  private readonly acks = new AckTracker();
  private readonly consumers = new Map<string, Consumer>();
  private confirms: ConfirmTracker | undefined;
  /** False while the broker asked us (channel.flow) to stop publishing. */
  private flowActive = true;
  /**
   * Closed because a method got no reply in time (or was aborted): the channel id stays taken, and
   * whatever the broker still sends on it is dropped, until its close-ok (or close) arrives.
   */
  private awaitingCloseOk = false;

  /** @internal Use `connection.openChannel()`. */
  constructor(host: ChannelHost, id: number) {
    super();
    this.host = host;
    this.id = id;
    this.content = new ContentAssembler(id);
  }

  /** What `console.log(channel)` shows: its number and state (its connection holds credentials). */
  [inspectCustom](): string {
    return `Channel { ${this.id}, ${this.state} }`;
  }

  /** What `JSON.stringify(channel)` gives. */
  toJSON(): { type: 'Channel'; id: number; state: string } {
    return { type: 'Channel', id: this.id, state: this.state };
  }

  /** True until the channel is closed by either side or its connection dies. */
  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Why the channel closed, once it has. */
  get closeReason(): AMQPError | undefined {
    return this.closeError;
  }

  /** True after `confirmSelect()`. */
  get confirmMode(): boolean {
    return this.confirms !== undefined;
  }

  /** Publishes sent in confirm mode and not yet confirmed. */
  get unconfirmedCount(): number {
    return this.confirms?.size ?? 0;
  }

  /** @internal Sends channel.open; resolves when the broker answers. */
  async open(options?: CallOptions): Promise<void> {
    await this.call('channel.open', {}, options, { opening: true });
    if (this.state === 'opening') this.state = 'open';
  }

  // ------------------------------------------------------------------ sending

  private send<N extends MethodName>(name: N, args: MethodInputByName[N]): void {
    this.host.transport.encoder.method(this.id, name, args);
    this.host.transport.scheduleFlush();
  }

  private unusable(): AMQPError {
    return (
      this.closeError ??
      this.host.closeReason ??
      new ClosedError(`channel ${this.id} is ${this.state === 'closing' ? 'closing' : 'closed'}`)
    );
  }

  /**
   * Queues a synchronous method and resolves with its reply. Arguments are encoded up front so that
   * invalid input is reported before anything is queued.
   */
  private call<N extends MethodName>(
    name: N,
    args: MethodInputByName[N],
    options?: CallOptions,
    extra?: CallExtra,
  ): Promise<AMQPMethod> {
    if (!(this.state === 'open' || (extra?.opening === true && this.state === 'opening')) || !this.host.isOpen) {
      return Promise.reject(this.unusableError());
    }
    const timeout = options?.timeout ?? this.host.operationTimeout ?? 0;
    if (typeof timeout !== 'number' || !(timeout >= 0)) {
      return Promise.reject(new InvalidArgumentError(`timeout must be 0 or more milliseconds, got ${String(timeout)}`));
    }
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(new AbortError(`${name} aborted`, { cause: signal.reason }));
    const replies = SYNC_RESPONSES.get(METHOD_IDS[name]) ?? NO_REPLY;
    return new Promise<CallReply>((resolve, reject) => {
      const call: PendingCall = { name, args, replies, resolve, reject };
      if (extra?.handler !== undefined) call.handler = extra.handler;
      if (timeout > 0 || signal !== undefined) this.arm(call, timeout, signal);
      this.calls.push(call);
    }) as Promise<AMQPMethod>;
  }

  /** Gives `call` its deadline and abort signal; both are let go as soon as it settles. */
  private arm(call: PendingCall, timeout: number, signal: AbortSignal | undefined): void {
    const { resolve, reject } = call;
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => this.abandonCall(call, new AbortError(`${call.name} aborted`, { cause: signal?.reason }));
    const release = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    call.resolve = (reply) => {
      release();
      resolve(reply);
    };
    call.reject = (error) => {
      release();
      reject(error);
    };
    if (timeout > 0) {
      timer = setTimeout(
        () =>
          this.abandonCall(
            call,
            new TimeoutError(
              `${call.name} got no reply from the broker within ${timeout} ms; channel ${this.id} was closed, ` +
                'because AMQP cannot cancel a method in flight (open a new channel to go on)',
            ),
          ),
        Math.min(timeout, MAX_TIMER_MS),
      );
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  }

  /**
   * A call timed out or was aborted. Still waiting behind another: it is just dropped. Sent: its
   * reply may yet come and would answer the next call, so the channel is closed (channel.close on
   * the wire) and its id kept until the broker's close-ok.
   */
  private abandonCall(call: PendingCall, error: AMQPError): void {
    if (this.calls.removeWaiting(call)) {
      call.reject(error);
      return;
    }
    if (this.calls.head !== call || this.state === 'closed') return;
    this.awaitingCloseOk = this.host.isOpen;
    if (call.name === 'channel.close') {
      // close() gave up waiting for close-ok: closed all the same (finish resolves the close call).
      this.finish(undefined);
      return;
    }
    const behind = this.calls.drain().filter((c) => c !== call);
    call.reject(error);
    this.flushAckRun();
    // Sent unless it already was: a close() queued behind this call has not gone out yet.
    if (this.awaitingCloseOk) {
      this.send('channel.close', {
        replyCode: 200,
        replyText: `${call.name} got no reply in time`,
        classId: 0,
        methodId: 0,
      });
    }
    this.finish(error);
    const closed = new ClosedError(`channel ${this.id} was closed: ${error.message}`, { cause: error });
    for (const c of behind) c.reject(closed);
  }

  /** What arrives for a channel closed by `abandonCall`: dropped, until close-ok frees the id. */
  private afterAbandon(m: AMQPMethod): void {
    switch (m.name) {
      case 'channel.close':
        this.send('channel.close-ok', {});
        this.releaseAbandoned();
        return;
      case 'channel.close-ok':
        this.releaseAbandoned();
        return;
      case 'basic.deliver':
      case 'basic.get-ok':
      case 'basic.return':
        this.content.start(m); // its header and body frames follow; they are read and dropped
        return;
      default:
        return;
    }
  }

  private releaseAbandoned(): void {
    if (!this.awaitingCloseOk) return;
    this.awaitingCloseOk = false;
    this.content.reset();
    this.host.releaseChannel(this.id);
  }

  private unusableError(): AMQPError {
    const reason = this.unusable();
    return reason instanceof ClosedError
      ? reason
      : new ClosedError(`channel ${this.id} is closed: ${reason.message}`, { cause: reason });
  }

  // ------------------------------------------------------------------ exchanges

  /** Declares an exchange (exchange.declare). */
  async exchangeDeclare(exchange: string, type: string, options: ExchangeDeclareOptions = {}): Promise<void> {
    requireName(exchange, 'exchange name');
    requireName(type, 'exchange type');
    const args = exchangeArguments(options);
    await this.call(
      'exchange.declare',
      {
        exchange,
        type,
        passive: options.passive ?? false,
        durable: options.durable ?? false,
        autoDelete: options.autoDelete ?? false,
        internal: options.internal ?? false,
        arguments: args,
      },
      options,
    );
  }

  /** Deletes an exchange (exchange.delete). With `ifUnused`, fails (406) while it has bindings. */
  async exchangeDelete(exchange: string, options: { ifUnused?: boolean } & CallOptions = {}): Promise<void> {
    requireName(exchange, 'exchange name');
    await this.call('exchange.delete', { exchange, ifUnused: options.ifUnused ?? false }, options);
  }

  /** Binds exchange `destination` to exchange `source` (exchange.bind, a RabbitMQ extension). */
  async exchangeBind(
    destination: string,
    source: string,
    routingKey = '',
    args: FieldTable = {},
    options?: CallOptions,
  ): Promise<void> {
    requireName(destination, 'destination exchange');
    requireName(source, 'source exchange');
    await this.call('exchange.bind', { destination, source, routingKey, arguments: args }, options);
  }

  /** Removes an exchange-to-exchange binding (exchange.unbind). */
  async exchangeUnbind(
    destination: string,
    source: string,
    routingKey = '',
    args: FieldTable = {},
    options?: CallOptions,
  ): Promise<void> {
    requireName(destination, 'destination exchange');
    requireName(source, 'source exchange');
    await this.call('exchange.unbind', { destination, source, routingKey, arguments: args }, options);
  }

  // ------------------------------------------------------------------ queues

  /** Declares a queue (queue.declare). An empty name asks the broker to make one up. */
  async queueDeclare(queue = '', options: QueueDeclareOptions = {}): Promise<QueueDeclareResult> {
    requireName(queue, 'queue name');
    const args = queueArguments(options);
    const reply = await this.call(
      'queue.declare',
      {
        queue,
        passive: options.passive ?? false,
        durable: options.durable ?? false,
        exclusive: options.exclusive ?? false,
        autoDelete: options.autoDelete ?? false,
        arguments: args,
      },
      options,
    );
    const ok = (reply as Extract<AMQPMethod, { name: 'queue.declare-ok' }>).args;
    return { queue: ok.queue, messageCount: ok.messageCount, consumerCount: ok.consumerCount };
  }

  /** Binds a queue to an exchange (queue.bind). */
  async queueBind(
    queue: string,
    exchange: string,
    routingKey = '',
    args: FieldTable = {},
    options?: CallOptions,
  ): Promise<void> {
    requireName(queue, 'queue name');
    requireName(exchange, 'exchange name');
    await this.call('queue.bind', { queue, exchange, routingKey, arguments: args }, options);
  }

  /** Removes a binding (queue.unbind). */
  async queueUnbind(
    queue: string,
    exchange: string,
    routingKey = '',
    args: FieldTable = {},
    options?: CallOptions,
  ): Promise<void> {
    requireName(queue, 'queue name');
    requireName(exchange, 'exchange name');
    await this.call('queue.unbind', { queue, exchange, routingKey, arguments: args }, options);
  }

  /** Removes every ready message from a queue (queue.purge); resolves with how many. */
  async queuePurge(queue: string, options?: CallOptions): Promise<{ messageCount: number }> {
    requireName(queue, 'queue name');
    const reply = await this.call('queue.purge', { queue }, options);
    return { messageCount: (reply as Extract<AMQPMethod, { name: 'queue.purge-ok' }>).args.messageCount };
  }

  /** Deletes a queue (queue.delete); resolves with how many messages it held. */
  async queueDelete(
    queue: string,
    options: { ifUnused?: boolean; ifEmpty?: boolean } & CallOptions = {},
  ): Promise<{ messageCount: number }> {
    requireName(queue, 'queue name');
    const reply = await this.call(
      'queue.delete',
      { queue, ifUnused: options.ifUnused ?? false, ifEmpty: options.ifEmpty ?? false },
      options,
    );
    return { messageCount: (reply as Extract<AMQPMethod, { name: 'queue.delete-ok' }>).args.messageCount };
  }

  // ------------------------------------------------------------------ basic

  /**
   * Limits unacknowledged deliveries (basic.qos). `global: false` (default) applies the limit to each
   * consumer started afterwards on this channel; `true` to the channel as a whole.
   */
  async basicQos(
    prefetchCount: number,
    options: { prefetchSize?: number; global?: boolean } & CallOptions = {},
  ): Promise<void> {
    if (!Number.isInteger(prefetchCount) || prefetchCount < 0 || prefetchCount > 65535) {
      throw new InvalidArgumentError(`prefetchCount must be a whole number from 0 to 65535, got ${prefetchCount}`);
    }
    await this.call(
      'basic.qos',
      {
        prefetchCount,
        prefetchSize: options.prefetchSize ?? 0,
        global: options.global ?? false,
      },
      options,
    );
  }

  /**
   * Starts a consumer (basic.consume). `handler` runs for every delivery; call `msg.ack()` unless
   * `noAck` is set.
   */
  async basicConsume(queue: string, options: ConsumeOptions | undefined, handler: MessageHandler): Promise<Consumer> {
    requireName(queue, 'queue name');
    options ??= {};
    if (typeof handler !== 'function') throw new InvalidArgumentError('basicConsume needs a handler function');
    const reply = await this.call(
      'basic.consume',
      {
        queue,
        consumerTag: options.consumerTag ?? '',
        noLocal: options.noLocal ?? false,
        noAck: options.noAck ?? false,
        exclusive: options.exclusive ?? false,
        arguments: options.arguments ?? {},
      },
      options,
      { handler },
    );
    // The consumer is created and registered as consume-ok is handled (see onMethod), before any
    // delivery for it can arrive; the call resolves with it even if the broker has cancelled it since.
    return reply as unknown as Consumer;
  }

  /** Stops a consumer (basic.cancel). Resolves once the broker confirmed; deliveries may precede that. */
  async basicCancel(consumerTag: string, options?: CallOptions): Promise<void> {
    requireName(consumerTag, 'consumer tag');
    const consumer = this.consumers.get(consumerTag);
    if (this.state !== 'open') {
      consumer?.stopped(false, undefined);
      return;
    }
    await this.call('basic.cancel', { consumerTag }, options);
    this.consumers.delete(consumerTag);
    consumer?.stopped(false, undefined);
  }

  /** @internal */
  cancelConsumer(consumerTag: string): Promise<void> {
    return this.basicCancel(consumerTag);
  }

  /**
   * Publishes a message (basic.publish). Resolves when written to the socket (waiting while the
   * socket is backed up), or, after `confirmSelect()`, when the broker confirms it. Rejects with
   * `PublishNacked`, `MessageReturned` (mandatory and unroutable, confirm mode), or the error that
   * closed the channel.
   */
  basicPublish(
    exchange: string,
    routingKey: string,
    body: Buffer,
    properties?: BasicProperties,
    options?: PublishOptions,
  ): Promise<void> {
    if (this.state !== 'open' || !this.host.isOpen) return Promise.reject(this.unusableError());
    const mandatory = options?.mandatory ?? false;
    try {
      this.writePublish(exchange, routingKey, body, properties, mandatory);
    } catch (err) {
      return Promise.reject(err);
    }
    const transport = this.host.transport;
    const signal = options?.signal;
    if (this.confirms !== undefined) {
      const confirms = this.confirms;
      return new Promise<void>((resolve, reject) => {
        const pending: PendingConfirm = {
          resolve,
          reject,
          mandatory,
          exchange,
          routingKey,
          returned: undefined,
          settled: false,
        };
        confirms.add(pending);
        if (signal !== undefined) abortable(signal, pending);
      });
    }
    if (transport.writable) return RESOLVED;
    // The wait also ends when the connection dies; the message then did not reach the broker.
    const wait = transport.waitWritable().then(() => {
      if (this.state !== 'open' || !this.host.isOpen) throw this.unusableError();
    });
    if (signal === undefined) return wait;
    return new Promise<void>((resolve, reject) => {
      const waiter = { resolve, reject };
      abortable(signal, waiter);
      wait.then(
        () => waiter.resolve(),
        (err: AMQPError) => waiter.reject(err),
      );
    });
  }

  /** Checks a publish and encodes it for the next flush; throws what `basicPublish` rejects with. */
  private writePublish(
    exchange: string,
    routingKey: string,
    body: Buffer,
    properties: BasicProperties | undefined,
    mandatory: boolean,
  ): void {
    if (!Buffer.isBuffer(body)) {
      throw new InvalidArgumentError(
        `message body must be a Buffer, got ${body === null ? 'null' : typeof body}; use Buffer.from(...)`,
      );
    }
    if (properties !== undefined && (typeof properties !== 'object' || properties === null)) {
      throw new InvalidArgumentError(`message properties must be an object, e.g. { contentType: 'text/plain' }`);
    }
    requireName(exchange, 'exchange name');
    requireName(routingKey, 'routing key');
    if (properties !== undefined) checkPropertyNames(properties);
    const transport = this.host.transport;
    transport.encoder.publish(this.id, exchange, routingKey, mandatory, properties, body);
    transport.scheduleFlush();
  }

  /**
   * @internal The robust publisher's path, in confirm mode only: no promise; `pending` hears of the
   * ack, nack or return synchronously, in the same read that brought it, so that a close read right
   * after it cannot overtake it. When the channel closes first, `pending.lost` (or `reject`) is
   * called before the channel's `'close'` event. Throws what `basicPublish` rejects with.
   */
  publishTracked(body: Buffer, properties: BasicProperties | undefined, pending: PendingConfirm): void {
    const confirms = this.confirms;
    if (confirms === undefined) throw new InvalidArgumentError('publishTracked needs confirm mode (confirmSelect)');
    if (this.state !== 'open' || !this.host.isOpen) throw this.unusableError();
    this.writePublish(pending.exchange, pending.routingKey, body, properties, pending.mandatory);
    confirms.add(pending);
  }

  /** Fetches one message (basic.get); `null` when the queue is empty. */
  async basicGet(queue: string, options: { noAck?: boolean } & CallOptions = {}): Promise<Message | null> {
    requireName(queue, 'queue name');
    const result = (await this.call('basic.get', { queue, noAck: options.noAck ?? false }, options)) as unknown;
    return result instanceof Message ? result : null;
  }

  /** Acknowledges a delivery by tag (basic.ack). Prefer `msg.ack()`. A no-op when the channel is closed. */
  basicAck(deliveryTag: number, options: { multiple?: boolean } = {}): void {
    if (this.state !== 'open') return;
    this.acknowledge('ack', deliveryTag, options.multiple ?? false, false);
  }

  /** Negatively acknowledges (basic.nack). A no-op when the channel is closed. */
  basicNack(deliveryTag: number, options: { multiple?: boolean; requeue?: boolean } = {}): void {
    if (this.state !== 'open') return;
    this.acknowledge('nack', deliveryTag, options.multiple ?? false, options.requeue ?? true);
  }

  /** Rejects one delivery (basic.reject). A no-op when the channel is closed. */
  basicReject(deliveryTag: number, options: { requeue?: boolean } = {}): void {
    if (this.state !== 'open') return;
    this.acknowledge('reject', deliveryTag, false, options.requeue ?? true);
  }

  /** Asks the broker to redeliver every unacknowledged message on this channel (basic.recover). */
  async basicRecover(options: { requeue?: boolean } & CallOptions = {}): Promise<void> {
    this.flushAckRun();
    const delivered = this.acks.highestDelivered;
    await this.call('basic.recover', { requeue: options.requeue ?? true }, options);
    // The broker forgot the old tags; redeliveries come with new ones.
    this.acks.markSettledThrough(delivered);
  }

  /** @internal Acknowledgement from a Message: dropped if this channel is not the one that delivered it. */
  settle(
    kind: 'ack' | 'nack' | 'reject',
    deliveryTag: number,
    generation: number,
    multiple: boolean,
    requeue: boolean,
  ): boolean {
    if (generation !== this.generation || this.state !== 'open' || this.host.transport.isFailed) return false;
    this.acknowledge(kind, deliveryTag, multiple, requeue);
    return true;
  }

  /** @internal True while acks (or other frames) of this channel's connection wait for the next flush. */
  get hasPendingWrites(): boolean {
    return this.host.transport.hasPendingWrites;
  }

  /** @internal Writes what waits for the next flush of this channel's connection now. */
  flushNow(): void {
    this.host.transport.flush();
  }

  /** @internal Runs `hook` once what waits for the next flush of this channel's connection is written. */
  afterNextFlush(hook: () => void): void {
    this.host.transport.afterNextFlush(hook);
  }

  private readonly ackFlushHook = (): void => this.flushAckRun();

  /** Sends ack/nack/reject, coalescing in-order acks into one write just before the next flush. */
  private acknowledge(kind: 'ack' | 'nack' | 'reject', tag: number, multiple: boolean, requeue: boolean): void {
    if (kind === 'ack' && !multiple) {
      const first = !this.acks.hasRun;
      if (this.acks.extendRun(tag)) {
        if (first) this.host.transport.beforeNextFlush(this.ackFlushHook);
        return;
      }
    }
    this.flushAckRun();
    if (kind === 'ack') this.send('basic.ack', { deliveryTag: tag, multiple });
    else if (kind === 'nack') this.send('basic.nack', { deliveryTag: tag, multiple, requeue });
    else this.send('basic.reject', { deliveryTag: tag, requeue });
    if (multiple) this.acks.markSettledThrough(tag);
    else this.acks.markSettled(tag);
  }

  /** Writes the pending coalesced ack, if any. */
  private flushAckRun(): void {
    const run = this.acks.takeRun();
    if (run === undefined || (this.state !== 'open' && this.state !== 'closing')) return;
    this.host.transport.encoder.method(this.id, 'basic.ack', run);
  }

  // ------------------------------------------------------------------ confirm, tx, flow

  /** Puts the channel in confirm mode: from now on `basicPublish` resolves when the broker confirms. */
  async confirmSelect(options?: CallOptions): Promise<void> {
    if (this.confirms !== undefined) return;
    await this.call('confirm.select', { nowait: false }, options);
    this.confirms = new ConfirmTracker();
  }

  /** Starts transactional mode (tx.select). */
  async txSelect(options?: CallOptions): Promise<void> {
    await this.call('tx.select', {}, options);
  }

  /** Commits the current transaction (tx.commit). */
  async txCommit(options?: CallOptions): Promise<void> {
    await this.call('tx.commit', {}, options);
  }

  /** Abandons the current transaction (tx.rollback). */
  async txRollback(options?: CallOptions): Promise<void> {
    await this.call('tx.rollback', {}, options);
  }

  /** Asks the broker to pause (`false`) or resume (`true`) deliveries to this channel (channel.flow). */
  async flow(active: boolean, options?: CallOptions): Promise<boolean> {
    const reply = await this.call('channel.flow', { active }, options);
    return (reply as Extract<AMQPMethod, { name: 'channel.flow-ok' }>).args.active;
  }

  /** True unless the broker asked this channel to stop publishing. */
  get isFlowActive(): boolean {
    return this.flowActive;
  }

  // ------------------------------------------------------------------ close

  /**
   * Closes the channel (channel.close) after the calls already queued. Publishes awaiting a confirm
   * are rejected if the broker has not confirmed them by then. Idempotent. With `timeout` (default
   * the connection's `operationTimeout`), it resolves at the latest that long after the close was
   * sent, the broker's close-ok or not; the id is then kept until the close-ok arrives.
   */
  async close(options?: { timeout?: number }): Promise<void> {
    if (this.state === 'closed' || this.state === 'closing') {
      if (this.state === 'closing') await new Promise((resolve) => this.once('close', resolve));
      return;
    }
    if (!this.host.isOpen) {
      this.finish(this.host.closeReason ?? new ClosedError('connection closed'));
      return;
    }
    this.flushAckRun();
    const closing = this.call(
      'channel.close',
      { replyCode: 200, replyText: 'Goodbye', classId: 0, methodId: 0 },
      options?.timeout === undefined ? undefined : { timeout: options.timeout },
    );
    this.state = 'closing';
    try {
      await closing;
    } catch {
      // Closed by the broker or the connection meanwhile: closed either way.
    }
    this.finish(undefined);
  }

  // ------------------------------------------------------------------ receiving

  /** `await using ch = await conn.openChannel()` closes the channel at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal */
  onMethod(m: AMQPMethod): void {
    if (this.state === 'closed' && this.awaitingCloseOk && !this.content.busy) {
      this.afterAbandon(m);
      return;
    }
    if (this.content.busy) {
      throw new FrameError(`${m.name} arrived on channel ${this.id} while a message body was expected`, 505);
    }
    switch (m.name) {
      case 'basic.deliver':
      case 'basic.get-ok':
      case 'basic.return':
        this.content.start(m);
        return;
      case 'basic.ack':
        this.confirms?.confirm(m.args.deliveryTag, m.args.multiple, true);
        return;
      case 'basic.nack':
        this.confirms?.confirm(m.args.deliveryTag, m.args.multiple, false);
        return;
      case 'basic.consume-ok': {
        const head = this.calls.head;
        if (head?.name === 'basic.consume') {
          const args = head.args as MethodInputByName['basic.consume'];
          const consumer = new Consumer(
            this,
            m.args.consumerTag,
            args.queue ?? '',
            head.handler ?? (() => {}),
            args.noAck ?? false,
          );
          this.consumers.set(m.args.consumerTag, consumer);
          this.calls.answer(m.id, consumer);
          return;
        }
        throw new FrameError(`unexpected ${m.name} on channel ${this.id}`, 505);
      }
      case 'basic.cancel': {
        // The broker cancelled a consumer (queue deleted, node down): consumer_cancel_notify.
        const consumer = this.consumers.get(m.args.consumerTag);
        this.consumers.delete(m.args.consumerTag);
        if (!m.args.nowait) this.send('basic.cancel-ok', { consumerTag: m.args.consumerTag });
        consumer?.stopped(true, undefined);
        return;
      }
      case 'channel.flow':
        this.flowActive = m.args.active;
        this.send('channel.flow-ok', { active: m.args.active });
        this.emit('flow', m.args.active);
        return;
      case 'channel.close': {
        this.send('channel.close-ok', {});
        const method = METHOD_NAMES.get(m.args.classId * 65536 + m.args.methodId);
        this.finish(new ChannelClosedByServer(m.args, method));
        return;
      }
      case 'channel.close-ok':
        this.calls.answer(m.id, m);
        return;
      default:
        if (this.calls.answer(m.id, m)) return;
        throw new FrameError(`unexpected ${m.name} on channel ${this.id}`, 505);
    }
  }

  /** @internal */
  onHeader(header: ContentHeader): void {
    if (this.state === 'closed' && this.awaitingCloseOk && !this.content.busy) return; // cut off by abandonCall
    const done = this.content.header(header);
    if (done !== undefined) this.completeContent(done);
  }

  /** @internal */
  onBody(payload: Buffer): void {
    if (this.state === 'closed' && this.awaitingCloseOk && !this.content.busy) return;
    const done = this.content.body(payload);
    if (done !== undefined) this.completeContent(done);
  }

  private completeContent({ method: m, properties, body, decodeError }: AssembledContent): void {
    if (this.state === 'closed') return; // a late delivery to a channel closed by abandonCall
    if (m.name === 'basic.deliver') {
      const consumer = this.consumers.get(m.args.consumerTag);
      const noAck = consumer?.noAck ?? false;
      this.acks.highestDelivered = m.args.deliveryTag;
      if (noAck) this.acks.markSettled(m.args.deliveryTag);
      const message = new Message(
        {
          body,
          properties,
          deliveryTag: m.args.deliveryTag,
          redelivered: m.args.redelivered,
          exchange: m.args.exchange,
          routingKey: m.args.routingKey,
          consumerTag: m.args.consumerTag,
          decodeError,
        },
        noAck ? undefined : this,
        this.generation,
      );
      if (consumer !== undefined) consumer.deliver(message);
      else if (!noAck) message.reject({ requeue: true }); // consumer gone (cancel in flight): give it back
    } else if (m.name === 'basic.get-ok') {
      const head = this.calls.head;
      const noAck = head?.name === 'basic.get' && ((head.args as { noAck?: boolean }).noAck ?? false);
      this.acks.highestDelivered = m.args.deliveryTag;
      if (noAck) this.acks.markSettled(m.args.deliveryTag);
      const message = new Message(
        {
          body,
          properties,
          deliveryTag: m.args.deliveryTag,
          redelivered: m.args.redelivered,
          exchange: m.args.exchange,
          routingKey: m.args.routingKey,
          messageCount: m.args.messageCount,
          decodeError,
        },
        noAck ? undefined : this,
        this.generation,
      );
      if (!this.calls.answer(m.id, message)) throw new FrameError('basic.get-ok without a basic.get', 505);
    } else if (m.name === 'basic.return') {
      const returned: ReturnedMessage = {
        replyCode: m.args.replyCode,
        replyText: m.args.replyText,
        exchange: m.args.exchange,
        routingKey: m.args.routingKey,
        body,
        properties,
        decodeError,
      };
      this.confirms?.markReturned(new MessageReturned(returned));
      if (this.listenerCount('return') > 0) this.emit('return', returned);
    }
  }

  /** @internal The connection died. */
  onConnectionLost(error: AMQPError): void {
    this.finish(error);
    this.releaseAbandoned();
  }

  /** Moves to closed: rejects pending calls and confirms, stops consumers, frees the id. */
  private finish(error: AMQPError | undefined): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.closeError = error;
    this.content.reset();
    const reason = error ?? new ClosedError(`channel ${this.id} was closed`);
    for (const c of this.calls.drain()) {
      // A close we asked for completes normally when the broker closes or the connection drops.
      if (c.name === 'channel.close') c.resolve(null);
      else c.reject(reason);
    }
    this.confirms?.failAll(reason);
    const consumers = [...this.consumers.values()];
    this.consumers.clear();
    for (const consumer of consumers) consumer.stopped(false, error);
    if (!this.awaitingCloseOk) this.host.releaseChannel(this.id);
    this.emit('close', error);
  }
}

disposable(Channel.prototype, 'close');

/**
 * Makes a waiter end early with `AbortError` when `signal` fires, and removes its listener once the
 * waiter settles either way, so a long-lived signal does not collect one listener per publish.
 */
function abortable(signal: AbortSignal, waiter: { resolve(): void; reject(error: AMQPError): void }): void {
  const abortError = () => new AbortError('publish aborted', { cause: signal.reason });
  if (signal.aborted) {
    waiter.reject(abortError());
    return;
  }
  const { resolve, reject } = waiter;
  const onAbort = () => reject(abortError());
  signal.addEventListener('abort', onAbort, { once: true });
  waiter.resolve = () => {
    signal.removeEventListener('abort', onAbort);
    resolve();
  };
  waiter.reject = (error) => {
    signal.removeEventListener('abort', onAbort);
    reject(error);
  };
}

/**
 * A name the caller must give. `null` or `undefined` would otherwise encode as '' — which the broker
 * reads as "the last queue declared on this channel" or the default exchange, not as an error.
 */
function requireName(value: unknown, what: string): void {
  if (typeof value !== 'string') {
    throw new InvalidArgumentError(`${what} must be a string, got ${value === null ? 'null' : typeof value}`);
  }
}

const PROPERTY_SET: ReadonlySet<string> = new Set(PROPERTY_NAMES);

/** Unknown property names would be dropped without a word; name the mistake instead. */
function checkPropertyNames(properties: BasicProperties): void {
  for (const key in properties) {
    if (PROPERTY_SET.has(key)) continue;
    const hint =
      key === 'persistent'
        ? ' (use deliveryMode: 2 for a persistent message)'
        : ` (message properties are ${[...PROPERTY_SET].join(', ')}; put custom values in headers)`;
    throw new InvalidArgumentError(`unknown message property '${key}'${hint}`);
  }
}
