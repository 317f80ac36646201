/**
 * The AMQP connection: handshake, channel 0, frame demultiplexing to channels, close in both
 * directions, blocked/unblocked, update-secret and channel-id allocation. A connection dies once;
 * reconnecting is the robust client's job.
 *
 * @module
 */
import { SafeEmitter } from '../user-code.js';
import type { Duplex } from 'node:stream';
import { inspect } from 'node:util';
import {
  type AMQPError,
  ClosedError,
  CredentialsRefreshError,
  FrameError,
  HandshakeError,
  InvalidArgumentError,
  TimeoutError,
} from '../errors.js';
import {
  type MethodInputByName,
  type MethodName,
  METHOD_NAMES,
  type AMQPMethod,
} from '../protocol/generated/methods.js';
import { FRAME_MIN_SIZE, PROTOCOL_HEADER, REPLY_CODES } from '../protocol/generated/constants.js';
import type { BasicProperties } from '../protocol/generated/properties.js';
import type { FieldTable } from '../protocol/field-values.js';
import { hideFields } from '../redact.js';
import { FrameTransport } from '../transport/frame-transport.js';
import { openSocket } from '../transport/socket.js';
import { checkMechanism, saslResponse } from './auth.js';
import { ChannelTable } from './channel-table.js';
import { ChannelZeroRequests } from './channel-zero.js';
import { clientProperties } from './client-properties.js';
import { failureReason, serverCloseError } from './close-reasons.js';
import { CredentialRefresher } from './credential-refresh.js';
import { type ObtainedCredentials, obtainCredentials } from './credentials.js';
import type { ChannelEndpoint, PublishTarget } from './endpoint.js';
import { FrameTracer } from './frame-trace.js';
import type { ResolvedConnectionOptions } from './options.js';
import { type ConnectionState, nextState, publicState } from './connection-state.js';

/** Events of a connection. */
export interface ConnectionEvents {
  /** The connection closed: `undefined` after `close()`, otherwise why (server close, socket error, heartbeat loss…). */
  close: [error: AMQPError | undefined];
  /** The broker stopped reading from this connection (resource alarm); publishes will wait. */
  blocked: [reason: string];
  /** The broker reads again. */
  unblocked: [];
  /** Credentials given as a function were refreshed on this connection (connection.update-secret). */
  credentialsRefreshed: [info: { expiresAt: number | undefined }];
  /**
   * Refreshing them failed: the function threw (the connection goes on; it is asked again shortly),
   * or the broker refused the new secret (the connection is then closed with this error).
   */
  credentialsError: [error: CredentialsRefreshError];
}

/** Frame size used until tune: the spec's minimum, raised so a large connection.start still fits. */
const PRE_TUNE_FRAME_MAX = 131072;
/** How long `close()` waits for close-ok before dropping the socket. */
const CLOSE_TIMEOUT = 5000;
/** Longest delay a Node timer takes (longer ones fire at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Take the lower of two limits where 0 means "no limit" on that side. */
export function negotiate(client: number, server: number): number {
  if (client === 0) return server;
  if (server === 0) return client;
  return Math.min(client, server);
}

// No `implements ChannelHost`: that contract is internal and stripped from the .d.ts; new Channel(this)
// checks the fit where it matters.
export class ConnectionBase extends SafeEmitter<ConnectionEvents> {
  /** The transport (tests look at its buffers; channels see only the ChannelWriter methods). @internal */
  readonly transport: FrameTransport;
  /** Properties the broker sent in connection.start (product, version, capabilities…). */
  serverProperties: FieldTable = {};
  /** Negotiated limits. */
  channelMax = 0;
  heartbeat = 0;
  protected readonly options: ResolvedConnectionOptions;
  private readonly socket: Duplex;
  private state: ConnectionState = 'awaiting-start';
  private closeError: AMQPError | undefined;
  /** Takes every frame from the transport, decodes it and routes it: channel 0 here, any other to its channel. */
  private readonly channels = new ChannelTable(this);
  private readonly zero: ChannelZeroRequests;
  private blockedReason: string | undefined;
  /** @internal */
  readonly tracer: FrameTracer | undefined;
  // `closed` and `signal`, made when first asked for: a connection that nobody awaits or ties work
  // to needs neither.
  private closedPromise: Promise<AMQPError | undefined> | undefined = undefined;
  private resolveClosed: ((error: AMQPError | undefined) => void) | undefined = undefined;
  private lifetime: AbortController | undefined = undefined;
  private refresher: CredentialRefresher | undefined;

