/**
 * `client.stats()` and `client.health()`: a plain, JSON-serialisable snapshot of the client for
 * dashboards and readiness probes. Counters are kept from the client's own events (no per-message
 * work); gauges are read from the parts when the snapshot is taken.
 *
 * @module
 */
import type { AMQPError } from '../errors.js';
import { Subscription } from './subscription.js';
import { Publisher } from './publisher.js';

/**
 * What `client.stats()` returns.
 *
 * @example
 * ```ts
 * const { state, connection, reconnects, consumers } = client.stats();
 * ```
 */
export interface ClientStats {
  /**
   * `'connecting'` before the first connection, `'connected'`, `'reconnecting'` after losing one,
   * `'closing'`, `'closed'` (by `close()`), `'failed'` (an unrecoverable error, see `lastError`).
   */
  state: 'connecting' | 'connected' | 'reconnecting' | 'closing' | 'closed' | 'failed';
  /** The current connection, while connected. */
  connection:
    | {
        /** The URL, password redacted. */
        url: string;
        host: string;
        port: number;
        vhost: string;
        /** The broker's `cluster_name` and `version` (server properties), when it sent them. */
        cluster: string | undefined;
        version: string | undefined;
        /** ISO time of this connection's start. */
        since: string;
        /** Counts connections of this client from 1. */
        generation: number;
      }
    | undefined;
  /** Connections after the first one. */
  reconnects: number;
  /** Failed connection attempts so far. */
  connectFailures: number;
  /** The last connection loss or failed attempt (or the unrecoverable error), with its ISO time. */
  lastError: { name: string; code: string; message: string; at: string } | undefined;
  /** The broker blocks publishing (resource alarm). */
  blocked: boolean;
  /** Over every open publisher: publishes waiting to be sent, and sent but not yet confirmed. */
  publishers: { count: number; pending: number; inFlight: number };
  /** One entry per live subscription. */
  consumers: {
    queue: string;
    /** Subscribed on a live channel. */
    active: boolean;
    consumerTag: string | undefined;
    prefetch: number;
    running: number;
    buffered: number;
  }[];
}

/**
 * What `client.health()` returns: `ok` when connected, not blocked, and every subscription is
 * subscribed. `reasons` says what is wrong otherwise. For a readiness probe.
 *
 * @example
 * ```ts
 * const { ok, reasons } = client.health();
 * res.writeHead(ok ? 200 : 503).end(JSON.stringify({ ok, reasons }));
 * ```
 */
export interface ClientHealth {
  ok: boolean;
  state: ClientStats['state'];
  reasons: string[];
}

/** @internal Counters fed by the client's events. */
export class StatsCounters {
  reconnects = 0;
  connectFailures = 0;
  connects = 0;
  since: number | undefined;
  url: string | undefined;
  lastError: ClientStats['lastError'];

  connected(url: string): void {
    if (++this.connects > 1) this.reconnects++;
    this.since = Date.now();
    this.url = url;
  }

  /** A connection was lost, or (`attempt`) an attempt to connect failed. */
  lost(error: AMQPError, how: { attempt: boolean }): void {
    if (how.attempt) this.connectFailures++;
    else this.since = undefined;
    this.lastError = describeError(error);
  }
}

/** @internal */
export function describeError(error: AMQPError): NonNullable<ClientStats['lastError']> {
  return { name: error.name, code: error.code, message: error.message, at: new Date().toISOString() };
}

/** @internal The part of the snapshot read from the live parts. */
export function partStats(parts: Iterable<unknown>): Pick<ClientStats, 'publishers' | 'consumers'> {
  const publishers = { count: 0, pending: 0, inFlight: 0 };
  const consumers: ClientStats['consumers'] = [];
  for (const part of parts) {
    if (part instanceof Publisher) {
      publishers.count++;
      publishers.pending += part.pendingCount;
      publishers.inFlight += part.unconfirmedCount;
    } else if (part instanceof Subscription) {
      consumers.push({
        queue: part.queue,
        active: part.isActive,
        consumerTag: part.consumerTag,
        prefetch: part.prefetchCount,
        running: part.runningCount,
        buffered: part.bufferedCount,
      });
    }
  }
  return { publishers, consumers };
}

/** @internal */
export function healthOf(stats: ClientStats): ClientHealth {
  const reasons: string[] = [];
  if (stats.state !== 'connected') {
    const why = stats.state === 'closed' || stats.state === 'closing' ? undefined : stats.lastError;
    reasons.push(why === undefined ? stats.state : `${stats.state}: ${why.message}`);
  }
  if (stats.blocked) reasons.push('the broker blocks publishing');
  for (const c of stats.consumers) if (!c.active) reasons.push(`not subscribed to '${c.queue}'`);
  return { ok: reasons.length === 0, state: stats.state, reasons };
}
