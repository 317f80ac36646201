/**
 * How a subscription runs its handler on a delivery and settles the message by the outcome: a
 * handler that resolves acks it; one that throws nacks it, requeues it (`REQUEUE`), or hands it to
 * the retry queue (`subscription-retry.ts`) until its attempts are used up, then dead-letters or
 * drops it. The message is bound to the channel that delivered it: once that channel is gone, its
 * settlement is a no-op and the broker requeues it.
 *
 * @module
 */
import type { Message } from '../channel/message.js';
import { traceProcess } from '../tracing/index.js';
import type { ClientHost } from './host.js';
import { measured } from './measured-handler.js';
import { type RetryPolicy, type RetryTransport, retriesSoFar } from './retry.js';
import { type StreamCursor, streamOffsetOf } from './stream-cursor.js';
import type { HeldChannel } from './subscription-channel.js';
import { type InternalHandler, REQUEUE } from './subscription-options.js';
import type { SubscriptionReport } from './subscription-report.js';
import { RetryHandoff } from './subscription-retry.js';
import { asAMQPError } from './topology.js';

/** @internal What a subscription's handler runs need of it. */
export interface HandlerRunsOptions {
  host: ClientHost;
  queue: string;
  handler: InternalHandler;
  /** Requeue a failed message (else dead-letter or drop it) when there is no `retry`. */
  requeueOnError: boolean;
  retry: RetryPolicy | undefined;
  retryVia: RetryTransport | undefined;
  /** The offsets of a stream's messages, to resume from after a reconnect. */
  stream: StreamCursor | undefined;
  report: SubscriptionReport;
  /** False once the subscription stops. */
  active: () => boolean;
  /** A failed message went back to the queue. */
  requeued: () => void;
  /** A handler's message is settled (or on its way to the retry queue): its slot is free. */
  released: () => void;
  /** A failed message has used up its retry attempts (it was dead-lettered or dropped). */
  exhausted: (error: unknown, msg: Message, attempt: number) => void;
}

/** @internal */
export class HandlerRuns {
  private readonly o: HandlerRunsOptions;
  private readonly retries: RetryHandoff;

  constructor(options: HandlerRunsOptions) {
    this.o = options;
    this.retries = new RetryHandoff({
      via: options.retryVia,
      active: options.active,
      // While stopping, a publish refused because the client closes is no news: the message goes back.
      report: (err) => {
        if (options.active()) options.report.retryFailed(asAMQPError(err));
      },
    });
  }

  /** Runs the handler on `msg` (in a slot its subscription has taken) and settles `msg` when it finishes. */
  run(held: HeldChannel, msg: Message): void {
    const { host, handler, queue } = this.o;
    const metrics = host.metrics;
    if (metrics === undefined) this.runWith(held, msg, handler);
    else this.runWith(held, msg, measured(handler, metrics, queue));
  }

  /** The subscription stops: messages waiting for their retry delay are requeued now. */
  wakeRetries(): void {
    this.retries.wakeAll();
  }

  private runWith(held: HeldChannel, msg: Message, handler: InternalHandler): void {
    const stream = this.o.stream;
    if (stream !== undefined) {
      const offset = streamOffsetOf(msg);
      if (offset !== undefined) stream.running(offset);
    }
    let result: void | Promise<void>;
    try {
      // A CONSUMER span around the handler (when tracing is on), child of the producer's span.
      result = traceProcess(msg, this.o.queue, () => handler(msg, held.isCurrent, held.channel));
    } catch (err) {
      this.failed(held, msg, err);
      return;
    }
    if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
      (result as Promise<void>).then(
        () => this.succeeded(msg),
        (err: unknown) => this.failed(held, msg, err),
      );
    } else {
      this.succeeded(msg);
    }
  }

  /**
   * Settles a message whose handler has finished (unless the handler settled it itself), `succeeded`
   * or `failed`. A message of a channel that has died is settled as a no-op: its generation no
   * longer matches.
   */
  private succeeded(msg: Message): void {
    this.offsetHandled(msg);
    msg.ack();
    this.o.released();
  }

  private failed(held: HeldChannel, msg: Message, error: unknown): void {
    const o = this.o;
    this.offsetHandled(msg);
    if (error === REQUEUE) {
      if (msg.nack({ requeue: true })) o.requeued();
    } else if (o.retry !== undefined) {
      const queue = o.host.resolveQueue(o.queue);
      const attempt = retriesSoFar(msg, o.retry.queueFor(queue)) + 1;
      if (attempt < o.retry.attempts) {
        // The handler's slot stays taken until the message is settled: cancel() and close() wait for it.
        // The channel is gone: the broker requeues the message by itself, a copy would be a duplicate.
        const retrying = held.alive ? this.retries.send(o.retry, queue, msg, attempt) : Promise.resolve();
        o.report.handlerError(error, msg);
        void retrying.then(() => o.released());
        return;
      }
      msg.nack({ requeue: false });
      o.report.handlerError(error, msg);
      o.exhausted(error, msg, attempt);
    } else {
      msg.nack({ requeue: o.requeueOnError });
      o.report.handlerError(error, msg);
    }
    o.released();
  }

  /** A stream's offset is handled, whatever became of its message. */
  private offsetHandled(msg: Message): void {
    const stream = this.o.stream;
    if (stream !== undefined) {
      const offset = streamOffsetOf(msg);
      if (offset !== undefined) stream.handled(offset);
    }
  }
}