  protected constructor(socket: Duplex, options: ResolvedConnectionOptions) {
    super();
    this.socket = socket;
    this.options = options;
    this.tracer = FrameTracer.fromOption(options.debug);
    this.transport = new FrameTransport(socket, PRE_TUNE_FRAME_MAX, this.channels, this);
    this.zero = new ChannelZeroRequests(this.transport);
    if (this.tracer) {
      const tracer = this.tracer;
      this.transport.onWrite = (chunk) => tracer.outgoing(chunk);
    }
    // These hold the password and TLS keys (the socket keeps its TLS options, the encoder's buffers
    // held the SASL response): out of reach of JSON.stringify, Object.entries and object-walking loggers.
    hideFields(this, 'options', 'socket', 'transport');
  }

  /** Opens the socket (or uses `stream`, e.g. an in-memory one) and runs the handshake. */
  protected static async establish<T extends ConnectionBase>(
    options: ResolvedConnectionOptions,
    create: (socket: Duplex, options: ResolvedConnectionOptions) => T,
    stream?: Duplex,
  ): Promise<T> {
    if (options.frameMax !== 0 && options.frameMax < FRAME_MIN_SIZE) {
      throw new InvalidArgumentError(
        `frameMax must be 0 (no limit) or at least ${FRAME_MIN_SIZE}, got ${options.frameMax}`,
      );
    }
    // A secret that changes is asked for on every connect, so a reconnect never reuses an expired one.
    let obtained: ObtainedCredentials | undefined;
    if (options.credentials !== undefined) {
      obtained = await obtainCredentials(options.credentials);
      if (obtained.username !== undefined) options.username = obtained.username;
      options.password = obtained.password;
    }
    const deadline = Date.now() + options.connectionTimeout;
    const socket =
      stream ??
      (await openSocket({
        host: options.host,
        port: options.port,
        tls: options.tls,
        timeout: options.connectionTimeout,
        signal: options.signal,
      }));
    const conn = create(socket, options);
    await conn.handshake(Math.max(1, deadline - Date.now()));
    if (obtained !== undefined) conn.keepFresh(obtained);
    return conn;
  }

  /**
   * What `console.log(connection)` and `util.inspect` show: where it goes and its state, never the
   * options object, which holds the password and any TLS private key.
   */
  [inspect.custom](): string {
    const o = this.options;
    return `${this.constructor.name} { ${this.displayUrl()} vhost '${o.vhost}', ${publicState(this.state)} }`;
  }

  /** What `JSON.stringify(connection)` gives: where it goes and its state, no password. */
  toJSON(): { type: string; url: string; vhost: string; state: string } {
    return {
      type: this.constructor.name,
      url: this.displayUrl(),
      vhost: this.options.vhost,
      state: publicState(this.state),
    };
  }

  private displayUrl(): string {
    const o = this.options;
    return `${o.tls === false ? 'amqp' : 'amqps'}://${o.username}@${o.host}:${o.port}`;
  }

  /**
   * Aborts when the connection ends, for work tied to it (timers, fetches, loops): its `reason` is
   * the error that ended it, or a `ClosedError` after `close()`.
   *
   * @example
   * ```ts
   * const conn = await connect(url);
   * await fetch(reportUrl, { signal: conn.signal }); // abandoned if the connection dies meanwhile
   * ```
   */
  get signal(): AbortSignal {
    if (this.lifetime === undefined) {
      this.lifetime = new AbortController();
      if (this.state === 'closed') this.lifetime.abort(this.endReason());
    }
    return this.lifetime.signal;
  }

  /** Resolves when the connection has closed, with the reason (undefined for a clean close). */
  get closed(): Promise<AMQPError | undefined> {
    if (this.closedPromise === undefined) {
      this.closedPromise =
        this.state === 'closed'
          ? Promise.resolve(this.closeError)
          : new Promise((resolve) => {
              this.resolveClosed = resolve;
            });
    }
    return this.closedPromise;
  }

  /** Default time limit of synchronous channel methods, in milliseconds (0: none). @internal */
  get operationTimeout(): number {
    return this.options.operationTimeout;
  }

  /** True while the connection is open. */
  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** The negotiated frame-max (before tune: the size the handshake is read with). */
  get frameMax(): number {
    return this.transport.frameMax;
  }

