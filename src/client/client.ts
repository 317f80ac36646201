/**
 * The robust client's public methods: topology that is recorded and replayed, publishers,
 * subscriptions, the async-iterator consumer, RPC, and `createClient()`.
 *
 * @module
 */
import type { ExchangeDeclareOptions, QueueDeclareOptions, QueueDeclareResult } from '../channel/channel.js';
import { exchangeArguments, queueArguments } from '../channel/declare-options.js';
import type { FieldTable } from '../protocol/field-values.js';
import { inspect } from 'node:util';
import type { CallOptions, Channel } from '../channel/channel.js';
import { disposable } from '../dispose.js';
import type { Connection } from '../connect.js';
import { hideFields } from '../redact.js';
import { SafeEmitter } from '../user-code.js';
import { ClientCore } from './client-core.js';
import type { ClientEvents, ClientOptions } from './client-options.js';
import type { ClientHost } from './host.js';
import type { Logger } from './logger.js';
import { type ClientHealth, type ClientStats, describeError, healthOf, partStats, StatsCounters } from './stats.js';
import { clientMetrics } from '../tracing/metrics.js';
import { watchClient } from './watch.js';
import { type Decoded, encodeBody } from './codecs.js';
import { Subscription } from './subscription.js';
import type { SubscribeOptions, SubscriptionHandler } from './subscription-options.js';
import { MessageIterator, type MessageIteratorOptions } from './consumer-iterator.js';
import { Publisher } from './publisher.js';
import type { PublisherOptions } from './publisher-options.js';
import type { RetryTransport } from './retry.js';
import { RpcClient, type RpcOptions } from './rpc.js';
import { createRpcServer, type RpcHandler, type RpcServerOptions } from './rpc-server.js';

/**
 * The deadline of a client operation (declare, bind, delete, purge, `ready()`): abandoned when
 * `signal` fires (`AbortError`) or after `timeout` ms (`TimeoutError`), whether it is waiting for a
 * connection or for the broker's reply. Without `timeout` it waits for a connection as long as it
 * takes, and each AMQP method on it for `operationTimeout` at most.
 *
 * @example
 * ```ts
 * await client.declareQueue('jobs', { durable: true, timeout: 5000 });
 * await client.bindQueue('jobs', 'orders', '#', { signal: AbortSignal.timeout(5000) });
 * ```
 */
export interface WaitOptions {
  /** Abandons the operation with `AbortError`. */
  signal?: AbortSignal;
  /** Milliseconds the whole operation may take, waiting for a connection included; then `TimeoutError`. */
  timeout?: number;
}

/**
 * Options of `bindQueue`/`unbindQueue`/`bindExchange`/`unbindExchange`.
 *
 * @example
 * ```ts
 * await client.bindQueue('eu-orders', 'orders-by-region', '', { arguments: { 'x-match': 'all', region: 'eu' } });
 * ```
 */
export interface BindOptions extends WaitOptions {
  arguments?: FieldTable;
}

/**
 * The robust AMQP client. Create one with {@link createClient}.
 *
 * @example
 * ```ts
 * await using client = createClient({ urls: ['amqp://guest:guest@127.0.0.1:5672'], name: 'svc' });
 * await client.declareQueue('jobs', { durable: true });
 * const pub = client.publisher();
 * await pub.publish('', 'jobs', Buffer.from('hello'), { deliveryMode: 2 });
 * client.consume('jobs', async (msg) => console.log(msg.body.toString()));
 * ```
 */
export class Client extends SafeEmitter<ClientEvents> {
  /** The connection cycle, topology and parts; this class adds the public methods. */
  private readonly core: ClientCore;
  /** What the parts see of the client (the core's). */
  private readonly host: ClientHost;
  private retryTransport: RetryTransport | undefined;
  private rpcClient: RpcClient | undefined;
  private replyPublisher: Publisher | undefined;
  private readonly logger: Logger | undefined;
  private readonly counters = new StatsCounters();

  /** @internal Use `createClient()`. */
  constructor(options: ClientOptions) {
    super();
    this.core = new ClientCore(options, this);
    this.host = this.core.host;
    this.logger = options.logger;
    // The core leads to the endpoints (passwords, TLS keys) and the connection.
    hideFields(this, 'core', 'host', 'rpcClient', 'replyPublisher', 'retryTransport');
    this.host.metrics = clientMetrics({
      publishers: () => partStats(this.core.liveParts).publishers,
      consumers: () => partStats(this.core.liveParts).consumers,
    });
    watchClient(this, this.counters, this.logger, this.host.metrics);
  }

