/**
 * The core of the robust client: the cycle of connections (URLs in order or shuffled, attempts,
 * backoff with full jitter between rounds, a connection that was established reconnects at once), topology replay,
 * attaching and detaching the parts (publishers, subscriptions, RPC) on each connection, fatal errors,
 * and close. The `Client` of `client.ts` holds one and gives it the emitter its events go to; the
 * public methods live there.
 *
 * A low-level `Connection` dies once; this layer owns the cycle of connections.
 *
 * @module
 */
import type { SafeEmitter } from '../user-code.js';
import type { CallOptions, Channel } from '../channel/channel.js';
import { type Connection, connect } from '../connect.js';
import { type ConnectionOptions, redactUrl, resolveOptions } from '../connection/options.js';
import {
  type AMQPError,
  AbortError,
  AuthenticationError,
  ClosedError,
  ConnectionAttemptsExhausted,
  ConnectionError,
  type CredentialsRefreshError,
  HandshakeError,
  InvalidArgumentError,
  TimeoutError,
} from '../errors.js';
import { hideFields } from '../redact.js';
import { Backoff } from './backoff.js';
import type { ClientEvents, ClientOptions } from './client-options.js';
import type { CodecRegistry } from './codecs.js';
import type { ClientHost, Recoverable, Session } from './host.js';
import { Subscription } from './subscription.js';
import { asAMQPError, Topology } from './topology.js';
import { sleep, Waiter } from './waiting.js';

/** Default `operationTimeout` of the robust client; see there for why. */
const DEFAULT_OPERATION_TIMEOUT = 30_000;

interface Endpoint {
  options: ConnectionOptions;
  display: string;
}

class LiveSession implements Session {
  alive = true;
  constructor(
    readonly connection: Connection,
    readonly generation: number,
  ) {}
}

/** Refused credentials or vhost, or not an AMQP server: retrying the same URL will not help. */
function isRefusal(error: AMQPError): boolean {
  if (error instanceof AuthenticationError) return true;
  return error instanceof HandshakeError && (error.reason === 'vhost' || error.reason === 'protocol');
}

/** @internal The connection cycle and lifetime of the robust client; the `Client` holds one. */
export class ClientCore {
  private lifecycle: 'open' | 'closing' | 'closed' = 'open';
  private fatal: AMQPError | undefined;
  /** Where the client's events go: the `Client`. */
  private readonly events: SafeEmitter<ClientEvents>;
  private readonly endpoints: Endpoint[];
  private readonly shuffle: boolean;
  private readonly attempts: number;
  private readonly maxAttempts: number;
  private readonly retryDelay: number | undefined;
  private readonly retryRefused: boolean;
  private readonly closeTimeout: number;
  private readonly backoffPolicy: Backoff;
  readonly topology = new Topology();
  private readonly parts = new Set<Recoverable>();
  private readonly consumerCounts = new Map<string, number>();
  private readonly abortController = new AbortController();
  private current: LiveSession | undefined;
  private connection: Connection | undefined;
  private sessionWaiters = new Set<Waiter<Session>>();
  private generation = 0;
  private blocked = false;
  private closing: Promise<void> | undefined;
  /** When `close()` must have finished (ms since the epoch), once it was called. */
  private closeDeadline: number | undefined;
  private readonly loop: Promise<void>;
  /** What the parts see of the client. */
  readonly host: ClientHost;
  /** The codecs of `options.codecs`, if any. */
  readonly codecs: CodecRegistry | undefined;

