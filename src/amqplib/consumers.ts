/**
 * The consumers of a warren/amqplib channel, by tag: started on a warren channel with amqplib's
 * options, started again on a fresh one after a recovery, and the warren channel each message came
 * on (an ack must go to that channel; once it is gone the broker has requeued the message).
 *
 * @module
 */
import type { Channel as WarrenChannel } from '../channel/channel.js';
import type { Consumer as WarrenConsumer } from '../channel/consumer.js';
import type { Message as WarrenMessage } from '../channel/message.js';
import { amqplibMessage, consumeArguments } from './args.js';
import type { ConsumeMessage, Message, Options } from './types.js';

/** What the consumers need from their channel. @internal */
export interface ConsumersHost {
  reportHandlerError(err: unknown, event: string): void;
  /** The broker cancelled consumer `tag`: recovery must not start it again. */
  cancelled(tag: string): void;
}

/** One consumer the application started, kept across recoveries. @internal */
export interface ConsumerRecord {
  queue: string;
  callback: (msg: ConsumeMessage | null) => void;
  consumer: WarrenConsumer | undefined;
}

/** @internal */
export class Consumers {
  private readonly records = new Map<string, ConsumerRecord>();
  private readonly deliveredOn = new WeakMap<object, WarrenChannel>();

  constructor(private readonly host: ConsumersHost) {}

  /** Starts consumer `tag` again on a fresh warren channel, if it still exists. */
  async restart(ch: WarrenChannel, tag: string, queue: string, options: Options.Consume): Promise<void> {
    const record = this.records.get(tag);
    if (record === undefined) return;
    record.consumer = await this.start(ch, queue, { ...options, consumerTag: tag });
  }

  remove(tag: string): void {
    this.records.delete(tag);
  }

  /** Remembers that `msg` came on `ch`. */
  delivered(msg: Message, ch: WarrenChannel): void {
    this.deliveredOn.set(msg, ch);
  }

  /** The warren channel `msg` came on, if known. */
  origin(msg: Message): WarrenChannel | undefined {
    return this.deliveredOn.get(msg);
  }

  /**
   * Starts a consumer on `ch` (for `queue`, its current name): the application's new consumer
   * `fresh`, or (without it) the one `options.consumerTag` names again.
   */
  async start(
    ch: WarrenChannel,
    queue: string,
    options: Options.Consume,
    fresh?: ConsumerRecord,
  ): Promise<WarrenConsumer> {
    let tag = options.consumerTag ?? '';
    const handler = (m: WarrenMessage) => {
      const record = this.records.get(m.consumerTag ?? tag);
      if (record === undefined) return;
      const msg = amqplibMessage(m) as ConsumeMessage;
      this.deliveredOn.set(msg, ch);
      try {
        record.callback(msg);
      } catch (err) {
        this.host.reportHandlerError(err, 'delivery');
      }
    };
    // Registered before consume-ok is handled, so no delivery can arrive unclaimed.
    const consumer = await ch.basicConsume(
      queue,
      {
        noAck: options.noAck === true,
        exclusive: options.exclusive === true,
        noLocal: options.noLocal === true,
        consumerTag: tag,
        arguments: consumeArguments(options),
      },
      (m) => {
        if (fresh !== undefined && !this.records.has(m.consumerTag ?? '')) {
          tag = m.consumerTag ?? '';
          this.records.set(tag, fresh);
        }
        handler(m);
      },
    );
    tag = consumer.consumerTag;
    if (fresh !== undefined) this.records.set(tag, fresh);
    consumer.on('cancel', ({ serverCancelled }) => {
      if (!serverCancelled) return;
      const record = this.records.get(tag);
      this.records.delete(tag);
      this.host.cancelled(tag);
      if (record === undefined) return;
      try {
        record.callback(null);
      } catch (err) {
        this.host.reportHandlerError(err, 'cancel');
      }
    });
    return consumer;
  }
}
