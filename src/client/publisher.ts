/**
 * The robust publisher: publishes that survive reconnects.
 *
 * Each publish waits in a FIFO until it may be sent (a channel is open, the broker has not blocked
 * the connection, fewer than `maxUnconfirmed` are in flight), is sent on the publisher's own channel,
 * and resolves when the broker confirms it. When the channel or connection dies, what was sent but not
 * confirmed goes back to the front of the FIFO, in order, and is sent again on the next channel:
 * at-least-once, so duplicates are possible and loss is not.
 *
 * @module
 */
import { SafeEmitter } from '../user-code.js';
import { inspectCustom } from '../redact.js';
import type { Channel, PublishOptions, ReturnedMessage } from '../channel/channel.js';
import { type AMQPError, AbortError, ClosedError, InvalidArgumentError } from '../errors.js';
import type { BasicProperties } from '../protocol/generated/properties.js';
import { type PublishSpan, startPublishSpan } from '../tracing/index.js';
import { settledOrDeadline } from './backoff.js';
import type { ClientHost, Session } from './host.js';

/**
 * Options of `client.publisher()`.
 *
 * @example
 * ```ts
 * const pub = client.publisher({ confirm: true, maxUnconfirmed: 500 });
 * ```
 */
export interface PublisherOptions {
  /**
   * Wait for the broker to confirm each message (publisher confirms) and send again what was not
   * confirmed when a connection died. Default `true`. With `false`, `publish()` resolves once the
   * message is written to the socket, and a message can be lost in a cut.
   */
  confirm?: boolean;
  /** Most messages sent and not yet confirmed; further publishes wait. Default 1000. */
  maxUnconfirmed?: number;
}

/**
 * Events of a publisher.
 *
 * @example
 * ```ts
 * pub.on('return', (msg) => console.warn('unroutable', msg.routingKey));
 * ```
 */
export interface PublisherEvents {
  /** A mandatory message came back unroutable. With confirms its publish also rejects with `MessageReturned`. */
  return: [message: ReturnedMessage];
}

const WAITING = 0;
const INFLIGHT = 1;
const DONE = 2;
/** Channel closes by the broker a message may be sent through before it is taken as their cause. */
const MAX_SERVER_CLOSES = 3;
const MANDATORY: PublishOptions = { mandatory: true };

interface Entry {
  exchange: string;
  routingKey: string;
  body: Buffer;
  properties: BasicProperties | undefined;
  mandatory: boolean;
  /** Wire state: waiting to be sent, sent and not settled, or settled / dropped. */
  state: number;
  /** Bumped on every send, so that the settlement of an earlier send is recognised and ignored. */
  attempt: number;
  serverCloses: number;
  /** True once the caller's promise has settled (confirmed, failed or abandoned). */
  done: boolean;
  resolve: () => void;
  reject: (error: AMQPError) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** The OpenTelemetry PRODUCER span, when tracing is on; ended when the caller's promise settles. */
  span: PublishSpan | undefined;
}

/**
 * Publishes messages with confirms across reconnects. Get one with `client.publisher()`.
 *
 * @example
 * ```ts
 * const pub = client.publisher({ confirm: true, maxUnconfirmed: 1000 });
 * await pub.publish('orders', 'created', Buffer.from(JSON.stringify(order)), { deliveryMode: 2 });
 * await pub.close();
 * ```
 */
export class Publisher extends SafeEmitter<PublisherEvents> {
  private readonly host: ClientHost;
  private readonly confirm: boolean;
  private readonly maxUnconfirmed: number;
  private waiting: (Entry | undefined)[] = [];
  private waitHead = 0;
  private inflight: Entry[] = [];
  private inflightHead = 0;
  private inflightCount = 0;
  /** Publishes whose promise has not settled. */
  private pending = 0;
  private channel: Channel | undefined;
  private session: Session | undefined;
  private openSeq = 0;
  private channelFailures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private state: 'open' | 'closing' | 'closed' = 'open';
  private closeError: AMQPError | undefined;
  private drainWaiters: (() => void)[] = [];
  private closing: Promise<void> | undefined;
  private readonly onReturn = (message: ReturnedMessage): void => {
    if (this.listenerCount('return') > 0) this.emit('return', message);
  };

