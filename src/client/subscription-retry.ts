/**
 * How a subscription hands a failed message to its retry queue: declared on first use (and again
 * after it failed), the copy published confirmed, and only then the original acked, so that
 * nothing is lost. Without a usable retry queue the message waits in hand for its delay, then is
 * requeued.
 *
 * @module
 */
import type { Message } from '../channel/message.js';
import { type RetryPolicy, type RetryTransport, retryProperties, retryQueueOptions } from './retry.js';

/** @internal What the hand-off needs of its subscription. */
export interface RetryHandoffOptions {
  /** How copies reach the retry queue; without it, failed messages are requeued after the delay. */
  via: RetryTransport | undefined;
  /** False once the subscription stops: waiting messages then go back at once. */
  active: () => boolean;
  /** The retry queue could not be used (or the delay not computed); the message is requeued instead. */
  report: (error: unknown) => void;
}

/** @internal */
export class RetryHandoff {
  private readonly options: RetryHandoffOptions;
  /** Retry queues declared by this subscription (the client replays them after a reconnect). */
  private readonly declared = new Set<string>();
  /** Wakes messages waiting to be requeued (their retry queue unusable) when the subscription stops. */
  private readonly waits = new Set<() => void>();

  constructor(options: RetryHandoffOptions) {
    this.options = options;
  }

  /** Sends `msg`, a failure of attempt `attempt` on `queue` (its name on this connection), to be retried. */
  async send(policy: RetryPolicy, queue: string, msg: Message, attempt: number): Promise<void> {
    const retryQueue = policy.queueFor(queue);
    let delay: number;
    try {
      delay = policy.delayFor(attempt);
    } catch (err) {
      this.options.report(err);
      delay = 1000;
    }
    const via = this.options.via;
    if (via === undefined || queue.startsWith('amq.')) {
      await this.requeueAfter(msg, delay);
      return;
    }
    try {
      if (!this.declared.has(retryQueue)) {
        await via.declareQueue(retryQueue, retryQueueOptions(queue));
        this.declared.add(retryQueue);
      }
      await via.publish(retryQueue, msg.body, retryProperties(msg, delay));
    } catch (err) {
      // Declared again on the next failure: it may have been deleted.
      this.declared.delete(retryQueue);
      this.options.report(err);
      await this.requeueAfter(msg, delay);
      return;
    }
    msg.ack();
  }

  /** Without a usable retry queue: the message waits in hand for the delay (or the stop), then goes back. */
  private requeueAfter(msg: Message, delay: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.waits.delete(wake);
        msg.nack({ requeue: true });
        resolve();
      };
      const timer = setTimeout(wake, this.options.active() ? delay : 0);
      this.waits.add(wake);
    });
  }

  /** The subscription stops: messages waiting for their delay are requeued now. */
  wakeAll(): void {
    for (const wake of [...this.waits]) wake();
  }
}