  constructor(options: ClientOptions, events: SafeEmitter<ClientEvents>) {
    this.events = events;
    const {
      urls,
      shuffle,
      connectionAttempts,
      maxAttempts,
      retryDelay,
      backoff,
      retryRefused,
      closeTimeout,
      logger,
      codecs,
      ...rest
    } = options;
    const connection = { ...rest, operationTimeout: rest.operationTimeout ?? DEFAULT_OPERATION_TIMEOUT };
    this.codecs = codecs;
    const list = urls === undefined ? [] : typeof urls === 'string' ? [urls] : [...urls];
    this.endpoints =
      list.length === 0
        ? [endpoint(connection, undefined)]
        : list.map((url) => {
            if (typeof url !== 'string') throw new InvalidArgumentError('urls must be strings');
            return endpoint(connection, url);
          });
    this.shuffle = shuffle ?? false;
    this.attempts = connectionAttempts ?? 1;
    if (!Number.isInteger(this.attempts) || this.attempts < 1) {
      throw new InvalidArgumentError(`connectionAttempts must be a whole number of at least 1, got ${this.attempts}`);
    }
    this.maxAttempts = maxAttempts ?? Number.POSITIVE_INFINITY;
    if (
      this.maxAttempts !== Number.POSITIVE_INFINITY &&
      (!Number.isInteger(this.maxAttempts) || this.maxAttempts < 1)
    ) {
      throw new InvalidArgumentError(`maxAttempts must be a whole number of at least 1, got ${String(maxAttempts)}`);
    }
    if (
      retryDelay !== undefined &&
      (typeof retryDelay !== 'number' || !Number.isFinite(retryDelay) || retryDelay < 0)
    ) {
      throw new InvalidArgumentError(`retryDelay must be a finite number of milliseconds, got ${String(retryDelay)}`);
    }
    this.retryDelay = retryDelay;
    this.retryRefused = retryRefused ?? false;
    this.closeTimeout = closeTimeout ?? 10_000;
    this.backoffPolicy = new Backoff(backoff);
    this.host = this.makeHost();
    // The endpoints hold the URLs, passwords and TLS keys; the rest leads to the connection.
    hideFields(this, 'endpoints', 'host', 'current', 'connection');
    this.loop = this.run();
  }

  private makeHost(): ClientHost {
    const self = this;
    return {
      get session() {
        return self.current;
      },
      get isBlocked() {
        return self.blocked;
      },
      get isOpen() {
        return self.lifecycle !== 'closed';
      },
      backoff: this.backoffPolicy,
      closedError: () => this.closedError(),
      register: (part) => this.parts.add(part),
      unregister: (part) => this.parts.delete(part),
      resolveQueue: (name) => this.topology.resolveQueue(name),
      consumerStarted: (queue) => this.consumerCounts.set(queue, (this.consumerCounts.get(queue) ?? 0) + 1),
      consumerStopped: (queue) => {
        const n = (this.consumerCounts.get(queue) ?? 1) - 1;
        if (n > 0) {
          this.consumerCounts.set(queue, n);
          return;
        }
        this.consumerCounts.delete(queue);
        // The broker deletes an auto-delete queue when its last consumer goes; so does the record.
        if (this.lifecycle === 'open' && this.topology.isAutoDeleteQueue(queue)) this.topology.removeQueue(queue);
      },
    };
  }

  /** `'open'`, `'closing'` once `close()` was called, `'closed'` once closed or failed. */
  get state(): 'open' | 'closing' | 'closed' {
    return this.lifecycle;
  }

  /** The unrecoverable error the client stopped with, if it did. */
  get failure(): AMQPError | undefined {
    return this.fatal;
  }

  /** The current session, once its topology has been replayed. */
  get session(): Session | undefined {
    return this.current;
  }

  /** The current connection, replayed or not (a test cuts it). */
  get liveConnection(): Connection | undefined {
    return this.connection;
  }

  get isBlocked(): boolean {
    return this.blocked;
  }

  /** The endpoints as shown to people: passwords redacted. */
  get displayUrls(): string[] {
    return this.endpoints.map((e) => e.display);
  }

  /** The live publishers, subscriptions and RPC parts (for `stats()`). */
  get liveParts(): ReadonlySet<Recoverable> {
    return this.parts;
  }

  // ------------------------------------------------------------------ connection cycle

  private order(): Endpoint[] {
    const list = [...this.endpoints];
    if (this.shuffle) {
      for (let i = list.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [list[i], list[j]] = [list[j]!, list[i]!];
      }
    }
    return list;
  }