  /**
   * What `console.log(client)` and `util.inspect` show: the endpoints (passwords redacted) and the
   * state, never the options, which hold credentials and TLS keys.
   */
  [inspect.custom](): string {
    const core = this.core;
    return `${this.constructor.name} { ${core.displayUrls.join(', ')}, ${core.state}${core.session ? ', connected' : ''} }`;
  }

  /** What `JSON.stringify(client)` gives: the endpoints (passwords redacted) and the state. */
  toJSON(): { type: string; urls: string[]; state: string; connected: boolean } {
    const core = this.core;
    return {
      type: this.constructor.name,
      urls: core.displayUrls,
      state: core.state,
      connected: core.session !== undefined,
    };
  }

  /** True while a connection is up and its topology replayed. */
  get isConnected(): boolean {
    return this.core.session !== undefined;
  }

  /**
   * The lifetime signal of the current connection (see `Connection.signal`): it aborts, with the
   * reason, when that connection ends, for work that belongs to one session (a per-connection
   * lease, a cache of server-named queues). `undefined` while not connected; take it again after
   * the next `'connect'`.
   *
   * @example
   * ```ts
   * client.on('connect', () => startHeartbeatReport({ signal: client.sessionSignal }));
   * ```
   */
  get sessionSignal(): AbortSignal | undefined {
    return this.core.session?.connection.signal;
  }

  /** True while the broker blocks publishing on the current connection. */
  get isBlocked(): boolean {
    return this.core.isBlocked;
  }

  /** True once `close()` was called or the client failed. */
  get isClosed(): boolean {
    return this.core.state !== 'open';
  }

  /** What the topology registry holds (for diagnostics). */
  get recordedTopology(): { exchanges: number; queues: number; bindings: number } {
    return this.core.topology.size;
  }

  /** The current connection (tests reach it to cut it). */
  private get connection(): Connection | undefined {
    return this.core.liveConnection;
  }

  /**
   * Resolves once connected (and the recorded topology replayed). Rejects with the client's
   * unrecoverable error (e.g. `AuthenticationError`, `ConnectionAttemptsExhausted`), `ClosedError`
   * after close, `AbortError` when `signal` fires, or `TimeoutError` after `timeout` ms. Takes a
   * signal, or `{ signal, timeout }`.
   *
   * @example
   * ```ts
   * await client.ready({ timeout: 10_000 });
   * await client.ready(AbortSignal.timeout(10_000)); // AbortError instead of TimeoutError
   * ```
   */
  ready(options?: AbortSignal | { signal?: AbortSignal; timeout?: number }): Promise<void> {
    return this.core.ready(options);
  }

  /**
   * Closes the client: stops subscriptions (waiting for running handlers), waits for in-flight
   * publishes to be confirmed — at most `timeout` ms (default `closeTimeout`, 10000) in all — then
   * closes the connection. What is still pending then rejects with `ClosedError`. Afterwards every
   * method rejects (or throws) `ClosedError`. Idempotent; never rejects.
   *
   * The deadline holds even when the broker does not answer (a blackholed network): closing the
   * connection gets what is left of `timeout`, and then the socket is destroyed without waiting for
   * the broker's close-ok, leaving no socket or timer behind.
   *
   * @example
   * ```ts
   * process.on('SIGTERM', () => void client.close({ timeout: 5000 }));
   * ```
   */
  close(options: { timeout?: number } = {}): Promise<void> {
    return this.core.close(options);
  }

  // ------------------------------------------------------------------ observability

  /**
   * A plain snapshot of the client (JSON-serialisable): state, the node connected to and since
   * when, reconnects, the last error, publishes pending and in flight, each subscription with its
   * prefetch. Costs nothing until called.
   *
   * @example
   * ```ts
   * const { state, connection, reconnects, publishers, consumers } = client.stats();
   * ```
   */
  stats(): ClientStats {
    const session = this.host.session;
    const failure = this.core.failure;
    const connection = session?.connection;
    const props = connection?.serverProperties ?? {};
    const text = (v: unknown): string | undefined =>
      typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString() : undefined;
    return {
      state: this.stateName(),
      connection:
        connection === undefined || session === undefined
          ? undefined
          : {
              url: this.counters.url ?? '',
              ...connection.endpoint,
              cluster: text(props.cluster_name),
              version: text(props.version),
              since: new Date(this.counters.since ?? Date.now()).toISOString(),
              generation: session.generation,
            },
      reconnects: this.counters.reconnects,
      connectFailures: this.counters.connectFailures,
      lastError: failure === undefined ? this.counters.lastError : describeError(failure),
      blocked: this.isBlocked,
      ...partStats(this.core.liveParts),
    };
  }

