/**
 * The retry policy of a subscription: a message whose handler throws is published to a retry queue
 * of its own queue, waits there for a delay (per-message TTL), and is dead-lettered by the broker
 * back to its queue through the default exchange. The broker counts the round trips in the
 * message's `x-death` header; after the last attempt the message is nacked without requeue (so
 * dead-lettered if its queue has a dead-letter exchange, dropped otherwise).
 *
 * The retry queue of `jobs` is `jobs.retry` (or `retry.queue`): durable, classic, with
 * `x-dead-letter-exchange: ''` and `x-dead-letter-routing-key: 'jobs'`, declared through the
 * client on the first failure, so it is recorded and declared again after a reconnect.
 *
 * @module
 */
import type { QueueDeclareOptions } from '../channel/channel.js';
import type { Message } from '../channel/message.js';
import { InvalidArgumentError } from '../errors.js';
import type { BasicProperties } from '../protocol/generated/properties.js';
import { type FieldValue, TypedValue } from '../protocol/field-values.js';

/**
 * How a subscription retries a message whose handler threw.
 *
 * @example
 * ```ts
 * client.consume('jobs', handle, { retry: { attempts: 3, delay: (attempt) => 1000 * attempt } });
 * ```
 */
export interface RetryOptions {
  /** Handler calls per message in all, the first one included. Default 5. `1` means no retry. */
  attempts?: number;
  /**
   * Milliseconds the message waits in the retry queue after the `attempt`-th call failed
   * (1-based): a number, or a function of the attempt. Default 1 s, doubling up to 30 s.
   */
  delay?: number | ((attempt: number) => number);
  /** Name of the retry queue. Default `<queue>.retry`. */
  queue?: string;
}

/** @internal The policy with its defaults filled in. */
export interface RetryPolicy {
  readonly attempts: number;
  delayFor(attempt: number): number;
  queueFor(queue: string): string;
}

/** @internal What a subscription needs of the client to retry: a recorded declare and a confirmed publish. */
export interface RetryTransport {
  declareQueue(name: string, options: QueueDeclareOptions): Promise<unknown>;
  publish(routingKey: string, body: Buffer, properties: BasicProperties): Promise<void>;
}

const DEFAULT_ATTEMPTS = 5;
const defaultDelay = (attempt: number): number => Math.min(1000 * 2 ** (attempt - 1), 30_000);

/** @internal `undefined` when retrying is off. */
export function retryPolicy(options: RetryOptions | false | undefined): RetryPolicy | undefined {
  if (options === false) return undefined;
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new InvalidArgumentError(`retry must be an object or false, got ${String(options)}`);
  }
  const attempts = options?.attempts ?? DEFAULT_ATTEMPTS;
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new InvalidArgumentError(`retry.attempts must be a whole number of at least 1, got ${attempts}`);
  }
  const delay = options?.delay ?? defaultDelay;
  if (typeof delay === 'number') checkDelay(delay);
  else if (typeof delay !== 'function') throw new InvalidArgumentError('retry.delay must be a number or a function');
  const name = options?.queue;
  if (name !== undefined && (typeof name !== 'string' || name === '')) {
    throw new InvalidArgumentError('retry.queue must be a non-empty queue name');
  }
  return {
    attempts,
    delayFor: (attempt) => (typeof delay === 'number' ? delay : checkDelay(delay(attempt))),
    queueFor: (queue) => name ?? `${queue}.retry`,
  };
}

function checkDelay(ms: unknown): number {
  if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 0 || ms > 0xffffffff) {
    throw new InvalidArgumentError(`retry.delay must be a whole number of milliseconds from 0, got ${String(ms)}`);
  }
  return ms;
}

/** @internal The arguments of the retry queue of `queue`. */
export function retryQueueOptions(queue: string): QueueDeclareOptions {
  return {
    durable: true,
    arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': queue },
  };
}

function plain(value: FieldValue): FieldValue {
  return value instanceof TypedValue ? plain(value.value) : value;
}

function text(value: FieldValue): string | undefined {
  const v = plain(value);
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString();
  return undefined;
}

/**
 * @internal How many times the message has come back from `retryQueue`: the broker's count in the
 * `x-death` entry for that queue with reason `expired`.
 */
export function retriesSoFar(msg: Message, retryQueue: string): number {
  const deaths = plain(msg.properties.headers?.['x-death']);
  if (!Array.isArray(deaths)) return 0;
  let total = 0;
  for (const entry of deaths) {
    const death = plain(entry);
    if (typeof death !== 'object' || death === null || Array.isArray(death) || Buffer.isBuffer(death)) continue;
    if (death instanceof Date) continue;
    const table = death as Record<string, FieldValue>;
    if (text(table.queue as FieldValue) !== retryQueue || text(table.reason as FieldValue) !== 'expired') continue;
    const count = plain(table.count as FieldValue);
    if (typeof count === 'number') total += count;
    else if (typeof count === 'bigint') total += Number(count);
  }
  return total;
}

/** @internal The properties of the copy sent to the retry queue: the message's own, with the delay as TTL. */
export function retryProperties(msg: Message, delay: number): BasicProperties {
  return { ...msg.properties, expiration: String(delay) };
}
