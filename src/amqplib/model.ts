/**
 * amqplib's `connect()` and `ChannelModel` on top of warren's `connect()`, with opt-in recovery:
 * `connect(url, { recover: true })` reconnects with backoff and has every channel replay its
 * topology and consumers, so that application code written for amqplib keeps running across
 * broker restarts and network cuts.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import type * as tls from 'node:tls';
import { Backoff, type BackoffOptions } from '../client/backoff.js';
import { sleep } from '../client/waiting.js';
import { connect as warrenConnect, type Connection as WarrenConnection } from '../connect.js';
import type { AuthMechanism, ConnectionOptions } from '../connection/options.js';
import {
  type AMQPError,
  AuthenticationError,
  ConnectionClosedByServer,
  HandshakeError,
  REPLY_CODES,
  SocketError,
} from '../errors.js';
import { fromFieldTable, toFieldTable } from './args.js';
import { Channel, type ChannelOwner, ConfirmChannel, type ConnectionFacade } from './channel.js';
import { IllegalOperationError, toAmqplibError } from './errors.js';
import type { HeaderValue, Options, ServerProperties } from './types.js';

/** A SASL credential as amqplib's `credentials.plain()` / `amqplain()` / `external()` make it. */
export interface Credentials {
  mechanism: string;
  response(): Buffer;
  username?: string;
  password?: string;
}

/** warren's recovery settings (the `recover` socket option). */
export interface RecoverOptions extends BackoffOptions {
  /** Reconnect attempts in a row before giving up (then `'close'` with the last error). Default unlimited. */
  maxRetries?: number;
  /** Publishes a channel holds while reconnecting; `publish` returns false from half of it and throws beyond it. Default 10000. */
  maxBuffered?: number;
}

/**
 * amqplib's socket options (the second argument of `connect`) plus warren's `recover`.
 * TLS options (`ca`, `cert`, `key`, `pfx`, `passphrase`, `servername`, `rejectUnauthorized`, …) are
 * used for `amqps://`.
 */
export interface SocketOptions extends tls.ConnectionOptions {
  /** Client properties sent to the broker; `connection_name` names the connection in the management UI. */
  clientProperties?: Record<string, HeaderValue>;
  /** SASL mechanism and credential, from `credentials.plain()`, `amqplain()` or `external()`. */
  credentials?: Credentials;
  /** Milliseconds allowed for the socket to connect and the handshake to finish. */
  timeout?: number;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveDelay?: number;
  /**
   * warren only: reconnect automatically and restore every channel (declarations, bindings,
   * prefetch, consumers, unconfirmed publishes). `true` for the defaults, or backoff settings.
   */
  recover?: boolean | RecoverOptions;
}

const DEFAULT_MAX_BUFFERED = 10_000;

/** The amqplib spellings of URL query keys that warren spells with underscores. */
function normaliseUrl(url: string): string {
  return url.replace(/([?&])(frameMax|channelMax)=/g, (_m, sep: string, key: string) =>
    key === 'frameMax' ? `${sep}frame_max=` : `${sep}channel_max=`,
  );
}

const TLS_KEYS = [
  'ca',
  'cert',
  'key',
  'pfx',
  'passphrase',
  'servername',
  'rejectUnauthorized',
  'checkServerIdentity',
  'ciphers',
  'minVersion',
  'maxVersion',
  'secureContext',
] as const;