  /** Why the connection closed, once it has. */
  get closeReason(): AMQPError | undefined {
    return this.closeError;
  }

  /** True while the broker has blocked this connection (resource alarm). */
  get isBlocked(): boolean {
    return this.blockedReason !== undefined;
  }

  /** The reason the broker gave in `connection.blocked`, while blocked. */
  get blockedBecause(): string | undefined {
    return this.blockedReason;
  }

  // ------------------------------------------------------------------ handshake

  private async handshake(timeoutMs: number): Promise<void> {
    const o = this.options;
    const timer = setTimeout(() => {
      this.fail(
        new TimeoutError(`the AMQP handshake with ${o.host}:${o.port} did not finish within ${o.connectionTimeout} ms`),
      );
    }, timeoutMs);
    const abort = () => this.fail(new HandshakeError('connect aborted', { reason: 'aborted' }));
    o.signal?.addEventListener('abort', abort, { once: true });
    try {
      this.socket.write(PROTOCOL_HEADER);
      const start = await this.zero.next(['connection.start']);
      this.serverProperties = start.args.serverProperties;
      checkMechanism(o.mechanism, start.args.mechanisms);
      this.advanceHandshake('authenticating');
      const tuneOrSecure = ['connection.tune', 'connection.secure'] as const;
      let next = await this.zero.request(
        'connection.start-ok',
        {
          clientProperties: clientProperties(o),
          mechanism: o.mechanism,
          response: saslResponse(o.mechanism, o.username, o.password),
          locale: o.locale,
        },
        tuneOrSecure,
      );
      while (next.name === 'connection.secure') {
        // PLAIN, AMQPLAIN and EXTERNAL never need a second round; answer as EXTERNAL would.
        next = await this.zero.request('connection.secure-ok', { response: Buffer.alloc(0) }, tuneOrSecure);
      }
      const tune = next.args;
      this.advanceHandshake('tuning');
      this.channelMax = negotiate(o.channelMax, tune.channelMax) || 65535;
      const frameMax = negotiate(o.frameMax, tune.frameMax) || 0xffffffff;
      this.heartbeat = negotiate(o.heartbeat, tune.heartbeat);
      this.channels.channelMax = this.channelMax;
      this.sendZero('connection.tune-ok', { channelMax: this.channelMax, frameMax, heartbeat: this.heartbeat });
      this.transport.setFrameMax(frameMax);
      this.transport.startHeartbeat(this.heartbeat);
      this.advanceHandshake('opening-vhost');
      await this.zero.request('connection.open', { virtualHost: o.vhost }, ['connection.open-ok']);
      // Closed between open-ok and now (e.g. a close in the same chunk): report that, not a dead connection.
      if (this.state !== 'open') throw this.closeError ?? new ClosedError('the connection closed during the handshake');
    } catch (err) {
      const error = this.closeError ?? (err as AMQPError);
      this.fail(error);
      throw error;
    } finally {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', abort);
    }
  }

  private sendZero<N extends MethodName>(name: N, args: MethodInputByName[N]): void {
    this.zero.send(name, args);
  }

  // ------------------------------------------------------------------ frames in (ChannelTableHost)

  /** @internal */
  get takesFrames(): boolean {
    return this.state !== 'closed';
  }

  /** @internal */
  frameFailed(error: FrameError): void {
    this.transport.fail(error);
  }

  /** @internal */
  onChannelZero(m: AMQPMethod): void {
    if (this.zero.awaits(m.name)) {
      // Open from open-ok on: a close arriving right behind it is an ordinary server close.
      if (m.name === 'connection.open-ok') this.moveTo('open');
      this.zero.answer(m);
      return;
    }
    switch (m.name) {
      case 'connection.close': {
        this.sendZero('connection.close-ok', {});
        const method = METHOD_NAMES.get(m.args.classId * 65536 + m.args.methodId);
        const error = serverCloseError(this.state, m.args, method, this.options);
        // Closed in answer to update-secret: the broker refused the new secret.
        const refused = this.zero.awaits('connection.update-secret-ok');
        this.fail(
          refused
            ? new CredentialsRefreshError(
                `the broker refused the refreshed secret and closed the connection (${m.args.replyCode} ${m.args.replyText})`,
                { cause: error },
              )
            : error,
        );
        return;
      }
      case 'connection.close-ok':
        if (this.state !== 'closing')
          throw new FrameError('connection.close-ok without a connection.close', REPLY_CODES.UNEXPECTED_FRAME);
        this.fail(undefined);
        return;
      case 'connection.blocked':
        this.blockedReason = m.args.reason;
        this.emit('blocked', m.args.reason);
        return;
      case 'connection.unblocked':
        this.blockedReason = undefined;
        this.emit('unblocked');
        return;
      default:
        throw new FrameError(`unexpected ${m.name} on channel 0`, REPLY_CODES.UNEXPECTED_FRAME);
    }
  }

