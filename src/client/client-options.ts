/**
 * What the robust client is configured with (`createClient()`'s options) and the events it emits.
 *
 * @module
 */
import type { ConnectionOptions } from '../connection/options.js';
import type { AMQPError, CredentialsRefreshError } from '../errors.js';
import type { BackoffOptions } from './backoff.js';
import type { CodecRegistry } from './codecs.js';
import type { Logger } from './logger.js';
import type { TopologyEntity } from './topology.js';

/**
 * Options of `createClient()`: where to connect (one URL or several), how to retry, and every
 * connection option (`heartbeat`, `name`, `tls`, `connectionTimeout`…), which apply to each URL.
 *
 * @example
 * ```ts
 * createClient({
 *   urls: ['amqp://app:secret@rabbit-1', 'amqp://app:secret@rabbit-2'],
 *   name: 'billing', heartbeat: 10, connectionTimeout: 5000,
 *   backoff: { initialDelay: 200, maxDelay: 15_000 },
 * });
 * ```
 */
export interface ClientOptions extends Omit<ConnectionOptions, 'url' | 'signal'> {
  /** Broker URLs, tried in order (see `shuffle`) on every round of connection attempts. */
  urls?: string | readonly string[];
  /** Shuffle `urls` before each round, to spread clients over a cluster. Default `false`. */
  shuffle?: boolean;
  /** Attempts per URL in each round before moving to the next URL. Default 1. */
  connectionAttempts?: number;
  /**
   * Failed connection attempts in a row (over every URL and round) after which the client gives
   * up: it closes, rejects whatever waits (and every later call) with `ConnectionAttemptsExhausted`,
   * and emits `'error'` if something listens. A connection that comes up resets the count, so this
   * also bounds each outage. Default: no limit (keep trying).
   */
  maxAttempts?: number;
  /**
   * A fixed delay in milliseconds between rounds and between attempts on the same URL, instead of
   * the jittered `backoff` (pika's `retry_delay`). Default: `backoff`.
   */
  retryDelay?: number;
  /** Delays between rounds (exponential with full jitter), unless `retryDelay` is set. */
  backoff?: BackoffOptions;
  /**
   * Keep retrying (with backoff) when the broker refuses the credentials or the virtual host. Default
   * `false`: such a refusal is fatal, reported as `'error'` and by rejecting whatever waits.
   */
  retryRefused?: boolean;
  /** Milliseconds `close()` waits for in-flight publishes and running handlers. Default 10000. */
  closeTimeout?: number;
  /**
   * Milliseconds every AMQP method the client sends (declare, bind, qos, consume, confirm.select,
   * channel.open…) may wait for the broker's reply; past it the method fails with `TimeoutError`
   * and its channel is closed. Default 30000: twice RabbitMQ's own `channel_operation_timeout`
   * (15 s), so that a broker that is merely slow (a quorum queue declare on a busy cluster) answers,
   * or reports its own timeout, first; and short enough that a stuck broker is noticed while a
   * deploy or a health check still waits. 0 waits forever.
   */
  operationTimeout?: number;
  /** Where the client reports reconnects, refused replays and unheard errors; see `logger.ts`. Default: none. */
  logger?: Logger;
  /** Opt-in: publish objects and read `msg.value` through codecs by content type (see {@link CodecRegistry}). */
  codecs?: CodecRegistry;
}

/**
 * Events of the client.
 *
 * @example
 * ```ts
 * client.on('connect', ({ url }) => log.info(`connected to ${url}`));
 * client.on('disconnect', (err) => log.warn(`lost the broker: ${err.code}`));
 * client.on('error', (err) => log.error(`giving up: ${err.message}`));
 * ```
 */
export interface ClientEvents {
  /** Connected (again) and the topology has been replayed. `url` has its password redacted. */
  connect: [info: { url: string; generation: number }];
  /** The connection died; the client is reconnecting. */
  disconnect: [error: AMQPError];
  /** One connection attempt failed; the client tries the next URL or waits and retries. */
  connectFailed: [error: AMQPError, info: { url: string }];
  /** The broker blocked publishing (resource alarm); publishes wait. */
  blocked: [reason: string];
  /** Publishing may resume. */
  unblocked: [];
  /** An entity of the recorded topology could not be declared again on a new connection; it was skipped. */
  recoveryError: [error: AMQPError, entity: TopologyEntity];
  /**
   * Credentials given as a function could not be refreshed on the live connection (see
   * `ConnectionOptions.credentials`); when the broker refused them, a reconnect with fresh ones follows.
   */
  credentialsError: [error: CredentialsRefreshError];
  /** Unrecoverable (e.g. refused credentials): the client has stopped. Emitted only when listened to. */
  error: [error: AMQPError];
  /** The client has closed (by `close()` or after an unrecoverable error). */
  close: [];
}
