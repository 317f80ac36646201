/**
 * An AMQP channel: every 0-9-1 method as a typed async call.
 *
 * One synchronous method is in flight at a time; later calls wait in a FIFO. Content (deliveries,
 * get-ok, returns) is assembled from method, header and body frames. A channel error rejects what is
 * pending on this channel only. The state, the calls and closing are in `ChannelBase` (channel-base.ts).
 *
 * @module
 */
import { disposable } from '../dispose.js';
import { InvalidArgumentError } from '../errors.js';
import type { MethodInputByName } from '../protocol/generated/methods.js';
import type { BasicProperties } from '../protocol/generated/properties.js';
import type { FieldTable } from '../protocol/field-values.js';
import { ChannelBase } from './channel-base.js';
import type {
  CallOptions,
  ConsumeOptions,
  ExchangeDeclareOptions,
  PublishOptions,
  QueueDeclareOptions,
  QueueDeclareResult,
} from './channel-options.js';
import { requireName } from './checks.js';
import type { PendingConfirm } from './confirms.js';
import type { Consumer, MessageHandler } from './consumer.js';
import { type BindingEnds, bindArgs, exchangeDeclareArgs, queueDeclareArgs } from './declare-args.js';
import { Message, settlement } from './message.js';

// The option and result types of the methods below, for code that imports the channel from here.
export type * from './channel-options.js';

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
export class Channel extends ChannelBase {
  // ------------------------------------------------------------------ exchanges

  /** Declares an exchange (exchange.declare). */
  async exchangeDeclare(exchange: string, type: string, options: ExchangeDeclareOptions = {}): Promise<void> {
    await this.call('exchange.declare', exchangeDeclareArgs(exchange, type, options), options);
  }

  /** Deletes an exchange (exchange.delete). With `ifUnused`, fails (406) while it has bindings. */
  async exchangeDelete(exchange: string, options: { ifUnused?: boolean } & CallOptions = {}): Promise<void> {
    requireName(exchange, 'exchange name');
    await this.call('exchange.delete', { exchange, ifUnused: options.ifUnused ?? false }, options);
  }

  /** Binds exchange `destination` to exchange `source` (exchange.bind, a RabbitMQ extension). */
  exchangeBind(destination: string, source: string, routingKey = '', args: FieldTable = {}, options?: CallOptions) {
    return this.binding('exchange.bind', { destination, source }, routingKey, args, options);
  }

  /** Removes an exchange-to-exchange binding (exchange.unbind). */
  exchangeUnbind(destination: string, source: string, routingKey = '', args: FieldTable = {}, options?: CallOptions) {
    return this.binding('exchange.unbind', { destination, source }, routingKey, args, options);
  }

  // ------------------------------------------------------------------ queues

  /** Declares a queue (queue.declare). An empty name asks the broker to make one up. */
  async queueDeclare(queue = '', options: QueueDeclareOptions = {}): Promise<QueueDeclareResult> {
    const { args: ok } = await this.call('queue.declare', queueDeclareArgs(queue, options), options);
    return { queue: ok.queue, messageCount: ok.messageCount, consumerCount: ok.consumerCount };
  }

  /** Binds a queue to an exchange (queue.bind). */
  queueBind(queue: string, exchange: string, routingKey = '', args: FieldTable = {}, options?: CallOptions) {
    return this.binding('queue.bind', { queue, exchange }, routingKey, args, options);
  }

  /** Removes a binding (queue.unbind). */
  queueUnbind(queue: string, exchange: string, routingKey = '', args: FieldTable = {}, options?: CallOptions) {
    return this.binding('queue.unbind', { queue, exchange }, routingKey, args, options);
  }

