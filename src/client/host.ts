/**
 * The contract between the robust client and its parts (publishers, subscriptions, RPC). Parts see
 * the client only through this interface, so each can be read and tested on its own.
 *
 * Internal: not exported from the package.
 *
 * @module
 */
import type { Connection } from '../connect.js';
import type { AMQPError } from '../errors.js';
import type { ClientMetrics } from '../tracing/metrics.js';
import type { Backoff } from './backoff.js';

/** One live connection of the client. A new `Session` (with a higher `generation`) follows each reconnect. */
export interface Session {
  readonly connection: Connection;
  /** Counts connections of this client from 1. */
  readonly generation: number;
  /** False once the connection has died; parts check it before touching the connection. */
  readonly alive: boolean;
}

/** Something that must be set up again on every new connection. */
export interface Recoverable {
  /** A new connection is up and the topology has been replayed. Must not throw. */
  attach(session: Session): void;
  /** The connection died (`error`), before a new one is attached. Must not throw. */
  detach(error: AMQPError): void;
  /** The broker blocked (`true`) or unblocked (`false`) publishing on the current connection. */
  blockedChanged?(blocked: boolean): void;
  /**
   * The client is closing: finish what is in flight (the promise resolves when done). `deadline`
   * is a `Date.now()` value after which `abort` follows.
   */
  drain(deadline: number): Promise<void>;
  /** The client is gone (closed, or failed with an unrecoverable error): reject everything left. */
  abort(error: AMQPError): void;
}

/** What the parts may use of the client. */
export interface ClientHost {
  /** The current connection, once its topology has been replayed; `undefined` while reconnecting. */
  readonly session: Session | undefined;
  readonly isBlocked: boolean;
  /** False once `close()` was called or the client failed. */
  readonly isOpen: boolean;
  readonly backoff: Backoff;
  /** The error every method rejects with once the client is closed. */
  closedError(): AMQPError;
  register(part: Recoverable): void;
  unregister(part: Recoverable): void;
  /** The queue's name on the current connection (a server-named queue gets a new name on each). */
  resolveQueue(name: string): string;
  /** A subscription to `queue` stopped for good; an auto-delete queue with no other consumer is forgotten. */
  consumerStopped(queue: string): void;
  /** Counts live subscriptions per queue, for the rule above. */
  consumerStarted(queue: string): void;
  /** The client's OpenTelemetry instruments; `undefined` without a meter provider (test it, nothing more). */
  metrics?: ClientMetrics | undefined;
}
