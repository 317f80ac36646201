// The one interface every library adapter implements, so that each scenario is written once (bench/scenarios.ts)
// and the libraries differ only in how they map these calls onto their own API.

export const LIB_NAMES = ['warren', 'warren-amqplib', 'amqplib', 'amqp-client', 'rabbitmq-client', 'floor'] as const;
export type LibName = (typeof LIB_NAMES)[number];

export function isLibName(s: string): s is LibName {
  return (LIB_NAMES as readonly string[]).includes(s);
}

/** Whatever a library rejected with, as an Error. */
export function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** Called once per confirmed publish; `err` is set for a nack or a failed channel. */
export type ConfirmCallback = (err: Error | null) => void;

export interface RpcClient {
  /** Which API carried the calls, recorded with the result (e.g. a built-in helper or a hand-written one). */
  readonly via: string;
  /** One request/reply round trip over direct reply-to; resolves with the reply's body size. */
  call(queue: string, body: Buffer): Promise<number>;
  close(): Promise<void>;
}

export interface Closable {
  close(): Promise<void>;
}

/** One connection with one channel (more only where the library insists). */
export interface Session {
  /** A classic, non-durable, non-exclusive queue (other connections poll and delete it). */
  declareQueue(queue: string): Promise<void>;
  deleteQueue(queue: string): Promise<void>;
  /** Puts the session's channel into confirm mode before `publishConfirm` is used. */
  confirmSelect(): Promise<void>;
  /**
   * Fire-and-forget publish to the default exchange. A returned promise is backpressure: the caller awaits it
   * before publishing more. Each adapter maps its library's own signal (a `false` from write, or a bounded window
   * of "written" promises) onto this, so memory stays bounded without the harness knowing the library.
   */
  publish(queue: string, body: Buffer): Promise<void> | undefined;
  /** Publish in confirm mode; `done` runs on the broker's ack or nack. A returned promise is backpressure. */
  publishConfirm(queue: string, body: Buffer, done: ConfirmCallback): Promise<void> | undefined;
  /** Resolves once everything handed to `publish` has left the library (or rejects with its first error). */
  flush(): Promise<void>;
  /**
   * Consume with manual acks at the given prefetch; the adapter acks each message after `onMessage` returns,
   * the way a user of that library would.
   */
  consume(queue: string, prefetch: number, onMessage: (bodySize: number) => void): Promise<Closable>;
  /** An echo server answering requests on `queue` (declares it) via the message's reply-to. */
  rpcServer(queue: string): Promise<Closable>;
  rpcClient(): Promise<RpcClient>;
  /** One more channel on this session's connection (the scaling scenario); closing it closes the channel. */
  openChannel(): Promise<Closable>;
  /** Publish to a named exchange on the session's channel; resolves once the library has written it. */
  publishTo(exchange: string, routingKey: string, body: Buffer): Promise<void>;
  close(): Promise<void>;
}

/**
 * A publisher built on the library's own reconnect support (the recovery scenarios). It publishes persistent
 * messages with confirms to one queue through the default exchange.
 */
export interface RobustPublisher {
  /** Which API carried the publishes, recorded with the result. */
  readonly via: string;
  /** Resolves once the broker confirmed `body`, retrying across reconnects the way the library (or its user) does. */
  publish(body: Buffer): Promise<void>;
  close(): Promise<void>;
}

export interface Adapter {
  readonly name: LibName;
  connect(url: string): Promise<Session>;
  /** Absent where the library has no reconnect support a user would reach for (the scenario reports n/a). */
  robustPublisher?(url: string, queue: string): Promise<RobustPublisher>;
}

/** What `bench/libs/<name>.ts` exports as default, checked because the child imports it by computed name. */
export function adapterOf(mod: unknown): Adapter {
  if (typeof mod === 'object' && mod !== null && 'default' in mod) {
    const a: unknown = mod.default;
    if (typeof a === 'object' && a !== null && 'connect' in a && typeof a.connect === 'function' && 'name' in a) {
      return a as Adapter;
    }
  }
  throw new Error('adapter module has no default export with connect()');
}