  /** Moves to `next`; a move the state machine does not allow is a bug in this file. */
  private moveTo(next: ConnectionState): void {
    this.state = nextState(this.state, next);
  }

  /** The next handshake step, unless the connection died meanwhile (then why it did). */
  private advanceHandshake(next: ConnectionState): void {
    if (this.state === 'closed') throw this.closeError ?? new ClosedError('the connection closed during the handshake');
    this.moveTo(next);
  }

  /** The error for using a connection that is not open. */
  private notOpen(): ClosedError {
    const reason = this.closeError ? `: ${this.closeError.message}` : '';
    return new ClosedError(`the connection is ${publicState(this.state)}${reason}`, { cause: this.closeError });
  }

  // ------------------------------------------------------------------ channels

  /** @internal Allocates a channel id and registers the endpoint `create` makes for it. */
  protected allocateChannel<T extends ChannelEndpoint>(create: (id: number) => T): T {
    if (this.state !== 'open') throw this.notOpen();
    return this.channels.allocate(this.channelMax, create);
  }

  /** @internal */
  releaseChannel(id: number): void {
    this.channels.release(id);
  }

  // ------------------------------------------------------------------ ChannelWriter: the channels' way out

  /** @internal */
  get unusable(): AMQPError | undefined {
    return this.state === 'open' ? undefined : (this.closeError ?? this.notOpen());
  }

  /** @internal */
  sendMethod<N extends MethodName>(channel: number, name: N, args: MethodInputByName[N]): void {
    this.transport.encoder.method(channel, name, args);
  }

  /** @internal */
  sendPublish(channel: number, target: PublishTarget, properties: BasicProperties | undefined, body: Buffer): void {
    this.transport.encoder.publish(channel, target.exchange, target.routingKey, target.mandatory, properties, body);
  }

  /** @internal */
  scheduleFlush(): void {
    this.transport.scheduleFlush();
  }

  /** @internal */
  flushNow(): void {
    this.transport.flush();
  }

  /** @internal */
  beforeNextFlush(hook: () => void): void {
    this.transport.beforeNextFlush(hook);
  }

  /** @internal */
  afterNextFlush(hook: () => void): void {
    this.transport.afterNextFlush(hook);
  }

  /** @internal */
  get hasPendingWrites(): boolean {
    return this.transport.hasPendingWrites;
  }

  /** @internal */
  get writable(): boolean {
    return this.transport.writable;
  }

  /** @internal */
  waitWritable(): Promise<void> {
    return this.transport.waitWritable();
  }

  // ------------------------------------------------------------------ control