  /**
   * For a readiness probe: `ok` while connected, not blocked, and every subscription subscribed;
   * `reasons` lists what is wrong otherwise.
   *
   * @example
   * ```ts
   * http.createServer((req, res) => {
   *   const health = client.health();
   *   res.writeHead(health.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(health));
   * }).listen(8080);
   * ```
   */
  health(): ClientHealth {
    return healthOf(this.stats());
  }

  private stateName(): ClientStats['state'] {
    const state = this.core.state;
    if (state === 'closed') return this.core.failure === undefined ? 'closed' : 'failed';
    if (state === 'closing') return 'closing';
    if (this.isConnected) return 'connected';
    return this.counters.connects === 0 ? 'connecting' : 'reconnecting';
  }

  // ------------------------------------------------------------------ topology

  /**
   * Declares an exchange (recorded and declared again on every new connection).
   *
   * @example
   * ```ts
   * await client.declareExchange('orders', 'topic', { durable: true });
   * ```
   */
  async declareExchange(name: string, type: string, options: ExchangeDeclareOptions & WaitOptions = {}): Promise<void> {
    const { signal, timeout, ...declare } = options;
    exchangeArguments(declare); // refuses a bad option now, not after waiting for a connection
    await this.topologyOp({ signal, timeout }, 'declareExchange', (ch, call) =>
      ch.exchangeDeclare(name, type, { ...declare, ...call }),
    );
    this.topology.recordExchange(name, type, declare);
  }

  /**
   * Deletes an exchange and forgets it and its bindings.
   *
   * @example
   * ```ts
   * await client.deleteExchange('orders');
   * ```
   */
  async deleteExchange(name: string, options: { ifUnused?: boolean } & WaitOptions = {}): Promise<void> {
    const { signal, timeout, ...rest } = options;
    await this.topologyOp({ signal, timeout }, 'deleteExchange', (ch, call) =>
      ch.exchangeDelete(name, { ...rest, ...call }),
    );
    this.topology.removeExchange(name);
  }

  /**
   * Declares a queue (recorded and declared again on every new connection). With `''` the broker
   * names it; after a reconnect it gets a new name, and bindings, subscriptions and publishes to the
   * default exchange that use the name returned here follow it.
   *
   * @example
   * ```ts
   * const { queue } = await client.declareQueue('', { exclusive: true });
   * await client.bindQueue(queue, 'orders', 'order.*');
   * ```
   */
  async declareQueue(name = '', options: QueueDeclareOptions & WaitOptions = {}): Promise<QueueDeclareResult> {
    const { signal, timeout, ...declare } = options;
    queueArguments(declare); // refuses a bad option now, not after waiting for a connection
    const declared = this.topology.resolveQueue(name);
    const result = await this.topologyOp({ signal, timeout }, 'declareQueue', (ch, call) =>
      ch.queueDeclare(declared, { ...declare, ...call }),
    );
    this.topology.recordQueue(name, result.queue, declare);
    return name !== '' && declared !== name ? { ...result, queue: name } : result;
  }

  /**
   * Deletes a queue and forgets it and its bindings. Resolves with how many messages it held.
   *
   * @example
   * ```ts
   * const { messageCount } = await client.deleteQueue('jobs', { ifEmpty: true });
   * ```
   */
  async deleteQueue(
    name: string,
    options: { ifUnused?: boolean; ifEmpty?: boolean } & WaitOptions = {},
  ): Promise<{ messageCount: number }> {
    const { signal, timeout, ...rest } = options;
    const result = await this.topologyOp({ signal, timeout }, 'deleteQueue', (ch, call) =>
      ch.queueDelete(this.topology.resolveQueue(name), { ...rest, ...call }),
    );
    this.topology.removeQueue(name);
    return result;
  }

  /**
   * Removes every ready message from a queue. Resolves with how many.
   *
   * @example
   * ```ts
   * await client.purgeQueue('jobs');
   * ```
   */
  purgeQueue(name: string, options: WaitOptions = {}): Promise<{ messageCount: number }> {
    return this.topologyOp(options, 'purgeQueue', (ch, call) => ch.queuePurge(this.topology.resolveQueue(name), call));
  }

