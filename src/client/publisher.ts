/**
 * The robust publisher: publishes that survive reconnects.
 *
 * Each publish waits in a FIFO until it may be sent (a channel is open, the broker has not blocked
 * the connection, fewer than `maxUnconfirmed` are in flight), is sent on the publisher's own channel,
 * and resolves when the broker confirms it. When the channel or connection dies, what was sent but not
 * confirmed goes back to the front of the FIFO, in order, and is sent again on the next channel:
 * at-least-once, so duplicates are possible and loss is not. A confirm counts as soon as it is read,
 * before anything read after it (a close in the same TCP read included), so nothing confirmed is
 * ever sent again.
 *
 * When the broker closes the channel because of a publish without saying which one (the reply
 * names no exchange), every message that was unconfirmed becomes a suspect: suspects are sent again
 * one at a time, each alone in flight on a fresh channel. The one whose send closes the channel
 * while it is alone is the culprit and is rejected; the others confirm as usual; then pipelining
 * resumes. An innocent message is never rejected for another's fault.
 *
 * @module
 */
import { SafeEmitter } from '../user-code.js';
import { inspectCustom } from '../redact.js';
import type { Channel, ReturnedMessage } from '../channel/channel.js';
import {
  type AMQPError,
  AbortError,
  ClosedError,
  InvalidArgumentError,
  PublishNacked,
  TimeoutError,
} from '../errors.js';
import type { BasicProperties } from '../protocol/generated/properties.js';
import { startPublishSpan } from '../tracing/index.js';
import { ChannelLease } from './channel-lease.js';
import { type CodecRegistry, encodeBody } from './codecs.js';
import { Fifo } from './fifo.js';
import type { ClientHost, Session } from './host.js';
import {
  attribute,
  DONE,
  type Entry,
  INFLIGHT,
  MANDATORY,
  NO_BODY,
  Send,
  type Settle,
  WAITING,
} from './publish-entry.js';
import { PublisherBounds } from './publisher-bounds.js';
import {
  wholeNumber,
  type PublisherEvents,
  type PublisherOptions,
  type PublisherPublishOptions,
} from './publisher-options.js';
import { AbortWatch, settledOrDeadline } from './waiting.js';

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
  private readonly bounds: PublisherBounds;
  private readonly nackRetries: number;
  private readonly codecs: CodecRegistry | undefined;
  private readonly waiting = new Fifo<Entry>();
  /** Sent entries in send order; settled ones leave from the head (see `compactInflight`). */
  private readonly inflight = new Fifo<Entry>();
  private inflightCount = 0;
  /** Suspects not yet settled; while there are any, one message at a time is in flight. */
  private suspects = 0;
  /** Entries abandoned while waiting since `waiting` was last compacted (an upper bound). */
  private abandonedWaiting = 0;
  private channel: Channel | undefined;
  /** `failures`: channel closes without a culprit found, and failed opens, since the last confirm. */
  private readonly lease = new ChannelLease({
    wanted: () => this.state !== 'closed',
    setup: (channel, session, current) => this.setup(channel, session, current),
    openFailed: (session) => this.scheduleOpen(session, ++this.lease.failures),
  });
  private state: 'open' | 'closing' | 'closed' = 'open';
  private closeError: AMQPError | undefined;
  private drainWaiters: (() => void)[] = [];
  private closing: Promise<void> | undefined;
  /** Entries per caller signal, abandoned when it fires. */
  private readonly watched = new AbortWatch<Entry>((e, signal) =>
    this.abandon(e, new AbortError('publish aborted', { cause: signal.reason })),
  );
  private readonly onSettled: Settle = (e, attempt, error) => this.settled(e, attempt, error);
  /** Nacked entries waiting out their delay before they are sent again (see `rest`). */
  private readonly resting: Entry[] = [];
  private restTimer: NodeJS.Timeout | undefined;
  private restTimerAt = 0;
  private readonly onRestTimer = (): void => this.wakeRested();
  private readonly onReturn = (message: ReturnedMessage): void => {
    if (this.listenerCount('return') > 0) this.emit('return', message);
  };

  /** @internal Use `client.publisher()`. */
  constructor(host: ClientHost, options: PublisherOptions = {}) {
    super();
    this.maxUnconfirmed = wholeNumber(options.maxUnconfirmed ?? 1000, 'maxUnconfirmed', 1);
    this.host = host;
    this.confirm = options.confirm ?? true;
    this.bounds = new PublisherBounds(options);
    this.nackRetries = wholeNumber(options.nackRetries ?? 8, 'nackRetries', 0);
    this.codecs = options.codecs;
    host.register(this);
    if (host.session !== undefined) this.attach(host.session);
  }

  /** What `console.log(publisher)` shows: its state and counts (its connection holds credentials). */
  [inspectCustom](): string {
    return `Publisher { ${this.state}, ${this.bounds.pending} pending, ${this.inflightCount} unconfirmed }`;
  }

  /** What `JSON.stringify(publisher)` gives. */
  toJSON(): { type: 'Publisher'; state: string; pending: number; unconfirmed: number } {
    return { type: 'Publisher', state: this.state, pending: this.bounds.pending, unconfirmed: this.inflightCount };
  }

  /** Messages sent and not yet confirmed. */
  get unconfirmedCount(): number {
    return this.inflightCount;
  }

  /**
   * Messages the publisher holds: waiting to be sent, or sent and awaiting their confirm (what
   * `maxPending` bounds). Publishes waiting for room are counted in `waitingForRoom` instead.
   */
  get pendingCount(): number {
    return this.bounds.pending;
  }

  /** Bytes of the bodies of the messages counted in `pendingCount` (what `maxPendingBytes` bounds). */
  get pendingBytes(): number {
    return this.bounds.heldBytes;
  }

  /** Publishes waiting for room under `maxPending`/`maxPendingBytes` (with `onFull: 'wait'`). */
  get waitingForRoom(): number {
    return this.bounds.waitingCount;
  }

  /**
   * Publishes a message. Resolves once the broker has confirmed it (or, with `confirm: false`, once
   * it is written), across reconnects. Rejects with `PublishNacked` when the broker refuses it
   * (nacks it `nackRetries + 1` times),
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
    body: Buffer | string | object,
    properties?: BasicProperties,
    options?: PublisherPublishOptions,
  ): Promise<void> {
    if (this.state !== 'open') return Promise.reject(this.closedError());
    let bytes: Buffer;
    try {
      ({ body: bytes, properties } = encodeBody(this.codecs, body, properties));
    } catch (err) {
      return Promise.reject(err);
    }
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(new AbortError('publish aborted', { cause: signal.reason }));
    const timeout = options?.timeout;
    if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout >= 0))) {
      return Promise.reject(new InvalidArgumentError(`timeout must be 0 or more milliseconds, got ${String(timeout)}`));
    }
    const bounds = this.bounds;
    const refused = bounds.refusal(bytes.length);
    if (refused !== undefined) return Promise.reject(refused);
    const full = bounds.mustWait(bytes.length);
    // One span per publish, across resends; its trace context goes in the headers of every send.
    const traced = startPublishSpan({ exchange, routingKey, body: bytes, properties });
    const metrics = this.host.metrics;
    const span = metrics === undefined ? traced : metrics.publish(traced, exchange, properties ?? {}, this.confirm);
    return new Promise<void>((resolve, reject) => {
      const e: Entry = {
        exchange,
        routingKey,
        body: bytes,
        properties: span === undefined ? properties : span.properties,
        mandatory: options?.mandatory ?? false,
        state: WAITING,
        attempt: 0,
        suspect: false,
        done: false,
        resolve,
        reject,
        signal,
        span,
        size: bytes.length,
        held: false,
        timer: undefined,
        nacks: 0,
        resendAt: 0,
      };
      if (signal !== undefined) this.watched.watch(e, signal);
      if (timeout !== undefined) e.timer = this.startTimer(e, timeout);
      if (full) bounds.wait(e);
      else this.take(e);
    });
  }

  /** Takes an entry in: counted, then sent at once or queued to be sent. */
  private take(e: Entry): void {
    this.bounds.hold(e);
    if (this.waiting.length === 0 && this.canSend()) this.send(e);
    else this.waiting.push(e);
  }

  /** Takes in publishes waiting for room, in order, while there is room. */
  private admit(): void {
    if (this.state === 'closed') return;
    for (let e = this.bounds.nextAdmitted(); e !== undefined; e = this.bounds.nextAdmitted()) this.take(e);
  }

  private startTimer(e: Entry, timeout: number): NodeJS.Timeout {
    const timer = setTimeout(
      () => {
        const sent = e.state === INFLIGHT;
        this.abandon(
          e,
          new TimeoutError(
            `publish not confirmed within ${timeout} ms; ` +
              (sent ? 'it was sent and may still reach the broker' : 'it was never sent'),
          ),
        );
      },
      Math.min(timeout, 2 ** 31 - 1),
    );
    return timer;
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
    options?: PublisherPublishOptions,
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

  /** `await using pub = client.publisher()` closes the publisher (as `close()`) at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ------------------------------------------------------------------ sending

  private canSend(): boolean {
    return (
      this.channel?.isOpen === true &&
      // A connection on its way down still shows its channels open for a moment: wait for the next.
      this.lease.session?.connection.isOpen === true &&
      this.inflightCount < (this.suspects > 0 ? 1 : this.maxUnconfirmed) &&
      !this.host.isBlocked &&
      this.state !== 'closed'
    );
  }

  private send(e: Entry): void {
    const channel = this.channel!;
    const attempt = ++e.attempt;
    // A publish to a server-named queue through the default exchange follows the queue's new name.
    const key = e.exchange === '' ? this.host.resolveQueue(e.routingKey) : e.routingKey;
    if (!this.confirm) {
      this.markSent(e);
      channel.basicPublish(e.exchange, key, e.body, e.properties, e.mandatory ? MANDATORY : undefined).then(
        () => this.settled(e, attempt, undefined),
        (err: AMQPError) => this.settled(e, attempt, err),
      );
      return;
    }
    try {
      channel.publishTracked(e.body, e.properties, new Send(this.onSettled, e, attempt, key));
    } catch (err) {
      // Refused before a byte was written (e.g. an invalid property): this message alone fails.
      e.state = DONE;
      this.finish(e, err as AMQPError);
      return;
    }
    this.markSent(e);
  }

  private markSent(e: Entry): void {
    e.state = INFLIGHT;
    this.inflight.push(e);
    this.inflightCount++;
  }

  private pump(): void {
    const waiting = this.waiting;
    while (waiting.length > 0 && this.canSend()) {
      const e = waiting.shift()!;
      if (e.state === WAITING && !e.done) this.send(e);
    }
    if (waiting.length === 0) this.abandonedWaiting = 0;
  }

  private settled(e: Entry, attempt: number, error: AMQPError | undefined): void {
    // The settlement of a send made on a channel that has since died: the entry was requeued already.
    if (e.attempt !== attempt || e.state !== INFLIGHT) return;
    if (error instanceof PublishNacked && e.nacks < this.nackRetries && !e.done && this.state !== 'closed') {
      this.sendAgain(e);
      return;
    }
    e.state = DONE;
    this.inflightCount--;
    this.compactInflight();
    if (error === undefined) {
      this.lease.failures = 0;
      this.finish(e, undefined);
    } else {
      this.finish(e, error);
    }
    this.pump();
  }

  /**
   * A nacked message is sent again. The first resend goes at once, on the same channel; after a
   * second nack the channel is closed (see `nackRetries`) and the message rests for a delay from
   * the client's backoff, growing with its nacks, before it goes back to the front of the queue:
   * a broker that refuses for a while (a quorum queue electing its leader) gets time, not a burst.
   */
  private sendAgain(e: Entry): void {
    e.nacks++;
    e.state = WAITING;
    this.inflightCount--;
    this.compactInflight();
    if (e.nacks === 1) {
      this.waiting.prepend([e]);
    } else {
      // The channel's close requeues what is still in flight there and opens the next one with the
      // client's backoff, counting this as a channel failure until a confirm comes.
      if (this.channel?.isOpen === true) void this.channel.close().catch(() => {});
      this.rest(e, this.host.backoff.spacedDelay(e.nacks - 1));
    }
    this.pump();
  }

  /** Holds a nacked entry back for `delay` ms; see `wakeRested`. */
  private rest(e: Entry, delay: number): void {
    e.resendAt = Date.now() + delay;
    this.resting.push(e);
    if (this.restTimer === undefined || e.resendAt < this.restTimerAt) this.armRestTimer(e.resendAt);
  }

  private armRestTimer(at: number): void {
    clearTimeout(this.restTimer);
    this.restTimerAt = at;
    this.restTimer = setTimeout(this.onRestTimer, Math.max(0, at - Date.now()));
  }

  /** Entries whose rest is over go back to the front of the queue, in the order they were nacked. */
  private wakeRested(): void {
    this.restTimer = undefined;
    const now = Date.now();
    const due: Entry[] = [];
    let next = Number.POSITIVE_INFINITY;
    let kept = 0;
    for (const e of this.resting) {
      if (e.done || e.state !== WAITING) continue; // abandoned while resting
      if (e.resendAt <= now) due.push(e);
      else {
        this.resting[kept++] = e;
        if (e.resendAt < next) next = e.resendAt;
      }
    }
    this.resting.length = kept;
    if (kept > 0) this.armRestTimer(next);
    this.waiting.prepend(due);
    this.pump();
  }

  /** Drops settled entries from the head of `inflight`: confirms come mostly in send order. */
  private compactInflight(): void {
    const inflight = this.inflight;
    while (inflight.length > 0 && inflight.peek()!.state !== INFLIGHT) inflight.shift();
  }

  /** Settles the caller's promise once. */
  private finish(e: Entry, error: AMQPError | undefined): void {
    if (e.done) return;
    e.done = true;
    this.bounds.release(e);
    if (e.timer !== undefined) {
      clearTimeout(e.timer);
      e.timer = undefined;
    }
    if (e.suspect) {
      e.suspect = false;
      this.suspects--;
    }
    // Nothing sends it again: let the body go now, not when the entry leaves the queues.
    e.body = NO_BODY;
    e.properties = undefined;
    if (e.signal !== undefined) {
      this.watched.unwatch(e, e.signal);
      e.signal = undefined;
    }
    e.span?.end(error);
    if (error === undefined) e.resolve();
    else e.reject(error);
    if (e.held && this.bounds.waitingCount > 0) this.admit();
    if (this.bounds.empty && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** The caller gave up: a waiting message is never sent; a sent one still counts until settled. */
  private abandon(e: Entry, error: AMQPError): void {
    if (e.done) return;
    this.finish(e, error);
    if (e.held && e.state === WAITING) {
      e.state = DONE;
      this.dropAbandoned();
    }
  }

  /**
   * Removes abandoned entries from the waiting queue once they are half of it, so that publishing
   * and aborting while offline does not grow it without bound: amortised O(1) per abort.
   */
  private dropAbandoned(): void {
    if (++this.abandonedWaiting < 1024 || this.abandonedWaiting * 2 < this.waiting.length) return;
    this.waiting.retain((e) => e.state === WAITING);
    this.abandonedWaiting = 0;
  }

  // ------------------------------------------------------------------ channel lifecycle

  private onChannelClose(channel: Channel, error: AMQPError | undefined): void {
    if (channel !== this.channel) return;
    this.channel = undefined;
    channel.removeListener('return', this.onReturn);
    const blame = attribute(error, this.inflight, this.inflightCount);
    const requeue: Entry[] = [];
    for (const e of this.inflight.takeAll()) {
      if (e.state !== INFLIGHT) continue;
      e.attempt++;
      if (e.done) {
        e.state = DONE; // abandoned by its caller: not sent again
      } else if (blame === 'alone' || (typeof blame === 'object' && e.exchange === blame.exchange)) {
        e.state = DONE;
        this.finish(e, error!);
      } else {
        e.state = WAITING;
        if (blame === 'suspects' && !e.suspect) {
          e.suspect = true;
          this.suspects++;
        }
        requeue.push(e);
      }
    }
    this.inflightCount = 0;
    this.waiting.prepend(requeue);
    if (this.state === 'closed') return;
    const session = this.lease.liveSession;
    // The connection is still up: the broker closed just this channel. Open another at once, then
    // with growing delays if that keeps happening without a culprit found.
    if (session !== undefined) {
      const lease = this.lease;
      lease.failures = blame === undefined || blame === 'suspects' ? lease.failures + 1 : 1;
      this.scheduleOpen(session, lease.failures);
    }
  }

  private scheduleOpen(session: Session, failures: number): void {
    const delay = this.host.backoff.delay(failures - 1);
    if (delay === 0) this.lease.openNow(session);
    else this.lease.openIn(session, delay);
  }

  /** A new channel: confirm mode (when confirming), then send what waits. */
  private async setup(channel: Channel, session: Session, current: () => boolean): Promise<void> {
    channel.on('close', (err) => this.onChannelClose(channel, err));
    if (this.confirm) await channel.confirmSelect();
    if (!current() || !session.alive || this.state === 'closed' || !channel.isOpen) {
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
    this.lease.attach(session);
  }

  /** @internal */
  detach(): void {
    this.lease.detach();
  }

  /** @internal */
  blockedChanged(blocked: boolean): void {
    if (!blocked) this.pump();
  }

  /** @internal Resolves when every pending publish has settled, or at `deadline`. */
  drain(deadline: number): Promise<void> {
    if (this.bounds.empty) return Promise.resolve();
    return settledOrDeadline(deadline, (done) => this.drainWaiters.push(done));
  }

  /** @internal Rejects everything pending and closes the channel. */
  abort(error: AMQPError): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.closeError = error;
    this.detach();
    clearTimeout(this.restTimer);
    this.restTimer = undefined;
    const left = [
      ...this.inflight.takeAll(),
      ...this.resting.splice(0),
      ...this.waiting.takeAll(),
      ...this.bounds.takeAllWaiting(),
    ];
    this.inflightCount = 0;
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