  /** @internal Use `client.publisher()`. */
  constructor(host: ClientHost, options: PublisherOptions = {}) {
    super();
    const max = options.maxUnconfirmed ?? 1000;
    if (!Number.isInteger(max) || max < 1) {
      throw new InvalidArgumentError(`maxUnconfirmed must be a whole number of at least 1, got ${max}`);
    }
    this.host = host;
    this.confirm = options.confirm ?? true;
    this.maxUnconfirmed = max;
    host.register(this);
    if (host.session !== undefined) this.attach(host.session);
  }

  /** What `console.log(publisher)` shows: its state and counts (its connection holds credentials). */
  [inspectCustom](): string {
    return `Publisher { ${this.state}, ${this.pending} pending, ${this.inflightCount} unconfirmed }`;
  }

  /** What `JSON.stringify(publisher)` gives. */
  toJSON(): { type: 'Publisher'; state: string; pending: number; unconfirmed: number } {
    return { type: 'Publisher', state: this.state, pending: this.pending, unconfirmed: this.inflightCount };
  }

  /** Messages sent and not yet confirmed. */
  get unconfirmedCount(): number {
    return this.inflightCount;
  }

  /** Publishes that have not settled yet (waiting to be sent, or sent and awaiting their confirm). */
  get pendingCount(): number {
    return this.pending;
  }

  /**
   * Publishes a message. Resolves once the broker has confirmed it (or, with `confirm: false`, once
   * it is written), across reconnects. Rejects with `PublishNacked` when the broker refuses it,
   * `MessageReturned` when it is mandatory and unroutable, `AbortError` when `options.signal` fires
   * (a message already sent may still arrive), `ChannelClosedByServer` when the broker closes the
   * channel because of it (e.g. 404, no such exchange), `ClosedError` after close.
   *
   * @example
   * ```ts
   * await pub.publish('', 'jobs', Buffer.from('work'), { deliveryMode: 2, messageId: 'job-1' });
   * ```
   */
  publish(
    exchange: string,
    routingKey: string,
    body: Buffer | string,
    properties?: BasicProperties,
    options?: PublishOptions,
  ): Promise<void> {
    if (this.state !== 'open') return Promise.reject(this.closedError());
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    if (!Buffer.isBuffer(bytes)) {
      return Promise.reject(
        new InvalidArgumentError(
          `message body must be a Buffer or a string, got ${bytes === null ? 'null' : typeof bytes}`,
        ),
      );
    }
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(new AbortError('publish aborted', { cause: signal.reason }));
    // One span per publish, across resends; its trace context goes in the headers of every send.
    const span = startPublishSpan({ exchange, routingKey, body: bytes, properties });
    return new Promise<void>((resolve, reject) => {
      const e: Entry = {
        exchange,
        routingKey,
        body: bytes,
        properties: span === undefined ? properties : span.properties,
        mandatory: options?.mandatory ?? false,
        state: WAITING,
        attempt: 0,
        serverCloses: 0,
        done: false,
        resolve,
        reject,
        signal,
        onAbort: undefined,
        span,
      };
      this.pending++;
      if (signal !== undefined) {
        e.onAbort = () => this.abandon(e, new AbortError('publish aborted', { cause: signal.reason }));
        signal.addEventListener('abort', e.onAbort, { once: true });
      }
      if (this.waitHead === this.waiting.length && this.canSend()) this.send(e);
      else this.waiting.push(e);
    });
  }

  /**
   * Publishes `value` as JSON: the body is `JSON.stringify(value)` in UTF-8 and `contentType` is
   * `application/json` unless `properties` say otherwise. Read it back with `msg.json()`. Rejects
   * with `InvalidArgumentError`, before anything is sent, for a value JSON cannot represent (a
   * cycle, a bigint, `undefined`, a function); otherwise as `publish()`.
   *
   * @example
   * ```ts
   * await pub.publishJSON('orders', 'order.created', { id: 42, items: ['tea'] }, { deliveryMode: 2 });
   * // consumer side: const order = msg.json<Order>();
   * ```
   */
  publishJSON(
    exchange: string,
    routingKey: string,
    value: unknown,
    properties?: BasicProperties,
    options?: PublishOptions,
  ): Promise<void> {
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch (err) {
      return Promise.reject(
        new InvalidArgumentError(`publishJSON: the value cannot be encoded as JSON: ${(err as Error).message}`, {
          cause: err,
        }),
      );
    }
    if (text === undefined) {
      return Promise.reject(new InvalidArgumentError(`publishJSON: ${typeof value} has no JSON form`));
    }
    return this.publish(
      exchange,
      routingKey,
      Buffer.from(text, 'utf8'),
      { contentType: 'application/json', ...properties },
      options,
    );
  }