  /**
   * Binds a queue to an exchange (recorded and bound again on every new connection).
   *
   * @example
   * ```ts
   * await client.bindQueue('audit', 'orders', '#');
   * ```
   */
  async bindQueue(queue: string, exchange: string, routingKey = '', options: BindOptions = {}): Promise<void> {
    const args = options.arguments ?? {};
    await this.topologyOp(options, 'bindQueue', (ch, call) =>
      ch.queueBind(this.topology.resolveQueue(queue), exchange, routingKey, args, call),
    );
    this.topology.recordBinding({ kind: 'queue', destination: queue, source: exchange, routingKey, args });
  }

  /**
   * Removes a queue binding and forgets it.
   *
   * @example
   * ```ts
   * await client.unbindQueue('audit', 'orders', '#');
   * ```
   */
  async unbindQueue(queue: string, exchange: string, routingKey = '', options: BindOptions = {}): Promise<void> {
    const args = options.arguments ?? {};
    await this.topologyOp(options, 'unbindQueue', (ch, call) =>
      ch.queueUnbind(this.topology.resolveQueue(queue), exchange, routingKey, args, call),
    );
    this.topology.removeBinding({ kind: 'queue', destination: queue, source: exchange, routingKey, args });
  }

  /**
   * Binds exchange `destination` to exchange `source` (recorded and bound again on every new connection).
   *
   * @example
   * ```ts
   * await client.bindExchange('orders.eu', 'orders', 'eu.#');
   * ```
   */
  async bindExchange(destination: string, source: string, routingKey = '', options: BindOptions = {}): Promise<void> {
    const args = options.arguments ?? {};
    await this.topologyOp(options, 'bindExchange', (ch, call) =>
      ch.exchangeBind(destination, source, routingKey, args, call),
    );
    this.topology.recordBinding({ kind: 'exchange', destination, source, routingKey, args });
  }

  /**
   * Removes an exchange-to-exchange binding and forgets it.
   *
   * @example
   * ```ts
   * await client.unbindExchange('orders.eu', 'orders', 'eu.#');
   * ```
   */
  async unbindExchange(destination: string, source: string, routingKey = '', options: BindOptions = {}): Promise<void> {
    const args = options.arguments ?? {};
    await this.topologyOp(options, 'unbindExchange', (ch, call) =>
      ch.exchangeUnbind(destination, source, routingKey, args, call),
    );
    this.topology.removeBinding({ kind: 'exchange', destination, source, routingKey, args });
  }

  // ------------------------------------------------------------------ messaging

  private assertOpen(): void {
    if (this.core.state !== 'open') throw this.core.closedError();
  }

  /** The topology operations' common path: see `ClientCore.topologyOp`. */
  private topologyOp<T>(
    options: { signal?: AbortSignal | undefined; timeout?: number | undefined },
    what: string,
    op: (ch: Channel, call: CallOptions) => Promise<T>,
  ): Promise<T> {
    return this.core.topologyOp(options, what, op);
  }

  private get topology(): ClientCore['topology'] {
    return this.core.topology;
  }

  private get codecs(): ClientCore['codecs'] {
    return this.core.codecs;
  }

  /**
   * Creates a publisher: publishes that resolve once confirmed and survive reconnects.
   *
   * @example
   * ```ts
   * const pub = client.publisher({ maxUnconfirmed: 1000 });
   * await pub.publish('orders', 'order.created', JSON.stringify(order), { contentType: 'application/json' });
   * ```
   * @throws `ClosedError` after close.
   */
  publisher(options: PublisherOptions = {}): Publisher {
    this.assertOpen();
    return new Publisher(this.host, { codecs: this.codecs, ...options });
  }

  /**
   * Subscribes `handler` to a queue, across reconnects: resolve to ack, throw to retry it later
   * (through the retry queue `<queue>.retry`, 5 attempts by default, see `SubscribeOptions.retry`),
   * then dead-letter or drop it.
   *
   * @example
   * ```ts
   * const sub = client.consume('jobs', async (msg) => { await run(msg.json()); }, {
   *   concurrency: 4,
   *   retry: { attempts: 3, delay: (attempt) => 1000 * attempt },
   * });
   * sub.on('retriesExhausted', (err, msg, attempts) => log.warn({ err, id: msg.properties.messageId, attempts }));
   * ```
   * @throws `ClosedError` after close.
   */
  consume<T = unknown>(
    queue: string,
    handler: (message: Decoded<T>) => void | Promise<void>,
    options: SubscribeOptions = {},
  ): Subscription {
    this.assertOpen();
    const codecs = this.codecs;
    // With codecs, each message gets a `value` (its body decoded on first read): a body its codec
    // rejects makes the handler throw, so the message is retried or dead-lettered like any failure.
    const handle: SubscriptionHandler =
      codecs === undefined ? (handler as SubscriptionHandler) : (msg) => handler(codecs.attach<T>(msg));
    return new Subscription(this.host, queue, handle, {
      ...options,
      retryVia: this.retryVia(),
      ...(this.logger === undefined ? {} : { logger: this.logger }),
    });
  }

