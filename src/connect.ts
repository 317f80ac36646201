/**
 * `connect()` and the public `Connection`: the connection layer plus `openChannel()`.
 *
 * @module
 */
import type { Duplex } from 'node:stream';
import { type CallOptions, Channel } from './channel/channel.js';
import { ConnectionBase } from './connection/connection-base.js';
import { type ConnectionOptions, type ResolvedConnectionOptions, resolveOptions } from './connection/options.js';
import { disposable } from './dispose.js';
import { type AMQPError, InvalidArgumentError } from './errors.js';

/**
 * An open AMQP connection. Get one with {@link connect}. It dies once: when it closes (`'close'`
 * event, `closed` promise) open a new one, or use `createClient()`, which does that for you.
 *
 * @example
 * ```ts
 * const conn = await connect('amqp://guest:guest@127.0.0.1:5672');
 * conn.on('close', (err) => console.log('closed', err?.message));
 * const ch = await conn.openChannel();
 * await conn.close();
 * ```
 */
export class Connection extends ConnectionBase {
  private constructor(socket: Duplex, options: ResolvedConnectionOptions) {
    super(socket, options);
  }

  /** @internal */
  static open(options: ResolvedConnectionOptions): Promise<Connection> {
    return ConnectionBase.establish<Connection>(options, (socket, o) => new Connection(socket, o));
  }

  /**
   * @internal Runs a connection over an already-open byte stream (an in-memory socket in tests and
   * fuzzers, or a custom tunnel).
   */
  static overStream(stream: Duplex, options: ConnectionOptions = {}): Promise<Connection> {
    return ConnectionBase.establish<Connection>(
      resolveOptions(options),
      (socket, o) => new Connection(socket, o),
      stream,
    );
  }

  /**
   * Opens a new channel (channel.open). `timeout` and `signal` bound the wait for open-ok, as for
   * every channel method (see `CallOptions`).
   */
  async openChannel(options?: CallOptions): Promise<Channel> {
    const channel = this.allocateChannel((id) => new Channel(this, id));
    await channel.open(options);
    return channel;
  }

  /** Host and port this connection went to. */
  get endpoint(): { host: string; port: number; vhost: string } {
    return { host: this.options.host, port: this.options.port, vhost: this.options.vhost };
  }
}

disposable(Connection.prototype, 'close');

/**
 * Opens a connection and runs the AMQP handshake.
 *
 * Accepts a URL (`amqp://user:pass@host:port/vhost?heartbeat=30&frame_max=131072&channel_max=2047&connection_timeout=10000`,
 * or `amqps://` for TLS), an options object, or an array of URLs tried in order until one works.
 * Explicit `options` override what the URL says.
 *
 * @example
 * ```ts
 * const conn = await connect('amqp://guest:guest@127.0.0.1:5672/%2f?heartbeat=30', { name: 'svc-a' });
 * ```
 * @throws `AuthenticationError` for refused credentials, `HandshakeError` for a refused vhost,
 *   `SocketError` / `TimeoutError` when the broker cannot be reached, `InvalidArgumentError` for a bad URL.
 */
export async function connect(
  target: string | readonly string[] | ConnectionOptions = {},
  options: ConnectionOptions = {},
): Promise<Connection> {
  if (Array.isArray(target)) {
    if (target.length === 0) throw new InvalidArgumentError('connect() needs at least one URL');
    let lastError: AMQPError | undefined;
    for (const url of target as readonly string[]) {
      try {
        return await Connection.open(resolveOptions({ ...options, url }));
      } catch (err) {
        if (err instanceof InvalidArgumentError) throw err;
        lastError = err as AMQPError;
      }
    }
    throw lastError;
  }
  const resolved =
    typeof target === 'string'
      ? resolveOptions({ ...options, url: target })
      : resolveOptions({ ...(target as ConnectionOptions), ...options });
  return Connection.open(resolved);
}