  /** The bind and unbind methods of exchanges and queues: the names checked, then the call. */
  private async binding<N extends keyof BindingEnds>(
    method: N,
    ends: BindingEnds[N],
    routingKey: string,
    args: FieldTable,
    options: CallOptions | undefined,
  ): Promise<void> {
    // The ends are those `method` takes (BindingEnds), so its arguments are of its input type.
    await this.call(method, bindArgs(ends, routingKey, args) as MethodInputByName[N], options);
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
   *
   * With a `prefetchCount` of 8 or more, acks given in delivery order are sent together as one
   * basic.ack(multiple) once they cover a quarter of it, once no ack has come for 1 ms, or after
   * 10 ms at most: the broker spends far less time on acks, the client makes far fewer writes, and
   * consuming runs faster. A nack, a reject, `basicRecover` and closing the channel
   * or the connection send the held acks first, so the wire order is the order you gave them. If the
   * connection is cut meanwhile, those messages are delivered again (as with any ack not yet sent).
   * `coalesceAcks: false` sends them at the next flush instead, a tick later at most.
   *
   * @example
   * ```ts
   * await ch.basicQos(100); // acks leave in runs of 25, or 1 ms after the last one
   * await ch.basicQos(100, { coalesceAcks: false }); // acks leave with the next write
   * ```
   */
  async basicQos(
    prefetchCount: number,
    options: { prefetchSize?: number; global?: boolean; coalesceAcks?: boolean } & CallOptions = {},
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
    this.acks.holdUpTo(options.coalesceAcks === false ? 0 : prefetchCount);
  }

  /**
   * Starts a consumer (basic.consume). `handler` runs for every delivery; call `msg.ack()` unless
   * `noAck` is set.
   */
  async basicConsume(queue: string, options: ConsumeOptions | undefined, handler: MessageHandler): Promise<Consumer> {
    requireName(queue, 'queue name');
    options ??= {};
    if (typeof handler !== 'function') throw new InvalidArgumentError('basicConsume needs a handler function');
    // The consumer is created and registered as consume-ok is handled (see inbound.ts), before any
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
    if (this.state === 'open') await this.call('basic.cancel', { consumerTag }, options);
    this.consumers.cancelled(consumerTag, { serverCancelled: false });
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
    return this.publishing.publish(exchange, routingKey, body, properties, options);
  }

  /**
   * @internal The robust publisher's path, in confirm mode only: no promise; `pending` hears of the
   * ack, nack or return synchronously, in the same read that brought it, so that a close read right
   * after it cannot overtake it. When the channel closes first, `pending.lost` (or `reject`) is
   * called before the channel's `'close'` event. Throws what `basicPublish` rejects with.
   */
  publishTracked(body: Buffer, properties: BasicProperties | undefined, pending: PendingConfirm): void {
    if (this.publishing.confirms !== undefined && !this.canSend) throw this.unusableError();
    this.publishing.publishTracked(body, properties, pending);
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
    this.acks.settle(deliveryTag, settlement('ack', options.multiple ?? false, false));
  }

  /** Negatively acknowledges (basic.nack). A no-op when the channel is closed. */
  basicNack(deliveryTag: number, options: { multiple?: boolean; requeue?: boolean } = {}): void {
    if (this.state !== 'open') return;
    this.acks.settle(deliveryTag, settlement('nack', options.multiple ?? false, options.requeue ?? true));
  }

  /** Rejects one delivery (basic.reject). A no-op when the channel is closed. */
  basicReject(deliveryTag: number, options: { requeue?: boolean } = {}): void {
    if (this.state !== 'open') return;
    this.acks.settle(deliveryTag, settlement('reject', false, options.requeue ?? true));
  }

  /** Asks the broker to redeliver every unacknowledged message on this channel (basic.recover). */
  async basicRecover(options: { requeue?: boolean } & CallOptions = {}): Promise<void> {
    this.acks.flushRun();
    const delivered = this.acks.highestDelivered;
    await this.call('basic.recover', { requeue: options.requeue ?? true }, options);
    // The broker forgot the old tags; redeliveries come with new ones.
    this.acks.settledThrough(delivered);
  }

  // ------------------------------------------------------------------ confirm, tx, flow

  /** Puts the channel in confirm mode: from now on `basicPublish` resolves when the broker confirms. */
  async confirmSelect(options?: CallOptions): Promise<void> {
    if (this.publishing.confirms !== undefined) return;
    await this.call('confirm.select', { nowait: false }, options);
    this.publishing.startConfirms();
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
}

disposable(Channel.prototype, 'close');