  private async run(): Promise<void> {
    const signal = this.abortController.signal;
    let failures = 0;
    /** Failed attempts since the last connection that came up. */
    let failedAttempts = 0;
    while (!signal.aborted) {
      if (failures > 0) {
        try {
          await sleep(this.retryDelay ?? this.backoffPolicy.delay(failures), signal);
        } catch {
          return;
        }
      }
      let served = false;
      rounds: for (const ep of this.order()) {
        for (let attempt = 0; attempt < this.attempts; attempt++) {
          if (signal.aborted) return;
          if (attempt > 0 && this.retryDelay !== undefined) {
            try {
              await sleep(this.retryDelay, signal);
            } catch {
              return;
            }
          }
          let conn: Connection;
          try {
            conn = await connect({ ...ep.options, signal });
          } catch (err) {
            if (signal.aborted) return;
            const error = asAMQPError(err);
            this.events.emit('connectFailed', error, { url: ep.display });
            if (isRefusal(error) && !this.retryRefused) {
              this.fail(error);
              return;
            }
            if (++failedAttempts >= this.maxAttempts) {
              this.fail(
                new ConnectionAttemptsExhausted(
                  `gave up connecting after ${failedAttempts} failed attempts in a row (maxAttempts); ` +
                    `the last, to ${ep.display}, failed with: ${error.message}`,
                  failedAttempts,
                  { cause: error },
                ),
              );
              return;
            }
            continue;
          }
          failedAttempts = 0;
          if (signal.aborted) {
            // Connected just as the client was closed.
            await conn.close({ timeout: this.closeTimeLeft() });
            return;
          }
          served = true;
          // A connection that came up and had its topology replayed is a success however short its
          // life: the next outage starts again from the first round. One that died before (a broker
          // that accepts and drops, or refuses the replay by closing) backs off further.
          const established = await this.serve(conn, ep);
          failures = established ? 0 : failures + 1;
          break rounds;
        }
      }
      if (!served) failures++;
    }
  }

  /**
   * Runs one connection: replay, attach the parts, wait for its end, detach. Resolves with whether
   * it was established (replayed and handed to the parts).
   */
  private async serve(conn: Connection, ep: Endpoint): Promise<boolean> {
    const session = new LiveSession(conn, ++this.generation);
    this.connection = conn;
    const onBlocked = (reason: string) => this.setBlocked(true, reason);
    const onUnblocked = () => this.setBlocked(false, '');
    const onCredentialsError = (error: CredentialsRefreshError) => this.events.emit('credentialsError', error);
    conn.on('blocked', onBlocked);
    conn.on('unblocked', onUnblocked);
    conn.on('credentialsError', onCredentialsError);
    // A blocked that came in the same read as open-ok was emitted before these listeners existed.
    if (conn.isBlocked) this.setBlocked(true, conn.blockedBecause ?? '');
    let skipped: Set<object> | undefined;
    let established = false;
    try {
      skipped = await this.topology.replay(conn, (error, entity) => this.events.emit('recoveryError', error, entity));
    } catch {
      // The connection died during the replay; its end is handled below.
    }
    // What the broker refused (e.g. 405: an exclusive queue still held by the previous connection,
    // which the broker has not yet found dead) is tried again with backoff while this connection lives.
    if (skipped !== undefined && skipped.size > 0) void this.retrySkipped(session, skipped);
    if (this.lifecycle === 'closed') void conn.close({ timeout: this.closeTimeLeft() });
    else if (conn.isOpen) {
      established = true;
      this.current = session;
      const waiters = [...this.sessionWaiters];
      this.sessionWaiters.clear();
      for (const w of waiters) w.resolve(session);
      for (const part of [...this.parts]) part.attach(session);
      this.events.emit('connect', { url: ep.display, generation: session.generation });
    }
    const error = await conn.closed;
    session.alive = false;
    conn.off('blocked', onBlocked);
    conn.off('unblocked', onUnblocked);
    conn.off('credentialsError', onCredentialsError);
    if (this.connection === conn) this.connection = undefined;
    if (this.current === session) this.current = undefined;
    if (this.blocked) this.setBlocked(false, '');
    if (this.lifecycle === 'closed') return established;
    const reason = error ?? new ConnectionError('the connection closed unexpectedly');
    for (const part of [...this.parts]) part.detach(reason);
    this.events.emit('disconnect', reason);
    return established;
  }

