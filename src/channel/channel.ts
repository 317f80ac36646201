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
import type { ChannelHost, PublishTarget } from '../connection/endpoint.js';
import {
  AbortError,
  type AMQPError,
  ChannelClosedByServer,
  ClosedError,
  FrameError,
  InvalidArgumentError,
  MessageReturned,
  REPLY_CODES,
} from '../errors.js';
import {
  type AMQPMethod,
  METHOD_IDS,
  METHOD_NAMES,
  type MethodInputByName,
  type MethodName,
  SYNC_RESPONSES,
  type SyncMethodName,
} from '../protocol/generated/methods.js';
import type { BasicProperties } from '../protocol/generated/properties.js';
import type { FieldTable } from '../protocol/field-values.js';
import type { ContentHeader } from '../protocol/content-header.js';
import { AckTracker } from './ack-tracker.js';
import { armDeadline, CallQueue, type CallResult, type PendingCallOf } from './call-queue.js';
import type {
  CallOptions,
  ChannelEvents,
  ConsumeOptions,
  ExchangeDeclareOptions,
  PublishOptions,
  QueueDeclareOptions,
  QueueDeclareResult,
} from './channel-options.js';
import { type ChannelState, canMove, isEnded, publicChannelState } from './channel-state.js';
import { checkPublish, requireName } from './checks.js';
import { ConfirmTracker, type PendingConfirm } from './confirms.js';
import { type AssembledContent, ContentAssembler } from './content-assembler.js';
import { Consumer, type MessageHandler } from './consumer.js';
import { exchangeArguments, queueArguments } from './declare-options.js';
import { deliveredMessage, fetchedMessage, returnedMessage } from './delivery.js';
import { Message, type Settlement, settlement } from './message.js';
import { confirmWait, writableWait } from './publish-wait.js';

export type {
  CallOptions,
  ChannelEvents,
  ConsumeOptions,
  ExchangeDeclareOptions,
  PublishOptions,
  QueueDeclareOptions,
  QueueDeclareResult,
  ReturnedMessage,
} from './channel-options.js';

const NO_REPLY: readonly number[] = [];

/** What `call()` needs for some methods besides their deadline. */
interface CallExtra {
  /** channel.open is sent while the channel is still opening. */
  opening?: boolean;
  /** basic.consume: the handler to register when consume-ok arrives. */
  handler?: MessageHandler;
}

