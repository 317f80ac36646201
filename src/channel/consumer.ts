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

/** A consumer's `cancelled` promise, with its resolver until it resolves. */
interface CancelWait {
  readonly promise: Promise<CancelInfo>;
  resolve: ((info: CancelInfo) => void) | undefined;
}

/** `cancelled` for a consumer that stopped already (`info`) or is still active (`undefined`). */
function cancelWait(info: CancelInfo | undefined): CancelWait {
  if (info !== undefined) return { promise: Promise.resolve(info), resolve: undefined };
  let resolve: ((info: CancelInfo) => void) | undefined;
  const promise = new Promise<CancelInfo>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** What a consumer needs from its channel. */
export interface ConsumerHost {
  cancelConsumer(consumerTag: string): Promise<void>;
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
  readonly queue: string;
  /** @internal */
  readonly handler: MessageHandler;
  /** True when started with `noAck`: its messages need no acknowledgement. */
  readonly noAck: boolean;
  private readonly host: ConsumerHost;
  /** Why delivery stopped, once it has. */
  private stoppedInfo: CancelInfo | undefined = undefined;
  /** `cancelled`, made when first asked for (a promise costs more than the rest of a consumer), and its resolver. */
  private cancelWait: CancelWait | undefined = undefined;

  /** @internal */
  constructor(
    host: ConsumerHost,
    start: { consumerTag: string; queue: string; handler: MessageHandler; noAck: boolean },
  ) {
    super();
    this.host = host;
    this.consumerTag = start.consumerTag;
    this.queue = start.queue;
    this.handler = start.handler;
    this.noAck = start.noAck;
  }

  /** Resolves when delivery has stopped, for whatever reason. */
  get cancelled(): Promise<CancelInfo> {
    this.cancelWait ??= cancelWait(this.stoppedInfo);
    return this.cancelWait.promise;
  }

  /** True until the consumer is cancelled by either side or its channel closes. */
  get isActive(): boolean {
    return this.stoppedInfo === undefined;
  }

  /** Stops delivery (basic.cancel). Messages already delivered can still be acknowledged. Idempotent. */
  async cancel(): Promise<void> {
    if (!this.isActive) return;
    await this.host.cancelConsumer(this.consumerTag);
  }

  /** @internal Called by the channel when delivery has stopped; `info` is what `'cancel'` reports. */
  stopped(info: CancelInfo): void {
    if (!this.isActive) return;
    this.stoppedInfo = info;
    const wait = this.cancelWait;
    if (wait !== undefined) {
      wait.resolve?.(info);
      wait.resolve = undefined;
    }
    this.emit('cancel', info);
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
