/**
 * Feeds `stats()` counters and the `logger` from the client's own events: one listener per event
 * on the client, nothing per message.
 *
 * @module
 */
import type { ClientMetrics } from '../tracing/metrics.js';
import type { ClientEvents } from './client-options.js';
import { type Logger, log } from './logger.js';
import type { SafeEmitter } from '../user-code.js';
import type { StatsCounters } from './stats.js';

/** @internal */
export function watchClient(
  client: SafeEmitter<ClientEvents>,
  counters: StatsCounters,
  logger: Logger | undefined,
  metrics: ClientMetrics | undefined,
): void {
  client.on('connect', ({ url, generation }) => {
    counters.connected(url);
    if (generation > 1) metrics?.reconnected();
    log(logger, generation > 1 ? 'info' : 'debug', `connected to ${url} (connection ${generation})`, {
      url,
      generation,
    });
  });
  client.on('disconnect', (error) => {
    counters.lost(error, { attempt: false });
    log(logger, 'warn', `lost the connection, reconnecting: ${error.message}`, { err: error });
  });
  client.on('connectFailed', (error, { url }) => {
    counters.lost(error, { attempt: true });
    log(logger, 'warn', `could not connect to ${url}: ${error.message}`, { url, err: error });
  });
  if (metrics !== undefined) client.on('close', () => metrics.close());
  if (logger === undefined) return;
  client.on('recoveryError', (error, entity) => {
    log(
      logger,
      'error',
      `could not declare ${entity.kind} '${entity.name}' again after reconnecting: ${error.message}`,
      {
        err: error,
        entity,
      },
    );
  });
  client.on('blocked', (reason) => log(logger, 'warn', `the broker blocks publishing: ${reason}`, { reason }));
  client.on('unblocked', () => log(logger, 'info', 'the broker unblocked publishing'));
  // Listened to only with a logger: without one, an unrecoverable error stays where it was (rejections).
  client.on('error', (error) => log(logger, 'error', `giving up: ${error.message}`, { err: error }));
  client.on('close', () => log(logger, 'debug', 'closed'));
}
