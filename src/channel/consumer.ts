/**
 * The consumers of a channel: each subscription created by basic.consume (`Consumer`, which runs
 * its handler for every delivery), and the channel's table of them by consumer tag
 * (`ConsumerRegistry`): registered as consume-ok arrives (before any delivery for them can),
 * looked up for each delivery, stopped when cancelled or when the channel ends.
 *
 * @module
 */
import { reportUserCodeError, SafeEmitter } from '../user-code.js';
import type { AMQPError } from '../errors.js';
import type { Message } from './message.js';

/** Called for each delivered message. May return a promise; a rejection is reported as `handlerError`. */
export type MessageHandler = (message: Message) => void | Promise<void>;

/** Events of a consumer. */
export interface ConsumerEvents {
  /**
   * Delivery stopped: by `cancel()` (no error), by the broker (basic.cancel, e.g. the queue was
   * deleted: `serverCancelled` true), or because the channel closed (the error).
   */
  cancel: [info: { serverCancelled: boolean; error: AMQPError | undefined }];
  /** The handler threw or its promise rejected. The message stays unacknowledged unless the handler settled it. */
  handlerError: [error: unknown, message: Message];
}

/** Why a consumer stopped: what `'cancel'` reports and `cancelled` resolves with. */
type CancelInfo = { serverCancelled: boolean; error: AMQPError | undefined };

/** What a consumer needs from its channel. */
export interface ConsumerHost {
  cancelConsumer(consumerTag: string): Promise<void>;
}

/**
 * What a consumer knows besides its tag and handler. Consumers that one channel started on the same
 * queue with the same `noAck` share one (a thousand consumers on one queue hold one), until one of
 * them stops or is asked for `cancelled`: then it gets its own {@link ConsumerEnd}.
 * @internal
 */
export class ConsumerTerms {
  constructor(
    readonly host: ConsumerHost,
    readonly queue: string,
    readonly noAck: boolean,
  ) {}
}

/** A consumer's own terms once it has stopped or been asked for `cancelled`: how it ended, and the promise. */
class ConsumerEnd extends ConsumerTerms {
  /** Why delivery stopped, once it has. */
  info: CancelInfo | undefined = undefined;
  /** `cancelled`, made when first asked for (a promise costs more than the rest of a consumer). */
  promise: Promise<CancelInfo> | undefined = undefined;
  /** Resolves `promise` while the consumer is active. */
  resolve: ((info: CancelInfo) => void) | undefined = undefined;
}

/**
 * A running consumer.
 *
 * @example
 * ```ts
 * const consumer = await ch.basicConsume('jobs', {}, (msg) => msg.ack());
 * consumer.on('cancel', ({ serverCancelled }) => console.log('stopped', serverCancelled));
 * await consumer.cancel();
 * ```
 */
export class Consumer extends SafeEmitter<ConsumerEvents> {
  readonly consumerTag: string;
  /** @internal */
  readonly handler: MessageHandler;
  /**
   * Three fields in all (with SafeEmitter adding none): a channel may hold thousands of consumers, and
   * the queue, `noAck` and the channel are the same for most of them.
   */
  private terms: ConsumerTerms;

  /** @internal */
  constructor(consumerTag: string, handler: MessageHandler, terms: ConsumerTerms) {
    super();
    this.consumerTag = consumerTag;
    this.handler = handler;
    this.terms = terms;
  }

  /** The queue it consumes from, as given to `basicConsume`. */
  get queue(): string {
    return this.terms.queue;
  }

  /** True when started with `noAck`: its messages need no acknowledgement. */
  get noAck(): boolean {
    return this.terms.noAck;
  }

  /** Resolves when delivery has stopped, for whatever reason. */
  get cancelled(): Promise<{ serverCancelled: boolean; error: AMQPError | undefined }> {
    const end = this.end();
    if (end.promise === undefined) {
      const info = end.info;
      end.promise =
        info !== undefined
          ? Promise.resolve(info)
          : new Promise<CancelInfo>((resolve) => {
              end.resolve = resolve;
            });
    }
    return end.promise;
  }

  /** True until the consumer is cancelled by either side or its channel closes. */
  get isActive(): boolean {
    const terms = this.terms;
    return !(terms instanceof ConsumerEnd) || terms.info === undefined;
  }

  /** Stops delivery (basic.cancel). Messages already delivered can still be acknowledged. Idempotent. */
  async cancel(): Promise<void> {
    if (!this.isActive) return;
    await this.terms.host.cancelConsumer(this.consumerTag);
  }

  /** @internal Called by the channel when delivery has stopped; `info` is what `'cancel'` reports. */
  stopped(info: CancelInfo): void {
    if (!this.isActive) return;
    const end = this.end();
    end.info = info;
    end.resolve?.(info);
    end.resolve = undefined;
    this.emit('cancel', info);
  }

  /** The consumer's own terms, made from the shared ones on first need. */
  private end(): ConsumerEnd {
    const terms = this.terms;
    if (terms instanceof ConsumerEnd) return terms;
    const end = new ConsumerEnd(terms.host, terms.queue, terms.noAck);
    this.terms = end;
    return end;
  }

  /** @internal Runs the handler for one message, reporting a throw or rejection as `handlerError`. */
  deliver(message: Message): void {
    try {
      const result = this.handler(message);
      if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
        (result as Promise<void>).then(undefined, (err: unknown) => this.reportHandlerError(err, message));
      }
    } catch (err) {
      this.reportHandlerError(err, message);
    }
  }

  private reportHandlerError(err: unknown, message: Message, late = false): void {
    if (this.listenerCount('handlerError') > 0) {
      this.emit('handlerError', err, message);
    } else if (!late) {
      // The first deliveries can run before basicConsume() has resolved and a listener could be
      // attached: look again once the caller has had its turn.
      setImmediate(() => this.reportHandlerError(err, message, true));
    } else {
      reportUserCodeError(`message handler of consumer ${this.consumerTag} (nobody listens for 'handlerError')`, err);
    }
  }
}

// ------------------------------------------------------------------------- the channel's consumers

export class ConsumerRegistry {
  /** Made with the first consumer: a channel that only publishes never needs it. */
  private byTag: Map<string, Consumer> | undefined = undefined;

  /** The terms the last consumer started with, for the next one on the same queue to share. */
  private lastTerms: ConsumerTerms | undefined = undefined;

  constructor(private readonly host: ConsumerHost) {}

  get(consumerTag: string): Consumer | undefined {
    return this.byTag?.get(consumerTag);
  }

  /** Registers the consumer the broker confirmed (consume-ok). */
  started(start: { consumerTag: string; queue: string; handler: MessageHandler; noAck: boolean }): Consumer {
    let terms = this.lastTerms;
    if (terms === undefined || terms.queue !== start.queue || terms.noAck !== start.noAck) {
      terms = this.lastTerms = new ConsumerTerms(this.host, start.queue, start.noAck);
    }
    const consumer = new Consumer(start.consumerTag, start.handler, terms);
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
