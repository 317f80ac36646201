/**
 * What a robust publisher is configured with, per publisher and per publish, and its events.
 *
 * @module
 */
import type { PublishOptions, ReturnedMessage } from '../channel/channel.js';
import { InvalidArgumentError } from '../errors.js';
import type { CodecRegistry } from './codecs.js';

/**
 * Options of `client.publisher()`.
 *
 * @example
 * ```ts
 * const pub = client.publisher({ confirm: true, maxUnconfirmed: 500 });
 * ```
 */
export interface PublisherOptions {
  /**
   * Wait for the broker to confirm each message (publisher confirms) and send again what was not
   * confirmed when a connection died. Default `true`. With `false`, `publish()` resolves once the
   * message is written to the socket, and a message can be lost in a cut.
   */
  confirm?: boolean;
  /** Most messages sent and not yet confirmed; further publishes wait. Default 1000. */
  maxUnconfirmed?: number;
  /**
   * Most messages the publisher holds: waiting to be sent (while disconnected, blocked by the
   * broker, or behind `maxUnconfirmed`) or sent and not yet confirmed. What happens to a publish
   * beyond it is `onFull`'s choice. Default: no limit.
   */
  maxPending?: number;
  /** Most bytes of message bodies the publisher holds, counted like `maxPending`. Default: no limit. */
  maxPendingBytes?: number;
  /**
   * What a publish does when the publisher already holds `maxPending` messages or
   * `maxPendingBytes` bytes: `'wait'` (default) until there is room, in order, for as long as its
   * `timeout` or `signal` allow (backpressure for a producer that awaits each publish); `'reject'` at
   * once with `PublisherFullError` (for a producer that must not stall and will shed or park the
   * message itself). Either way nothing is dropped without its publish rejecting.
   */
  onFull?: 'wait' | 'reject';
  /**
   * How many times a message the broker nacked is sent again before its publish rejects with
   * `PublishNacked`. Default 8; 0 rejects at the first nack. A nack says the broker did not store
   * the message, and most nacks pass: a quorum queue that is electing a new leader after a node
   * went down nacks what reaches it meanwhile, and a channel that was opened during the election can
   * go on nacking. So the first resend goes out at once on the same channel; a message nacked again
   * is sent on a fresh channel, each time after a delay from the client's backoff (between half and
   * all of `backoff` ceiling n for the n-th of these resends: 125–250 ms, then 250–500 ms, and so
   * on with the defaults, about 16–32 s in all), so that the retries span an election rather than
   * all landing in it. Messages still unconfirmed on the closed channel are sent again too:
   * duplicates are possible, as after any cut. A queue that stays full (`x-overflow:
   * reject-publish`) still rejects, after the retries; set a lower value to hear of it sooner.
   */
  nackRetries?: number;
  /** Codecs for bodies that are neither Buffers nor strings. Default: the client's (`createClient({ codecs })`). */
  codecs?: CodecRegistry | undefined;
}

/**
 * Options of one `publish()`.
 *
 * @example
 * ```ts
 * await pub.publish('', 'jobs', body, { deliveryMode: 2 }, { timeout: 5000 });
 * ```
 */
export interface PublisherPublishOptions extends PublishOptions {
  /**
   * Milliseconds from the call until the broker must have confirmed the message; then the publish
   * rejects with `TimeoutError`. A message not yet sent by then is never sent; one already sent may
   * still reach the broker (as with `signal`). Default: no limit.
   */
  timeout?: number;
}

/**
 * Events of a publisher.
 *
 * @example
 * ```ts
 * pub.on('return', (msg) => console.warn('unroutable', msg.routingKey));
 * ```
 */
export interface PublisherEvents {
  /** A mandatory message came back unroutable. With confirms its publish also rejects with `MessageReturned`. */
  return: [message: ReturnedMessage];
}

/** @internal A whole number of at least `min`, or `InvalidArgumentError` naming the option. */
export function wholeNumber(value: number, name: string, min: number): number {
  if (!Number.isInteger(value) || value < min) {
    throw new InvalidArgumentError(`${name} must be a whole number of at least ${min}, got ${String(value)}`);
  }
  return value;
}

/** @internal A `maxPending`-style limit: a whole number of at least `min`, or no limit (`Infinity`) when absent. */
export function limit(value: number | undefined, name: string, min: number): number {
  if (value === undefined || value === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY;
  return wholeNumber(value, name, min);
}