  /** Retry queues are declared (and recorded) like the application's; copies go out confirmed and mandatory. */
  private retryVia(): RetryTransport {
    this.retryTransport ??= {
      declareQueue: (name, options) => this.declareQueue(name, options),
      publish: (routingKey, body, properties) =>
        (this.replyPublisher ??= new Publisher(this.host, { confirm: true })).publish(
          '',
          routingKey,
          body,
          properties,
          {
            mandatory: true,
          },
        ),
    };
    return this.retryTransport;
  }

  /**
   * The messages of a queue as an async iterator, across reconnects. Each message is acked when the
   * loop asks for the next one.
   *
   * @example
   * ```ts
   * for await (const msg of client.consumer('jobs')) console.log(msg.body.toString());
   * ```
   * @throws `ClosedError` after close.
   */
  consumer(queue: string, options: MessageIteratorOptions = {}): MessageIterator {
    this.assertOpen();
    return new MessageIterator(this.host, queue, options, this.logger);
  }

  /**
   * Sends a request to `queue` and resolves with the reply (direct reply-to). Rejects with
   * `TimeoutError` after `timeout` ms (default 30000), `MessageReturned` when no queue takes the
   * request, `AbortError`, or the connection's error when it dies before the reply arrives.
   *
   * @example
   * ```ts
   * const reply = await client.rpc('rpc.add', JSON.stringify([1, 2]), { timeout: 5000 });
   * console.log(reply.body.toString()); // '3'
   * ```
   */
  rpc<T = unknown>(queue: string, body: Buffer | string | object, options: RpcOptions = {}): Promise<Decoded<T>> {
    if (this.core.state !== 'open') return Promise.reject(this.core.closedError());
    this.rpcClient ??= new RpcClient(this.host);
    const codecs = this.codecs;
    let request: ReturnType<typeof encodeBody>;
    try {
      request = encodeBody(codecs, body, options.properties);
    } catch (err) {
      return Promise.reject(err);
    }
    const call = this.rpcClient.call(
      queue,
      request.body,
      request.properties === undefined ? options : { ...options, properties: request.properties },
    );
    // Without codecs the reply is handed over as it is (its `value` explains itself): no extra promise.
    if (codecs === undefined) return call as Promise<Decoded<T>>;
    return call.then((reply) => codecs.attach<T>(reply));
  }

  /**
   * Serves RPC requests from `queue`: the handler's answer is published to the request's `replyTo`
   * with its `correlationId`, then the request is acked. A direct reply-to answer leaves on the
   * request's channel in the same write as the ack (the broker routes it first); an answer to an
   * ordinary queue is confirmed before the ack.
   *
   * @example
   * ```ts
   * await client.declareQueue('rpc.add');
   * client.rpcServer('rpc.add', (req) => String(req.json<number[]>().reduce((a, b) => a + b, 0)));
   * ```
   * @throws `ClosedError` after close.
   */
  rpcServer(queue: string, handler: RpcHandler, options: RpcServerOptions = {}): Subscription {
    this.assertOpen();
    return createRpcServer(
      this.host,
      queue,
      handler,
      () => (this.replyPublisher ??= new Publisher(this.host, { confirm: true })),
      options,
    );
  }

  /** `await using client = createClient(...)` closes the client at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

disposable(Client.prototype, 'close');
disposable(Publisher.prototype, 'close');
disposable(Subscription.prototype, 'cancel');

/**
 * Creates the robust client and starts connecting in the background. Accepts a URL, a list of URLs,
 * or options (with `urls`); `options` add to or override what the first argument says.
 *
 * @example
 * ```ts
 * const client = createClient('amqp://guest:guest@127.0.0.1:5672', { name: 'svc-a', heartbeat: 10 });
 * client.on('disconnect', (err) => console.warn('reconnecting after', err.code));
 * ```
 * @throws `InvalidArgumentError` for a malformed URL or option.
 */
export function createClient(
  target: string | readonly string[] | ClientOptions = {},
  options: ClientOptions = {},
): Client {
  if (typeof target === 'string' || Array.isArray(target)) {
    return new Client({ ...options, urls: target as string | readonly string[] });
  }
  return new Client({ ...(target as ClientOptions), ...options });
}
