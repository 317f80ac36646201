/**
 * RPC over RabbitMQ's direct reply-to: requests are published with `replyTo: 'amq.rabbitmq.reply-to'`
 * on a channel that consumes that pseudo-queue, and replies are matched by correlation id. No reply
 * queue is declared, so nothing is left behind.
 *
 * A reply can only come back on the channel the request left from. When that channel or its
 * connection dies, requests still awaiting a reply reject with the error (the server may or may not
 * have handled them); requests not yet sent wait for the next connection.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { Channel, ReturnedMessage } from '../channel/channel.js';
import type { Message } from '../channel/message.js';
import { inspectCustom } from '../redact.js';
import {
  type AMQPError,
  AbortError,
  ConnectionError,
  InvalidArgumentError,
  MessageReturned,
  TimeoutError,
} from '../errors.js';
import type { BasicProperties } from '../protocol/generated/properties.js';
import { ChannelLease } from './channel-lease.js';
import type { ClientHost, Recoverable, Session } from './host.js';
import { settledOrDeadline } from './waiting.js';

/**
 * Options of `client.rpc()`.
 *
 * @example
 * ```ts
 * const reply = await client.rpc('rpc.add', JSON.stringify([1, 2]), { timeout: 5000, properties: { contentType: 'application/json' } });
 * ```
 */
export interface RpcOptions {
  /** Milliseconds to wait for the reply (including any wait for a connection). Default 30000. */
  timeout?: number;
  /** Abandons the call with `AbortError`. */
  signal?: AbortSignal;
  /** Properties of the request; `replyTo` and `correlationId` are set by the client. */
  properties?: BasicProperties;
  /** Exchange to publish the request to. Default `''` (the routing key is the server's queue). */
  exchange?: string;
}

/** @internal RabbitMQ's pseudo-queue for replies without a reply queue of one's own. */
export const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';
const MANDATORY = { mandatory: true } as const;

interface Call {
  id: string;
  exchange: string;
  routingKey: string;
  body: Buffer;
  properties: BasicProperties;
  sent: boolean;
  done: boolean;
  resolve: (msg: Message) => void;
  reject: (error: AMQPError) => void;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** @internal The client's RPC caller: one reply channel per connection, created on first use. */
export class RpcClient implements Recoverable {
  private readonly host: ClientHost;
  private readonly prefix = randomBytes(6).toString('hex');
  private counter = 0;
  private channel: Channel | undefined;
  private readonly lease = new ChannelLease({
    wanted: () => this.closedWith === undefined,
    setup: (channel, session, current) => this.setup(channel, session, current),
    openFailed: (session) => this.retry(session),
  });
  /** Sent, awaiting the reply, by correlation id. */
  private readonly inflight = new Map<string, Call>();
  /** Waiting for the reply channel. */
  private waiting: Call[] = [];
  private closedWith: AMQPError | undefined;
  private drainWaiters: (() => void)[] = [];

  constructor(host: ClientHost) {
    this.host = host;
    host.register(this);
    if (host.session !== undefined) this.attach(host.session);
  }

  /** What `console.log(rpcClient)` shows (its connection holds credentials). */
  [inspectCustom](): string {
    return `RpcClient { ${this.inflight.size} in flight${this.closedWith ? ', closed' : ''} }`;
  }

  /** What `JSON.stringify(rpcClient)` gives. */
  toJSON(): { type: 'RpcClient'; inflight: number; closed: boolean } {
    return { type: 'RpcClient', inflight: this.inflight.size, closed: this.closedWith !== undefined };
  }

  call(routingKey: string, body: Buffer | string, options: RpcOptions = {}): Promise<Message> {
    if (this.closedWith !== undefined) return Promise.reject(this.host.closedError());
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    if (!Buffer.isBuffer(bytes))
      return Promise.reject(new InvalidArgumentError('the request body must be a Buffer or a string'));
    const timeout = options.timeout ?? 30_000;
    if (!(timeout > 0)) return Promise.reject(new InvalidArgumentError(`timeout must be above 0, got ${timeout}`));
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(new AbortError('rpc aborted', { cause: signal.reason }));
    return new Promise<Message>((resolve, reject) => {
      const call: Call = {
        id: `${this.prefix}.${++this.counter}`,
        exchange: options.exchange ?? '',
        routingKey,
        body: bytes,
        properties: options.properties ?? {},
        sent: false,
        done: false,
        resolve,
        reject,
        timer: undefined,
        signal,
        onAbort: undefined,
      };
      call.timer = setTimeout(
        () => this.finish(call, new TimeoutError(`no reply from '${routingKey}' within ${timeout} ms`)),
        timeout,
      );
      if (signal !== undefined) {
        call.onAbort = () => this.finish(call, new AbortError('rpc aborted', { cause: signal.reason }));
        signal.addEventListener('abort', call.onAbort, { once: true });
      }
      if (this.channel?.isOpen) this.send(call);
      else this.waiting.push(call);
    });
  }

