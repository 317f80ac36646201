/**
 * The consumers of one channel by consumer tag: registered as consume-ok arrives (before any
 * delivery for them can), looked up for each delivery, stopped when cancelled or when the channel ends.
 *
 * @module
 */
import type { AMQPError } from '../errors.js';
import { Consumer, type ConsumerHost, type MessageHandler } from './consumer.js';

export class ConsumerRegistry {
  /** Made with the first consumer: a channel that only publishes never needs it. */
  private byTag: Map<string, Consumer> | undefined = undefined;

  constructor(private readonly host: ConsumerHost) {}

  get(consumerTag: string): Consumer | undefined {
    return this.byTag?.get(consumerTag);
  }

  /** Registers the consumer the broker confirmed (consume-ok). */
  started(start: { consumerTag: string; queue: string; handler: MessageHandler; noAck: boolean }): Consumer {
    const consumer = new Consumer(this.host, start);
    (this.byTag ??= new Map()).set(start.consumerTag, consumer);
    return consumer;
  }

  /** Forgets a consumer and tells it delivery stopped: by `cancel()`, or by the broker (`serverCancelled`). */
  cancelled(consumerTag: string, how: { serverCancelled: boolean }): void {
    const consumer = this.byTag?.get(consumerTag);
    this.byTag?.delete(consumerTag);
    consumer?.stopped({ serverCancelled: how.serverCancelled, error: undefined });
  }

  /** The channel ended: every consumer stops, with the channel's error. */
  stopAll(error: AMQPError | undefined): void {
    if (this.byTag === undefined) return;
    const consumers = [...this.byTag.values()];
    this.byTag.clear();
    for (const consumer of consumers) consumer.stopped({ serverCancelled: false, error });
  }
}