/** The fields of a bind or unbind, exchange-to-exchange or queue-to-exchange. */
type BindArgs = { destination: string; source: string } | { queue: string; exchange: string };

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
  private state: ChannelState = 'opening';
  private closeError: AMQPError | undefined;
  private readonly calls = new CallQueue((call) => this.send(call.name, call.args));
  private readonly content: ContentAssembler;
  private readonly acks = new AckTracker();
  private readonly consumers = new Map<string, Consumer>();
  private confirms: ConfirmTracker | undefined;
  /** False while the broker asked us (channel.flow) to stop publishing. */
  private flowActive = true;
  /** Where `basicPublish` is writing to, reused from call to call so a publish allocates nothing for it. */
  private readonly target: { exchange: string; routingKey: string; mandatory: boolean } = {
    exchange: '',
    routingKey: '',
    mandatory: false,
  };

  /** @internal Use `connection.openChannel()`. */
  constructor(host: ChannelHost, id: number) {
    super();
    this.host = host;
    this.id = id;
    this.content = new ContentAssembler(id);
  }

  /** What `console.log(channel)` shows: its number and state (its connection holds credentials). */
  [inspectCustom](): string {
    return `Channel { ${this.id}, ${publicChannelState(this.state)} }`;
  }

  /** What `JSON.stringify(channel)` gives. */
  toJSON(): { type: 'Channel'; id: number; state: string } {
    return { type: 'Channel', id: this.id, state: publicChannelState(this.state) };
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
    if (this.state === 'opening') this.moveTo('open');
  }

  // ------------------------------------------------------------------ sending

  private moveTo(next: ChannelState): void {
    if (!canMove(this.state, next)) throw new Error(`internal: channel state ${this.state} cannot move to ${next}`);
    this.state = next;
  }

  private send<N extends MethodName>(name: N, args: MethodInputByName[N]): void {
    this.host.sendMethod(this.id, name, args);
    this.host.scheduleFlush();
  }

  /** True while this channel may send: it is open, and so is its connection. */
  private get canSend(): boolean {
    return this.state === 'open' && this.host.unusable === undefined;
  }

  private unusable(): AMQPError {
    const connection = this.host.unusable;
    return (
      this.closeError ??
      (connection instanceof ClosedError ? undefined : connection) ??
      new ClosedError(`channel ${this.id} is ${this.state === 'closing' ? 'closing' : 'closed'}`)
    );
  }

  private unusableError(): AMQPError {
    const reason = this.unusable();
    return reason instanceof ClosedError
      ? reason
      : new ClosedError(`channel ${this.id} is closed: ${reason.message}`, { cause: reason });
  }

  /** Throws once the channel can no longer send: a publish that waited for the socket then failed. */
  private readonly assertCanSend = (): void => {
    if (!this.canSend) throw this.unusableError();
  };

  /**
   * Queues a synchronous method and resolves with its reply. Arguments are encoded up front so that
   * invalid input is reported before anything is queued.
   */
  private call<N extends SyncMethodName>(
    name: N,
    args: MethodInputByName[N],
    options?: CallOptions,
    extra?: CallExtra,
  ): Promise<CallResult<N>> {
    const sendable = this.state === 'open' || (extra?.opening === true && this.state === 'opening');
    if (!sendable || this.host.unusable !== undefined) return Promise.reject(this.unusableError());
    const timeout = options?.timeout ?? this.host.operationTimeout ?? 0;
    if (typeof timeout !== 'number' || !(timeout >= 0)) {
      return Promise.reject(new InvalidArgumentError(`timeout must be 0 or more milliseconds, got ${String(timeout)}`));
    }
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(new AbortError(`${name} aborted`, { cause: signal.reason }));
    const replies = SYNC_RESPONSES.get(METHOD_IDS[name]) ?? NO_REPLY;
    return new Promise<CallResult<N>>((resolve, reject) => {
      const call: PendingCallOf<N> = { name, args, replies, resolve, reject };
      if (extra?.handler !== undefined) call.handler = extra.handler;
      if (timeout > 0 || signal !== undefined) {
        armDeadline(call, { timeout, signal, channelId: this.id }, (c, error) => this.abandonCall(c, error));
      }
      this.calls.push(call);
    });
  }

  /**
   * A call timed out or was aborted. Still waiting behind another: it is just dropped. Sent: its
   * reply may yet come and would answer the next call, so the channel is closed (channel.close on
   * the wire) and its id kept until the broker's close-ok.
   */
  private abandonCall<N extends SyncMethodName>(call: PendingCallOf<N>, error: AMQPError): void {
    if (this.calls.removeWaiting(call)) {
      call.reject(error);
      return;
    }
    if (this.calls.head !== call || isEnded(this.state)) return;
    const holdId = this.host.unusable === undefined;
    const next = holdId ? 'abandoned' : 'closed';
    if (call.name === 'channel.close') {
      // close() gave up waiting for close-ok: closed all the same (finish resolves the close call).
      this.finish(undefined, next);
      return;
    }
    const behind = this.calls.drain().filter((c) => c !== call);
    call.reject(error);
    this.flushAckRun();
    // Sent unless it already was: a close() queued behind this call has not gone out yet.
    if (holdId) {
      this.send('channel.close', {
        replyCode: REPLY_CODES.REPLY_SUCCESS,
        replyText: `${call.name} got no reply in time`,
        classId: 0,
        methodId: 0,
      });
    }
    this.finish(error, next);
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
    if (this.state !== 'abandoned') return;
    this.moveTo('closed');
    this.content.reset();
    this.host.releaseChannel(this.id);
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
  exchangeBind(
    destination: string,
    source: string,
    routingKey = '',
    args: FieldTable = {},
    options?: CallOptions,
  ): Promise<void> {
    return this.bind('exchange.bind', { destination, source }, routingKey, args, options);
  }

  /** Removes an exchange-to-exchange binding (exchange.unbind). */
  exchangeUnbind(
    destination: string,
    source: string,
    routingKey = '',
    args: FieldTable = {},
    options?: CallOptions,
  ): Promise<void> {
    return this.bind('exchange.unbind', { destination, source }, routingKey, args, options);
  }

  /** One bind or unbind, of a queue or an exchange: both names are checked before anything is sent. */
  private async bind(
    method: 'exchange.bind' | 'exchange.unbind' | 'queue.bind' | 'queue.unbind',
    ends: BindArgs,
    routingKey: string,
    args: FieldTable,
    options: CallOptions | undefined,
  ): Promise<void> {
    if ('queue' in ends) {
      requireName(ends.queue, 'queue name');
      requireName(ends.exchange, 'exchange name');
    } else {
      requireName(ends.destination, 'destination exchange');
      requireName(ends.source, 'source exchange');
    }
    await this.call(method, { ...ends, routingKey, arguments: args }, options);
  }

  // ------------------------------------------------------------------ queues

  /** Declares a queue (queue.declare). An empty name asks the broker to make one up. */
  async queueDeclare(queue = '', options: QueueDeclareOptions = {}): Promise<QueueDeclareResult> {
    requireName(queue, 'queue name');
    const args = queueArguments(options);
    const { args: ok } = await this.call(
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
    return { queue: ok.queue, messageCount: ok.messageCount, consumerCount: ok.consumerCount };
  }

  /** Binds a queue to an exchange (queue.bind). */
  queueBind(
    queue: string,
    exchange: string,
    routingKey = '',
    args: FieldTable = {},
    options?: CallOptions,
  ): Promise<void> {
    return this.bind('queue.bind', { queue, exchange }, routingKey, args, options);
  }

  /** Removes a binding (queue.unbind). */
  queueUnbind(
    queue: string,
    exchange: string,
    routingKey = '',
    args: FieldTable = {},
    options?: CallOptions,
  ): Promise<void> {
    return this.bind('queue.unbind', { queue, exchange }, routingKey, args, options);
  }

  /** Removes every ready message from a queue (queue.purge); resolves with how many. */
  async queuePurge(queue: string, options?: CallOptions): Promise<{ messageCount: number }> {
    requireName(queue, 'queue name');
    const reply = await this.call('queue.purge', { queue }, options);
    return { messageCount: reply.args.messageCount };
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
    return { messageCount: reply.args.messageCount };
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
    // The consumer is created and registered as consume-ok is handled (see onMethod), before any
    // delivery for it can arrive; the call resolves with it even if the broker has cancelled it since.
    return this.call(
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
    if (!this.canSend) return Promise.reject(this.unusableError());
    const target = this.target;
    target.exchange = exchange;
    target.routingKey = routingKey;
    target.mandatory = options?.mandatory ?? false;
    try {
      this.writePublish(target, body, properties);
    } catch (err) {
      return Promise.reject(err);
    }
    const signal = options?.signal;
    if (this.confirms !== undefined) return confirmWait(this.confirms, target, signal);
    return writableWait(this.host, this.assertCanSend, signal);
  }

  /** Checks a publish and encodes it for the next flush; throws what `basicPublish` rejects with. */
  private writePublish(target: PublishTarget, body: Buffer, properties: BasicProperties | undefined): void {
    checkPublish(target.exchange, target.routingKey, body, properties);
    this.host.sendPublish(this.id, target, properties, body);
    this.host.scheduleFlush();
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
    if (!this.canSend) throw this.unusableError();
    this.writePublish(pending, body, properties);
    confirms.add(pending);
  }

  /** Fetches one message (basic.get); `null` when the queue is empty. */
  async basicGet(queue: string, options: { noAck?: boolean } & CallOptions = {}): Promise<Message | null> {
    requireName(queue, 'queue name');
    const result = await this.call('basic.get', { queue, noAck: options.noAck ?? false }, options);
    return result instanceof Message ? result : null;
  }

  /** Acknowledges a delivery by tag (basic.ack). Prefer `msg.ack()`. A no-op when the channel is closed. */
  basicAck(deliveryTag: number, options: { multiple?: boolean } = {}): void {
    if (this.state !== 'open') return;
    this.acknowledge(deliveryTag, settlement('ack', options.multiple ?? false, false));
  }

  /** Negatively acknowledges (basic.nack). A no-op when the channel is closed. */
  basicNack(deliveryTag: number, options: { multiple?: boolean; requeue?: boolean } = {}): void {
    if (this.state !== 'open') return;
    this.acknowledge(deliveryTag, settlement('nack', options.multiple ?? false, options.requeue ?? true));
  }

  /** Rejects one delivery (basic.reject). A no-op when the channel is closed. */
  basicReject(deliveryTag: number, options: { requeue?: boolean } = {}): void {
    if (this.state !== 'open') return;
    this.acknowledge(deliveryTag, settlement('reject', false, options.requeue ?? true));
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
  settle(deliveryTag: number, generation: number, how: Settlement): boolean {
    if (generation !== this.generation || !this.canSend) return false;
    this.acknowledge(deliveryTag, how);
    return true;
  }

  /** @internal True while acks (or other frames) of this channel's connection wait for the next flush. */
  get hasPendingWrites(): boolean {
    return this.host.hasPendingWrites;
  }

  /** @internal Writes what waits for the next flush of this channel's connection now. */
  flushNow(): void {
    this.host.flushNow();
  }

  /** @internal Runs `hook` once what waits for the next flush of this channel's connection is written. */
  afterNextFlush(hook: () => void): void {
    this.host.afterNextFlush(hook);
  }

  private readonly ackFlushHook = (): void => this.flushAckRun();

  /** Sends ack/nack/reject, coalescing in-order acks into one write just before the next flush. */
  private acknowledge(tag: number, { kind, multiple, requeue }: Settlement): void {
    if (kind === 'ack' && !multiple) {
      const first = !this.acks.hasRun;
      if (this.acks.extendRun(tag)) {
        if (first) this.host.beforeNextFlush(this.ackFlushHook);
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
    this.host.sendMethod(this.id, 'basic.ack', run);
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
    return reply.args.active;
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
    if (isEnded(this.state)) return;
    if (this.state === 'closing') {
      await new Promise((resolve) => this.once('close', resolve));
      return;
    }
    const connection = this.host.unusable;
    if (connection !== undefined) {
      this.finish(connection instanceof ClosedError ? new ClosedError('connection closed') : connection);
      return;
    }
    this.flushAckRun();
    const closing = this.call(
      'channel.close',
      { replyCode: REPLY_CODES.REPLY_SUCCESS, replyText: 'Goodbye', classId: 0, methodId: 0 },
      options?.timeout === undefined ? undefined : { timeout: options.timeout },
    );
    this.moveTo('closing');
    try {
      await closing;
    } catch {
      // Closed by the broker or the connection meanwhile: closed either way.
    }
    this.finish(undefined);
  }

  /** `await using ch = await conn.openChannel()` closes the channel at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ------------------------------------------------------------------ receiving

  /** @internal */
  onMethod(m: AMQPMethod): void {
    if (this.state === 'abandoned' && !this.content.busy) {
      this.afterAbandon(m);
      return;
    }
    if (this.content.busy) {
      throw new FrameError(
        `${m.name} arrived on channel ${this.id} while a message body was expected`,
        REPLY_CODES.UNEXPECTED_FRAME,
      );
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
        if (head?.name !== 'basic.consume') throw this.unexpected(m);
        const { args } = head;
        const { consumerTag } = m.args;
        const handler = head.handler ?? (() => {});
        const consumer = new Consumer(this, consumerTag, args.queue ?? '', handler, args.noAck ?? false);
        this.consumers.set(consumerTag, consumer);
        this.calls.answer(m.id, consumer);
        return;
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
        throw this.unexpected(m);
    }
  }

  private unexpected(m: AMQPMethod): FrameError {
    return new FrameError(`unexpected ${m.name} on channel ${this.id}`, REPLY_CODES.UNEXPECTED_FRAME);
  }

  /** @internal */
  onHeader(header: ContentHeader): void {
    if (this.state === 'abandoned' && !this.content.busy) return; // cut off by abandonCall
    const done = this.content.header(header);
    if (done !== undefined) this.completeContent(done);
  }

  /** @internal */
  onBody(payload: Buffer): void {
    if (this.state === 'abandoned' && !this.content.busy) return;
    const done = this.content.body(payload);
    if (done !== undefined) this.completeContent(done);
  }

  private completeContent(content: AssembledContent): void {
    if (isEnded(this.state)) return; // a late delivery to a channel closed by abandonCall
    const m = content.method;
    if (m.name === 'basic.deliver') {
      const consumer = this.consumers.get(m.args.consumerTag);
      const noAck = consumer?.noAck ?? false;
      this.delivered(m.args.deliveryTag, noAck);
      const message = deliveredMessage(content, m.args, noAck ? undefined : this, this.generation);
      if (consumer !== undefined) consumer.deliver(message);
      else if (!noAck) message.reject({ requeue: true }); // consumer gone (cancel in flight): give it back
    } else if (m.name === 'basic.get-ok') {
      const head = this.calls.head;
      const noAck = head?.name === 'basic.get' && (head.args.noAck ?? false);
      this.delivered(m.args.deliveryTag, noAck);
      const message = fetchedMessage(content, m.args, noAck ? undefined : this, this.generation);
      if (!this.calls.answer(m.id, message)) {
        throw new FrameError('basic.get-ok without a basic.get', REPLY_CODES.UNEXPECTED_FRAME);
      }
    } else if (m.name === 'basic.return') {
      const returned = returnedMessage(content, m.args);
      this.confirms?.markReturned(new MessageReturned(returned));
      if (this.listenerCount('return') > 0) this.emit('return', returned);
    }
  }

  /** Books a delivery tag the broker used; one that needs no ack is settled from the start. */
  private delivered(tag: number, noAck: boolean): void {
    this.acks.highestDelivered = tag;
    if (noAck) this.acks.markSettled(tag);
  }

  /** @internal The connection died. */
  onConnectionLost(error: AMQPError): void {
    this.finish(error);
    this.releaseAbandoned();
  }

  /**
   * Ends the channel for its user: rejects pending calls and confirms, stops consumers, and frees
   * the id, unless `next` is `abandoned` (then the broker's close-ok frees it).
   */
  private finish(error: AMQPError | undefined, next: 'closed' | 'abandoned' = 'closed'): void {
    if (isEnded(this.state)) return;
    this.moveTo(next);
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
    if (next === 'closed') this.host.releaseChannel(this.id);
    this.emit('close', error);
  }
}

disposable(Channel.prototype, 'close');