  /**
   * Replaces the credential of this connection without reconnecting (connection.update-secret),
   * e.g. a refreshed OAuth 2 token. With no answer within `timeout` ms (default
   * `operationTimeout`; none when 0), the connection is closed with `TimeoutError`: a late
   * update-secret-ok could not be told from a reply to anything else.
   *
   * @example
   * ```ts
   * await conn.updateSecret(freshToken, 'token refresh', { timeout: 5000 });
   * ```
   */
  async updateSecret(
    newSecret: string | Buffer,
    reason = 'token refresh',
    options?: { timeout?: number },
  ): Promise<void> {
    this.assertOpen();
    const timeout = options?.timeout ?? this.options.operationTimeout;
    if (typeof timeout !== 'number' || !(timeout >= 0)) {
      throw new InvalidArgumentError(`timeout must be 0 or more milliseconds, got ${String(timeout)}`);
    }
    const timer =
      timeout > 0
        ? setTimeout(
            () =>
              this.transport.fail(
                new TimeoutError(
                  `the broker did not answer connection.update-secret within ${timeout} ms; the connection was closed`,
                ),
              ),
            Math.min(timeout, MAX_TIMER_MS),
          )
        : undefined;
    try {
      await this.zero.request('connection.update-secret', { newSecret, reason }, ['connection.update-secret-ok']);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Refreshes credentials given as a function at 80% of their lifetime, if they expire. */
  private keepFresh(current: ObtainedCredentials): void {
    const provider = this.options.credentials;
    if (provider === undefined) return;
    const conn = this;
    this.refresher = new CredentialRefresher(provider, {
      get isOpen() {
        return conn.state === 'open';
      },
      updateSecret: (secret, reason) => this.updateSecret(secret, reason),
      refreshed: (next) => {
        this.options.password = next.password;
        this.emit('credentialsRefreshed', { expiresAt: next.expiresAt });
      },
      refreshFailed: (error) => this.emit('credentialsError', error),
    });
    this.refresher.schedule(current);
  }

  private assertOpen(): void {
    if (this.state !== 'open') throw this.notOpen();
  }

  /**
   * Closes the connection (connection.close) and every channel on it: what is pending on them
   * rejects with `ClosedError`. Resolves once the broker has answered close-ok, or after `timeout`
   * milliseconds (default 5000) at most: then the socket is destroyed without waiting any longer, so
   * a broker that does not answer (a blackholed network) cannot hold `close()` up.
   * Rejects only for an invalid `timeout` (`InvalidArgumentError`). Idempotent; a second call waits for the
   * first. A string is taken as `{ reason }`.
   *
   * @example
   * ```ts
   * await conn.close({ timeout: 1000 });   // at most about a second, whatever the network does
   * ```
   */
  async close(options: string | { reason?: string; timeout?: number } = {}): Promise<void> {
    const { reason = 'Goodbye', timeout = CLOSE_TIMEOUT } = typeof options === 'string' ? { reason: options } : options;
    if (!(timeout >= 0)) throw new InvalidArgumentError(`timeout must be 0 or more milliseconds, got ${timeout}`);
    if (this.state === 'closed') return;
    if (this.state === 'closing') {
      await this.closed;
      return;
    }
    this.moveTo('closing');
    // What the channels hold back or wait to write (acks above all) goes before the close: the
    // broker ignores whatever follows connection.close.
    for (const ch of this.channels) ch.onConnectionClosing();
    this.transport.flush();
    this.transport.encoder.method(0, 'connection.close', {
      replyCode: REPLY_CODES.REPLY_SUCCESS,
      replyText: reason,
      classId: 0,
      methodId: 0,
    });
    this.transport.flush();
    const timer = setTimeout(
      () => {
        // No close-ok in time: end here, and drop the socket rather than wait on a peer that is gone.
        this.fail(undefined);
        this.transport.destroy();
      },
      Math.min(timeout, MAX_TIMER_MS),
    );
    timer.unref();
    await this.closed;
    clearTimeout(timer);
  }

  /** `await using conn = await connect(url)` closes the connection at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Ends the connection once: with `error` (it died) or `undefined` (clean close). Everything pending
   * is rejected and every channel told.
   */
  private fail(error: AMQPError | undefined): void {
    if (this.state === 'closed') return;
    error = failureReason(this.state, error, this.options);
    this.moveTo('closed');
    this.closeError = error;
    this.refresher?.stop();
    if (error instanceof FrameError) {
      // Tell the peer why, as the spec asks, while the socket may still be writable. The transport
      // may already count as failed (the decoder found the error), so write to the socket directly.
      try {
        this.transport.encoder.method(0, 'connection.close', {
          replyCode: error.replyCode,
          replyText: error.message.slice(0, 255),
          classId: 0,
          methodId: 0,
        });
        this.socket.write(Buffer.concat(this.transport.encoder.take()));
      } catch {
        // The socket is gone; nothing more to say.
      }
    }
    this.transport.fail(error ?? new ClosedError('connection closed'));
    this.transport.end();
    const reason = this.endReason();
    this.zero.rejectAll(reason);
    for (const ch of this.channels) ch.onConnectionLost(reason);
    this.lifetime?.abort(reason);
    this.resolveClosed?.(error);
    this.resolveClosed = undefined;
    this.emit('close', error);
  }

  /** @internal The transport died (socket error or end, heartbeat loss, a malformed frame). */
  onFailure(error: AMQPError): void {
    this.fail(error);
  }

  /** What pending work is rejected with, and `signal` aborted with, once the connection has ended. */
  private endReason(): AMQPError {
    return this.closeError ?? new ClosedError('the connection was closed');
  }
}