  private async retrySkipped(session: LiveSession, skipped: Set<object>): Promise<void> {
    const signal = this.abortController.signal;
    for (let round = 1; skipped.size > 0; round++) {
      try {
        await sleep(Math.max(10, this.backoffPolicy.delay(round)), signal);
      } catch {
        return;
      }
      if (!session.alive || !session.connection.isOpen) return;
      try {
        skipped = await this.topology.replay(session.connection, () => {}, skipped);
      } catch {
        return; // the connection died; the next one replays everything
      }
    }
  }

  private setBlocked(blocked: boolean, reason: string): void {
    if (this.blocked === blocked) return;
    this.blocked = blocked;
    for (const part of [...this.parts]) part.blockedChanged?.(blocked);
    if (blocked) this.events.emit('blocked', reason);
    else this.events.emit('unblocked');
  }

  /** An unrecoverable error: stop, reject everything that waits, tell whoever listens. */
  private fail(error: AMQPError): void {
    if (this.lifecycle === 'closed') return;
    this.lifecycle = 'closed';
    this.fatal = error;
    this.abortController.abort();
    const waiters = [...this.sessionWaiters];
    this.sessionWaiters.clear();
    for (const w of waiters) w.reject(error);
    for (const part of [...this.parts]) part.abort(error);
    void this.connection?.close();
    if (this.events.listenerCount('error') > 0) this.events.emit('error', error);
    this.events.emit('close');
  }

  /** The error every method rejects with once the client is closed. */
  closedError(): AMQPError {
    if (this.fatal !== undefined) {
      return new ClosedError(`the client has stopped: ${this.fatal.message}`, { cause: this.fatal });
    }
    return new ClosedError('the client is closed');
  }

  /** Waits for a connection whose topology has been replayed. */
  private waitSession(signal: AbortSignal | undefined): Promise<Session> {
    if (this.lifecycle !== 'open') return Promise.reject(this.closedError());
    if (this.current !== undefined) return Promise.resolve(this.current);
    const waiter = new Waiter<Session>(signal, 'waiting for a connection was aborted');
    if (!waiter.settled) {
      this.sessionWaiters.add(waiter);
      void waiter.promise.then(undefined, () => this.sessionWaiters.delete(waiter));
    }
    return waiter.promise;
  }

  /** Resolves once connected (see `Client.ready`). */
  async ready(options?: AbortSignal | { signal?: AbortSignal; timeout?: number }): Promise<void> {
    if (this.fatal !== undefined) throw this.fatal;
    const { signal, timeout } =
      options instanceof AbortSignal ? { signal: options, timeout: undefined } : (options ?? {});
    await this.withDeadline({ signal, timeout }, 'ready()', (bounded) => this.waitSession(bounded.signal));
  }

