/**
 * Where a subscription's troubles go: to its listeners when there are any, else to the client's
 * logger, else (for what must not pass unseen) to a process warning.
 *
 * @module
 */
import type { Message } from '../channel/message.js';
import type { AMQPError, ConsumerCancelled } from '../errors.js';
import { reportUserCodeError, type SafeEmitter } from '../user-code.js';
import { type Logger, log } from './logger.js';
import type { SubscriptionEvents } from './subscription-options.js';

function describeThrown(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** @internal */
export class SubscriptionReport {
  private readonly events: SafeEmitter<SubscriptionEvents>;
  private readonly queue: string;
  private readonly logger: Logger | undefined;
  /** A handler error was reported as a warning (once, when nobody listens and there is no logger). */
  private warned = false;

  constructor(events: SafeEmitter<SubscriptionEvents>, queue: string, logger: Logger | undefined) {
    this.events = events;
    this.queue = queue;
    this.logger = logger;
  }

  handlerError(error: unknown, msg: Message): void {
    if (this.events.listenerCount('handlerError') > 0) {
      this.events.emit('handlerError', error, msg);
    } else if (this.logger !== undefined) {
      log(
        this.logger,
        'error',
        `the message handler of the subscription to '${this.queue}' threw; the message was nacked or retried: ${describeThrown(error)}`,
        { queue: this.queue, err: error, messageId: msg.properties.messageId },
      );
    } else if (!this.warned) {
      this.warned = true;
      reportUserCodeError(
        `message handler of the subscription to '${this.queue}' (nobody listens for 'handlerError'; the message was nacked; further errors are not reported)`,
        error,
      );
    }
  }

  retryFailed(error: AMQPError): void {
    if (this.events.listenerCount('error') > 0) this.events.emit('error', error);
    else {
      log(
        this.logger,
        'warn',
        `could not send a failed message of '${this.queue}' to its retry queue, requeueing it after the delay: ${error.message}`,
        { queue: this.queue, err: error },
      );
    }
  }

  subscribeFailed(error: AMQPError): void {
    if (this.events.listenerCount('error') > 0) this.events.emit('error', error);
    else
      log(this.logger, 'warn', `could not subscribe to '${this.queue}' (retrying): ${error.message}`, {
        queue: this.queue,
        err: error,
      });
  }

  /** The broker cancelled the consumer; `handled`: the subscription deals with it (a warning would be noise). */
  cancelled(error: ConsumerCancelled, options: { handled: boolean }): void {
    if (this.events.listenerCount('cancel') > 0) this.events.emit('cancel', error);
    else if (this.logger !== undefined) {
      log(this.logger, 'warn', error.message, { queue: this.queue });
    } else if (!options.handled) {
      process.emitWarning(`warren: ${error.message} (listen for 'cancel' on the subscription to handle this)`);
    }
  }
}