/** @internal amqplib's connect arguments as warren connection options. */
export function toConnectionOptions(
  target: string | Options.Connect | undefined,
  socket: SocketOptions,
): ConnectionOptions {
  const o: ConnectionOptions = {};
  if (typeof target === 'string') {
    o.url = normaliseUrl(target);
    const locale = /[?&]locale=([^&#]*)/.exec(target);
    if (locale?.[1] !== undefined) o.locale = decodeURIComponent(locale[1]);
  } else {
    const t = target ?? {};
    const secure = t.protocol === 'amqps' || t.protocol === 'amqps:';
    o.host = t.hostname ?? 'localhost';
    o.port = t.port ?? (secure ? 5671 : 5672);
    o.username = t.username ?? 'guest';
    o.password = t.password ?? 'guest';
    o.vhost = t.vhost ?? '/';
    if (secure) o.tls = true;
    if (t.locale !== undefined) o.locale = t.locale;
    if (t.frameMax !== undefined) o.frameMax = t.frameMax;
    if (t.channelMax !== undefined) o.channelMax = t.channelMax;
    if (t.heartbeat !== undefined) o.heartbeat = t.heartbeat;
  }
  const tlsOptions: tls.ConnectionOptions = {};
  let anyTls = false;
  for (const key of TLS_KEYS) {
    if (socket[key] !== undefined) {
      (tlsOptions as Record<string, unknown>)[key] = socket[key];
      anyTls = true;
    }
  }
  const secureUrl = typeof target === 'string' && /^amqps:/i.test(target);
  if (anyTls && (secureUrl || o.tls === true)) o.tls = tlsOptions;
  if (socket.clientProperties !== undefined) {
    const props = toFieldTable(socket.clientProperties);
    o.clientProperties = props;
    const name = props.connection_name;
    if (typeof name === 'string') o.name = name;
  }
  if (socket.credentials !== undefined) {
    const c = socket.credentials;
    o.mechanism = c.mechanism as AuthMechanism;
    if (c.username !== undefined) o.username = c.username;
    if (c.password !== undefined) o.password = c.password;
  }
  if (socket.timeout !== undefined) o.connectionTimeout = socket.timeout;
  return o;
}

/** A connection failure that reconnecting cannot fix. */
function permanent(error: AMQPError): boolean {
  return error instanceof AuthenticationError || (error instanceof HandshakeError && error.reason !== 'closed');
}

/** Broker closes amqplib reports as `'error'` too (all but a forced close and a clean one). */
function fatal(error: AMQPError): boolean {
  return !(
    error instanceof ConnectionClosedByServer &&
    (error.replyCode === REPLY_CODES.CONNECTION_FORCED || error.replyCode === REPLY_CODES.REPLY_SUCCESS)
  );
}

/**
 * An open connection with amqplib's API. Get one with {@link connect}.
 *
 * Events: `'close'` (with the error, unless closed by `close()`), `'error'` (a fatal close; only
 * emitted when someone listens), `'blocked'` (reason), `'unblocked'`, `'update-secret-ok'`; with
 * `recover`: `'disconnect'` (error), `'reconnect'` (every channel restored), `'reconnect-failed'`.
 *
 * @example
 * ```ts
 * import amqp from 'warren/amqplib';
 * const conn = await amqp.connect('amqp://localhost', { recover: true });
 * conn.on('disconnect', (err) => console.warn('reconnecting:', err.message));
 * const ch = await conn.createChannel();
 * await conn.close();
 * ```
 */
export class ChannelModel extends EventEmitter {
  /** amqplib's connection object; `serverProperties` is what applications read from it. */
  readonly connection: ConnectionFacade;
  private conn: WarrenConnection | undefined;
  private readonly channels = new Set<Channel>();
  private readonly options: ConnectionOptions;
  private readonly recoverOptions: RecoverOptions | undefined;
  private state: 'open' | 'recovering' | 'closing' | 'closed' = 'open';
  private waiters: { resolve(conn: WarrenConnection): void; reject(err: Error): void }[] = [];
  private readonly owner: ChannelOwner;

  /** @internal Use {@link connect}. */
  constructor(conn: WarrenConnection, options: ConnectionOptions, recover: RecoverOptions | undefined) {
    super();
    this.options = options;
    this.recoverOptions = recover;
    this.connection = makeFacade();
    const model = this;
    this.owner = {
      recover: recover !== undefined,
      maxBuffered: recover?.maxBuffered ?? DEFAULT_MAX_BUFFERED,
      get closing() {
        return model.state === 'closing' || model.state === 'closed';
      },
      connection: this.connection,
      current: () => this.conn,
      unhandledChannelError: (error) => this.unhandledChannelError(error),
      forget: (channel) => this.channels.delete(channel),
    };
    this.use(conn);
  }

  private use(conn: WarrenConnection): void {
    this.conn = conn;
    this.connection.serverProperties = fromFieldTable(conn.serverProperties) as ServerProperties;
    conn.on('blocked', (reason) => this.emitSafely('blocked', reason));
    conn.on('unblocked', () => this.emitSafely('unblocked'));
    conn.on('close', (err) => this.onClose(conn, err));
  }

  private emitSafely(event: string, ...args: unknown[]): void {
    try {
      this.emit(event, ...args);
    } catch (err) {
      process.emitWarning(`warren/amqplib: a '${event}' listener of the connection threw: ${String(err)}`);
    }
  }

  private unhandledChannelError(error: Error): void {
    if (this.listenerCount('error') > 0) this.emitSafely('error', error);
    else process.emitWarning(`warren/amqplib: channel error with no 'error' listener: ${error.message}`);
  }

  private onClose(conn: WarrenConnection, err: AMQPError | undefined): void {
    if (conn !== this.conn) return;
    this.conn = undefined;
    if (this.state === 'closing' || this.state === 'closed' || err === undefined) {
      this.end(undefined);
      return;
    }
    const error = toAmqplibError(err);
    if (this.recoverOptions !== undefined && !permanent(err)) {
      this.state = 'recovering';
      this.emitSafely('disconnect', error);
      void this.reconnect(this.recoverOptions);
      return;
    }
    if (fatal(err) && this.listenerCount('error') > 0) this.emitSafely('error', error);
    this.end(error);
  }

  private end(error: Error | undefined): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(error ?? new IllegalOperationError('Connection closed'));
    this.emitSafely('close', error);
  }

  private async reconnect(recover: RecoverOptions): Promise<void> {
    const backoff = new Backoff(recover);
    const maxRetries = recover.maxRetries ?? Number.POSITIVE_INFINITY;
    let lastError: Error | undefined;
    for (let round = 1; round <= maxRetries; round++) {
      await sleep(backoff.delay(round));
      if (this.state !== 'recovering') return;
      let conn: WarrenConnection;
      try {
        conn = await warrenConnect(this.options);
      } catch (err) {
        lastError = connectError(err as AMQPError);
        this.emitSafely('connect-failed', lastError);
        if (permanent(err as AMQPError)) break;
        continue;
      }
      if (this.state !== 'recovering') {
        await conn.close().catch(() => {});
        return;
      }
      this.use(conn);
      try {
        for (const ch of [...this.channels]) await ch.reopen(conn);
      } catch (err) {
        // The new connection died during the replay: its 'close' starts the next round.
        lastError = toAmqplibError(err as AMQPError);
        if (this.conn === conn) await conn.close('replay failed').catch(() => {});
        return;
      }
      if (this.conn !== conn) return;
      this.state = 'open';
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w.resolve(conn);
      this.emitSafely('reconnect');
      return;
    }
    this.emitSafely('reconnect-failed', lastError);
    for (const ch of [...this.channels]) await ch.close().catch(() => {});
    this.end(lastError);
  }

  private live(): Promise<WarrenConnection> {
    if (this.state === 'open' && this.conn !== undefined) return Promise.resolve(this.conn);
    if (this.state === 'recovering') return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
    return Promise.reject(new IllegalOperationError('Connection closed'));
  }

  /** Opens a channel. */
  async createChannel(_options?: { highWaterMark?: number }): Promise<Channel> {
    return this.open(new Channel(this.owner, false));
  }

  /** Opens a channel in confirm mode (`publish` takes a callback; `waitForConfirms`). */
  async createConfirmChannel(_options?: { highWaterMark?: number }): Promise<ConfirmChannel> {
    return this.open(new ConfirmChannel(this.owner, true));
  }

  private async open<T extends Channel>(channel: T): Promise<T> {
    for (;;) {
      const conn = await this.live();
      try {
        await channel.start(conn);
        this.channels.add(channel);
        return channel;
      } catch (err) {
        if (this.state === 'recovering') continue;
        throw toAmqplibError(err as AMQPError);
      }
    }
  }

  /** Closes the connection and every channel on it. Rejects with IllegalOperationError if already closed. */
  async close(): Promise<void> {
    if (this.state === 'closed' || this.state === 'closing') throw new IllegalOperationError('Connection closed');
    const recovering = this.state === 'recovering';
    this.state = 'closing';
    const conn = this.conn;
    if (conn === undefined || recovering) {
      for (const ch of [...this.channels]) await ch.close().catch(() => {});
      await conn?.close();
      this.end(undefined);
      return;
    }
    await conn.close();
    this.end(undefined);
  }

  /** Replaces the connection's credential (connection.update-secret), e.g. a refreshed OAuth 2 token. */
  async updateSecret(newSecret: Buffer | string, reason: string): Promise<void> {
    const conn = await this.live();
    try {
      await conn.updateSecret(newSecret, reason);
    } catch (err) {
      throw toAmqplibError(err as AMQPError);
    }
    this.emitSafely('update-secret-ok');
  }
}

function makeFacade(): ConnectionFacade {
  const facade = new EventEmitter() as ConnectionFacade;
  facade.serverProperties = {} as ServerProperties;
  facade.expectSocketClose = false;
  facade.sentSinceLastCheck = false;
  facade.recvSinceLastCheck = false;
  facade.sendMessage = () => {
    throw new IllegalOperationError('warren/amqplib does not expose the raw connection; use the channel API');
  };
  return facade;
}

/**
 * Opens a connection, as amqplib's `connect`: a URL (`amqp://user:pass@host:5672/vhost?heartbeat=30`)
 * or an object (`{ hostname, port, username, password, vhost, heartbeat, frameMax }`), and socket
 * options. Add `recover: true` to the socket options for automatic reconnection with topology and
 * consumer recovery.
 *
 * @example
 * ```ts
 * import amqp from 'warren/amqplib';
 * const conn = await amqp.connect('amqp://guest:guest@localhost', { recover: true });
 * ```
 * @throws the underlying warren error (e.g. `SocketError`, `AuthenticationError`) when the broker
 *   cannot be reached or refuses the credentials.
 */
export async function connect(url?: string | Options.Connect, socketOptions?: SocketOptions): Promise<ChannelModel> {
  const socket = socketOptions ?? {};
  if ((socket as { recovery?: unknown }).recovery !== undefined) {
    throw new TypeError(
      "warren/amqplib does not implement amqplib 2's `recovery` option; use `recover: true`, which also restores channels, topology and consumers (see docs/migrating-from-amqplib.md)",
    );
  }
  const options = toConnectionOptions(url, socket);
  const recover = socket.recover === true ? {} : socket.recover === false ? undefined : socket.recover;
  let conn: WarrenConnection;
  try {
    conn = await warrenConnect(options);
  } catch (err) {
    throw connectError(err as AMQPError);
  }
  return new ChannelModel(conn, options, recover);
}

/**
 * What amqplib rejects `connect` with: the system error itself (`err.code === 'ECONNREFUSED'`) when
 * the socket failed, otherwise warren's typed error (e.g. `AuthenticationError`).
 */
function connectError(err: AMQPError): Error {
  const cause = err.cause;
  if (err instanceof SocketError && cause instanceof Error && typeof (cause as { code?: unknown }).code === 'string') {
    return cause;
  }
  return toAmqplibError(err);
}