  /**
   * Runs `work` under the caller's `signal` and `timeout`: `work` gets a signal that fires at either
   * and how long is left; a deadline that passed turns what it rejects with into `TimeoutError`.
   */
  private async withDeadline<T>(
    options: { signal?: AbortSignal | undefined; timeout?: number | undefined },
    what: string,
    work: (bounded: { signal: AbortSignal | undefined; left: () => number | undefined }) => Promise<T>,
  ): Promise<T> {
    const { signal, timeout } = options;
    if (timeout === undefined) return work({ signal, left: () => undefined });
    if (typeof timeout !== 'number' || !(timeout >= 0)) {
      throw new InvalidArgumentError(`timeout must be 0 or more milliseconds, got ${String(timeout)}`);
    }
    const deadline = Date.now() + timeout;
    const expiry = new AbortController();
    const timer = setTimeout(() => expiry.abort(), Math.min(timeout, 2 ** 31 - 1));
    const onAbort = () => expiry.abort(signal?.reason);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    const connected = this.current !== undefined;
    try {
      return await work({ signal: expiry.signal, left: () => Math.max(1, deadline - Date.now()) });
    } catch (err) {
      if (signal?.aborted || !(Date.now() >= deadline - 1 || expiry.signal.aborted)) throw err;
      if (!(err instanceof AbortError || err instanceof TimeoutError)) throw err;
      const waited = connected || this.current !== undefined ? '' : ' (no connection to the broker meanwhile)';
      throw new TimeoutError(`${what} did not finish within ${timeout} ms${waited}`, { cause: err });
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  // ------------------------------------------------------------------ topology

  /**
   * Runs one topology operation on a short-lived channel of its own, so that a refusal (a 406 for
   * different arguments, a 404) closes only that channel. Retried on the next connection when the
   * connection dies under it; rejected when the broker refuses it.
   */
  topologyOp<T>(
    options: { signal?: AbortSignal | undefined; timeout?: number | undefined },
    what: string,
    op: (ch: Channel, call: CallOptions) => Promise<T>,
  ): Promise<T> {
    return this.withDeadline(options, what, ({ signal, left }) => this.topologyAttempts(signal, left, op));
  }

  private async topologyAttempts<T>(
    signal: AbortSignal | undefined,
    left: () => number | undefined,
    op: (ch: Channel, call: CallOptions) => Promise<T>,
  ): Promise<T> {
    const bounds = (): CallOptions => {
      const timeout = left();
      const call: CallOptions = {};
      if (signal !== undefined) call.signal = signal;
      if (timeout !== undefined) call.timeout = timeout;
      return call;
    };
    for (;;) {
      const session = await this.waitSession(signal);
      let channel: Channel | undefined;
      try {
        channel = await session.connection.openChannel(bounds());
        const result = await op(channel, bounds());
        void channel.close();
        return result;
      } catch (err) {
        if (channel?.isOpen) void channel.close();
        if (session.connection.isOpen) throw err;
        if (this.lifecycle !== 'open') throw this.closedError();
        // The connection died under the operation: do it again on the next one (all are idempotent).
      }
    }
  }

  // ------------------------------------------------------------------ close

  /** Closes the client (see `Client.close`). */
  close(options: { timeout?: number } = {}): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    if (this.lifecycle === 'closed') {
      this.closing = this.loop;
      return this.closing;
    }
    this.lifecycle = 'closing';
    this.closeDeadline = Date.now() + (options.timeout ?? this.closeTimeout);
    this.closing = this.shutdown(this.closeDeadline);
    return this.closing;
  }

  /** Milliseconds a connection may take to close: what is left of `close()`'s deadline. */
  private closeTimeLeft(): number {
    if (this.closeDeadline === undefined) return this.closeTimeout;
    const left = this.closeDeadline - Date.now();
    return Number.isNaN(left) ? 0 : Math.max(0, left);
  }

  private async shutdown(deadline: number): Promise<void> {
    const error = new ClosedError('the client was closed');
    const waiters = [...this.sessionWaiters];
    this.sessionWaiters.clear();
    for (const w of waiters) w.reject(error);
    // Subscriptions first: their handlers may still publish (RPC replies); then what was published.
    const parts = [...this.parts];
    await withDeadline(
      Promise.all(parts.filter((p) => p instanceof Subscription).map((p) => p.drain(deadline))),
      deadline,
    );
    await withDeadline(Promise.all([...this.parts].map((p) => p.drain(deadline))), deadline);
    this.lifecycle = 'closed';
    this.abortController.abort();
    for (const part of [...this.parts]) part.abort(error);
    // Whatever is left of the deadline, even on a blackholed connection: close() then drops the socket.
    const conn = this.connection;
    if (conn?.isOpen) await conn.close({ timeout: this.closeTimeLeft() });
    await this.loop;
    this.events.emit('close');
  }
}

function endpoint(options: ConnectionOptions, url: string | undefined): Endpoint {
  const merged: ConnectionOptions = url === undefined ? { ...options } : { ...options, url };
  const resolved = resolveOptions(merged); // throws InvalidArgumentError now rather than on every attempt
  const scheme = resolved.tls ? 'amqps' : 'amqp';
  return {
    options: merged,
    display: url === undefined ? `${scheme}://${resolved.host}:${resolved.port}` : redactUrl(url),
  };
}

function withDeadline(work: Promise<unknown>, deadline: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
    work.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      () => {
        clearTimeout(timer);
        resolve();
      },
    );
  });
}