  private send(call: Call): void {
    const channel = this.channel!;
    call.sent = true;
    this.inflight.set(call.id, call);
    const key = call.exchange === '' ? this.host.resolveQueue(call.routingKey) : call.routingKey;
    const properties: BasicProperties = { ...call.properties, replyTo: DIRECT_REPLY_TO, correlationId: call.id };
    // Not in confirm mode: resolves when written. A failure closes the channel, which fails the call.
    channel.basicPublish(call.exchange, key, call.body, properties, MANDATORY).then(undefined, () => {});
  }

  private finish(call: Call, outcome: Message | AMQPError): void {
    if (call.done) return;
    call.done = true;
    clearTimeout(call.timer);
    if (call.onAbort !== undefined) call.signal!.removeEventListener('abort', call.onAbort);
    call.onAbort = undefined;
    call.signal = undefined;
    if (call.sent) this.inflight.delete(call.id);
    else {
      const i = this.waiting.indexOf(call);
      if (i >= 0) this.waiting.splice(i, 1);
    }
    if (outcome instanceof Error) call.reject(outcome);
    else call.resolve(outcome);
    if (this.inflight.size === 0 && this.waiting.length === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  private readonly onReply = (msg: Message): void => {
    const id = msg.properties.correlationId;
    const call = id === undefined ? undefined : this.inflight.get(id);
    // A late reply (after a timeout) or someone else's: nothing waits for it.
    if (call !== undefined) this.finish(call, msg);
  };

  private readonly onReturn = (returned: ReturnedMessage): void => {
    const id = returned.properties.correlationId;
    const call = id === undefined ? undefined : this.inflight.get(id);
    if (call !== undefined) this.finish(call, new MessageReturned(returned));
  };

  private onChannelClose(channel: Channel, error: AMQPError | undefined): void {
    if (channel !== this.channel) return;
    this.channel = undefined;
    const reason =
      error ??
      new ConnectionError('the RPC reply channel closed before the reply arrived; the call may have been handled');
    for (const call of [...this.inflight.values()]) this.finish(call, reason);
    const session = this.lease.liveSession;
    if (this.closedWith === undefined && session !== undefined) this.retry(session);
  }

  private retry(session: Session): void {
    this.lease.openIn(session, this.host.backoff.delay(this.lease.failures++));
  }

  /** A new reply channel: consume the pseudo-queue, then send what waited for it. */
  private async setup(ch: Channel, session: Session, current: () => boolean): Promise<void> {
    ch.on('close', (err) => this.onChannelClose(ch, err));
    ch.on('return', this.onReturn);
    await ch.basicConsume(DIRECT_REPLY_TO, { noAck: true }, this.onReply);
    if (!current() || !session.alive || this.closedWith !== undefined) {
      void ch.close();
      return;
    }
    this.channel = ch;
    this.lease.failures = 0;
    const waiting = this.waiting;
    this.waiting = [];
    for (const call of waiting) if (!call.done) this.send(call);
  }

  attach(session: Session): void {
    if (this.closedWith !== undefined) return;
    this.lease.attach(session);
  }

  detach(): void {
    this.lease.detach();
  }

  drain(deadline: number): Promise<void> {
    if (this.inflight.size === 0 && this.waiting.length === 0) return Promise.resolve();
    return settledOrDeadline(deadline, (done) => this.drainWaiters.push(done));
  }

  abort(error: AMQPError): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = error;
    this.detach();
    for (const call of [...this.inflight.values(), ...this.waiting]) this.finish(call, error);
    const channel = this.channel;
    this.channel = undefined;
    if (channel?.isOpen) void channel.close();
    this.host.unregister(this);
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }
}