  /**
   * Stops accepting publishes, waits until every pending one has settled (at most `timeout`
   * milliseconds, default 10000; what is left then rejects with `ClosedError`) and closes the channel.
   *
   * @example
   * ```ts
   * await pub.close({ timeout: 5000 });
   * ```
   */
  close(options: { timeout?: number } = {}): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.state = 'closing';
    const deadline = Date.now() + (options.timeout ?? 10_000);
    this.closing = this.drain(deadline).then(() => {
      this.abort(new ClosedError('the publisher was closed before the broker confirmed this message'));
      this.host.unregister(this);
    });
    return this.closing;
  }

  // ------------------------------------------------------------------ sending

  private canSend(): boolean {
    return (
      this.channel?.isOpen === true &&
      this.inflightCount < this.maxUnconfirmed &&
      !this.host.isBlocked &&
      this.state !== 'closed'
    );
  }

  private send(e: Entry): void {
    const channel = this.channel!;
    e.state = INFLIGHT;
    const attempt = ++e.attempt;
    this.inflight.push(e);
    this.inflightCount++;
    // A publish to a server-named queue through the default exchange follows the queue's new name.
    const key = e.exchange === '' ? this.host.resolveQueue(e.routingKey) : e.routingKey;
    channel.basicPublish(e.exchange, key, e.body, e.properties, e.mandatory ? MANDATORY : undefined).then(
      () => this.settled(e, attempt, undefined),
      (err: AMQPError) => this.settled(e, attempt, err),
    );
  }

  private pump(): void {
    const waiting = this.waiting;
    while (this.waitHead < waiting.length && this.canSend()) {
      const e = waiting[this.waitHead]!;
      waiting[this.waitHead++] = undefined;
      if (e.state === WAITING && !e.done) this.send(e);
    }
    if (this.waitHead === waiting.length) {
      this.waiting = [];
      this.waitHead = 0;
    } else if (this.waitHead > 1024 && this.waitHead * 2 > waiting.length) {
      this.waiting = waiting.slice(this.waitHead);
      this.waitHead = 0;
    }
  }

  private settled(e: Entry, attempt: number, error: AMQPError | undefined): void {
    // The settlement of a send made on a channel that has since died: the entry was requeued already.
    if (e.attempt !== attempt || e.state !== INFLIGHT) return;
    e.state = DONE;
    this.inflightCount--;
    this.compactInflight();
    if (error === undefined) {
      this.channelFailures = 0;
      this.finish(e, undefined);
    } else {
      this.finish(e, error);
    }
    this.pump();
  }

  private compactInflight(): void {
    const inflight = this.inflight;
    while (this.inflightHead < inflight.length && inflight[this.inflightHead]!.state !== INFLIGHT) this.inflightHead++;
    if (this.inflightHead === inflight.length) {
      this.inflight = [];
      this.inflightHead = 0;
    } else if (this.inflightHead > 1024 && this.inflightHead * 2 > inflight.length) {
      this.inflight = inflight.slice(this.inflightHead);
      this.inflightHead = 0;
    }
  }

  /** Settles the caller's promise once. */
  private finish(e: Entry, error: AMQPError | undefined): void {
    if (e.done) return;
    e.done = true;
    this.pending--;
    if (e.onAbort !== undefined) e.signal!.removeEventListener('abort', e.onAbort);
    e.onAbort = undefined;
    e.signal = undefined;
    e.span?.end(error);
    if (error === undefined) e.resolve();
    else e.reject(error);
    if (this.pending === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** The caller gave up: a waiting message is never sent; a sent one still counts until settled. */
  private abandon(e: Entry, error: AMQPError): void {
    if (e.done) return;
    if (e.state === WAITING) e.state = DONE;
    this.finish(e, error);
  }

  // ------------------------------------------------------------------ channel lifecycle

  /** Whether `error` (a broker close) names this message as its cause. */
  private isCulprit(e: Entry, error: AMQPError | undefined): boolean {
    const method = (error as { method?: string } | undefined)?.method;
    if (method !== 'basic.publish') return false;
    // RabbitMQ names the exchange: "NOT_FOUND - no exchange 'x' in vhost '/'", "ACCESS_REFUSED - write
    // access to exchange 'x' ...". Every message to that exchange fails alike (carehare does the same).
    const named = /exchange '([^']*)'/.exec((error as { replyText?: string }).replyText ?? '');
    if (named !== null) return e.exchange === named[1];
    return ++e.serverCloses >= MAX_SERVER_CLOSES;
  }

  private onChannelClose(channel: Channel, error: AMQPError | undefined): void {
    if (channel !== this.channel) return;
    this.channel = undefined;
    channel.removeListener('return', this.onReturn);
    const requeue: Entry[] = [];
    const inflight = this.inflight;
    for (let i = this.inflightHead; i < inflight.length; i++) {
      const e = inflight[i]!;
      if (e.state !== INFLIGHT) continue;
      e.attempt++;
      if (e.done) {
        e.state = DONE; // abandoned by its caller: not sent again
      } else if (this.isCulprit(e, error)) {
        e.state = DONE;
        this.finish(e, error);
      } else {
        e.state = WAITING;
        requeue.push(e);
      }
    }
    this.inflight = [];
    this.inflightHead = 0;
    this.inflightCount = 0;
    if (requeue.length > 0) {
      this.waiting = (requeue as (Entry | undefined)[]).concat(this.waiting.slice(this.waitHead));
      this.waitHead = 0;
    }
    if (this.state === 'closed') return;
    const session = this.session;
    // The connection is still up: the broker closed just this channel. Open another at once, then
    // with growing delays if that keeps happening.
    if (session?.alive && session.connection.isOpen) this.scheduleOpen(session, ++this.channelFailures);
  }

  private scheduleOpen(session: Session, failures: number): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const delay = this.host.backoff.delay(failures - 1);
    if (delay === 0) {
      void this.openChannel(session);
      return;
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.openChannel(session);
    }, delay);
  }

  private async openChannel(session: Session): Promise<void> {
    const seq = ++this.openSeq;
    let channel: Channel | undefined;
    try {
      channel = await session.connection.openChannel();
      channel.on('close', (err) => this.onChannelClose(channel!, err));
      if (this.confirm) await channel.confirmSelect();
    } catch {
      if (channel?.isOpen) void channel.close();
      // A dead connection: the client attaches the next one. Otherwise (e.g. no free channel id) retry.
      if (session.alive && session.connection.isOpen && seq === this.openSeq && this.state !== 'closed') {
        this.scheduleOpen(session, ++this.channelFailures);
      }
      return;
    }
    if (seq !== this.openSeq || !session.alive || this.state === 'closed' || !channel.isOpen) {
      void channel.close();
      return;
    }
    channel.on('return', this.onReturn);
    this.channel = channel;
    this.pump();
  }

  /** @internal */
  attach(session: Session): void {
    if (this.state === 'closed') return;
    this.session = session;
    this.channelFailures = 0;
    void this.openChannel(session);
  }

  /** @internal */
  detach(): void {
    this.session = undefined;
    this.openSeq++;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** @internal */
  blockedChanged(blocked: boolean): void {
    if (!blocked) this.pump();
  }

  /** @internal Resolves when every pending publish has settled, or at `deadline`. */
  drain(deadline: number): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return settledOrDeadline(deadline, (done) => this.drainWaiters.push(done));
  }

  /** @internal Rejects everything pending and closes the channel. */
  abort(error: AMQPError): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.closeError = error;
    this.detach();
    const left: Entry[] = [];
    for (let i = this.inflightHead; i < this.inflight.length; i++) left.push(this.inflight[i]!);
    for (let i = this.waitHead; i < this.waiting.length; i++) {
      const e = this.waiting[i];
      if (e !== undefined) left.push(e);
    }
    this.inflight = [];
    this.inflightHead = 0;
    this.inflightCount = 0;
    this.waiting = [];
    this.waitHead = 0;
    for (const e of left) {
      e.state = DONE;
      this.finish(e, error);
    }
    const channel = this.channel;
    this.channel = undefined;
    if (channel?.isOpen) void channel.close();
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  private closedError(): AMQPError {
    if (this.closeError !== undefined && !(this.closeError instanceof ClosedError)) {
      return new ClosedError(`the publisher is closed: ${this.closeError.message}`, { cause: this.closeError });
    }
    return this.host.isOpen ? new ClosedError('the publisher is closed') : this.host.closedError();
  }
}
