/**
 * What a channel is under its AMQP methods: its state, the way out to its connection, the
 * synchronous calls and their deadlines, closing from either side, and the `ChannelEndpoint` side
 * its connection calls. `Channel` (channel.ts) adds the methods, as `Connection` does over
 * `ConnectionBase`.
 *
 * A channel's parts are made when first used: publishing with the first publish or confirm.select,
 * the acknowledger with the first delivery or qos, the consumer table with the first consumer. A
 * connection may carry thousands of channels, and most of them use only some of their parts.
 *
 * @module
 */
import { SafeEmitter } from '../user-code.js';
import { inspectCustom } from '../redact.js';
import type { ChannelHost } from '../connection/endpoint.js';
import { type AMQPError, type ChannelClosedByServer, ClosedError, MessageReturned, REPLY_CODES } from '../errors.js';
import type { MethodInputByName, MethodName, SyncMethodName } from '../protocol/generated/methods.js';
import { Acknowledger } from './acknowledger.js';
import { type CallExtra, CallQueue, type CallResult, type PendingCall, type PendingCallOf } from './call-queue.js';
import type { CallOptions, ChannelEvents, ReturnedMessage } from './channel-options.js';
import { type ChannelState, isEnded, nextState, publicChannelState, unusableError } from './channel-state.js';
import { ConsumerRegistry } from './consumer.js';
import { ChannelInbound } from './inbound.js';
import type { Settlement } from './message.js';
import { Publishing } from './publishing.js';

let generations = 0;

/** The base of `Channel`: see the module comment. Get a channel with `connection.openChannel()`. */
// No `implements CallSender`: its methods are internal and stripped from the .d.ts; `new CallQueue(this)`
// checks the fit.
export abstract class ChannelBase extends SafeEmitter<ChannelEvents> {
  /** The channel number on its connection. */
  readonly id: number;
  protected readonly host: ChannelHost;
  /** @internal Distinguishes this channel from earlier ones that had the same id, so stale acks are dropped. */
  readonly generation = ++generations;
  protected state: ChannelState = 'opening';
  private closeError: AMQPError | undefined;
  /** @internal */
  readonly calls = new CallQueue(this);
  /** @internal Where the connection routes this channel's frames. */
  readonly inbound: ChannelInbound;
  private acknowledger: Acknowledger | undefined = undefined;
  private consumerTable: ConsumerRegistry | undefined = undefined;
  private publisher: Publishing | undefined = undefined;
  /** False while the broker asked us (channel.flow) to stop publishing. */
  private flowActive = true;

  /** @internal Use `connection.openChannel()`. */
  constructor(host: ChannelHost, id: number) {
    super();
    this.host = host;
    this.id = id;
    this.inbound = new ChannelInbound(this);
  }

  /** @internal Acks, nacks and rejects on the wire. */
  get acks(): Acknowledger {
    // One well-predicted test per delivery and per ack; most channels never deliver.
    return (this.acknowledger ??= new Acknowledger(
      this.host,
      this.id,
      () => this.state === 'open' || this.state === 'closing',
    ));
  }

  /** @internal The consumers by tag. */
  get consumers(): ConsumerRegistry {
    return (this.consumerTable ??= new ConsumerRegistry(this));
  }

  /** @internal Publishes and their confirms. */
  get publishing(): Publishing {
    return (this.publisher ??= new Publishing(this.host, this.id, () => {
      if (!this.canSend) throw this.unusableError();
    }));
  }

  /** @internal Stops a consumer (basic.cancel); what `consumer.cancel()` calls. */
  abstract cancelConsumer(consumerTag: string): Promise<void>;

  /** What `console.log(channel)` shows: its number and state (its connection holds credentials). */
  [inspectCustom](): string {
    return `Channel { ${this.id}, ${publicChannelState(this.state)} }`;
  }

  /** What `JSON.stringify(channel)` gives. */
  toJSON(): { type: 'Channel'; id: number; state: string } {
    return { type: 'Channel', id: this.id, state: publicChannelState(this.state) };
  }

  /** True until the channel is closed by either side or its connection dies. */
  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Why the channel closed, once it has. */
  get closeReason(): AMQPError | undefined {
    return this.closeError;
  }

  /** True after `confirmSelect()`. */
  get confirmMode(): boolean {
    return this.publisher?.confirms !== undefined;
  }

  /** Publishes sent in confirm mode and not yet confirmed. */
  get unconfirmedCount(): number {
    return this.publisher?.confirms?.size ?? 0;
  }

  /** True unless the broker asked this channel to stop publishing. */
  get isFlowActive(): boolean {
    return this.flowActive;
  }

  /** @internal Sends channel.open; resolves when the broker answers. */
  async open(options?: CallOptions): Promise<void> {
    await this.call('channel.open', {}, options, { opening: true });
    if (this.state === 'opening') this.moveTo('open');
  }

  // ------------------------------------------------------------------ sending

  private moveTo(next: ChannelState): void {
    this.state = nextState(this.state, next);
  }

  /** @internal Sends a method and schedules the flush. */
  send<N extends MethodName>(name: N, args: MethodInputByName[N]): void {
    this.host.sendMethod(this.id, name, args);
    this.host.scheduleFlush();
  }

  /** @internal The call queue's way out. */
  sendCall(call: PendingCall): void {
    this.send(call.name, call.args);
  }

  /** True while this channel may send: it is open, and so is its connection. */
  protected get canSend(): boolean {
    return this.state === 'open' && this.host.unusable === undefined;
  }

  protected unusableError(): AMQPError {
    return unusableError(this.id, this.state, this.closeError, this.host.unusable);
  }

  /**
   * Queues a synchronous method and resolves with its reply. Arguments are encoded up front so that
   * invalid input is reported before anything is queued.
   */
  protected call<N extends SyncMethodName>(
    name: N,
    args: MethodInputByName[N],
    options?: CallOptions,
    extra?: CallExtra,
  ): Promise<CallResult<N>> {
    const sendable = this.state === 'open' || (extra?.opening === true && this.state === 'opening');
    if (!sendable || this.host.unusable !== undefined) return Promise.reject(this.unusableError());
    const limits = {
      timeout: options?.timeout ?? this.host.operationTimeout ?? 0,
      signal: options?.signal,
      channelId: this.id,
    };
    return this.calls.request(name, args, limits, extra?.handler);
  }

  /**
   * @internal A call timed out or was aborted. Still waiting behind another: it is just dropped.
   * Sent: its reply may yet come and would answer the next call, so the channel is closed
   * (channel.close on the wire) and its id kept until the broker's close-ok.
   */
  abandonCall<N extends SyncMethodName>(call: PendingCallOf<N>, error: AMQPError): void {
    if (this.calls.removeWaiting(call)) {
      call.reject(error);
      return;
    }
    if (this.calls.head !== call || isEnded(this.state)) return;
    const holdId = this.host.unusable === undefined;
    const next = holdId ? 'abandoned' : 'closed';
    if (call.name === 'channel.close') {
      // close() gave up waiting for close-ok: closed all the same (finish resolves the close call).
      this.finish(undefined, next);
      return;
    }
    const behind = this.calls.drain().filter((c) => c !== call);
    call.reject(error);
    this.acknowledger?.flushRun();
    // Sent unless it already was: a close() queued behind this call has not gone out yet.
    if (holdId) {
      this.send('channel.close', {
        replyCode: REPLY_CODES.REPLY_SUCCESS,
        replyText: `${call.name} got no reply in time`,
        classId: 0,
        methodId: 0,
      });
    }
    this.finish(error, next);
    const closed = new ClosedError(`channel ${this.id} was closed: ${error.message}`, { cause: error });
    for (const c of behind) c.reject(closed);
  }

  /** @internal The broker's close-ok (or close) of an abandoned channel arrived: its id may be reused. */
  releaseAbandoned(): void {
    if (this.state !== 'abandoned') return;
    this.moveTo('closed');
    this.inbound.reset();
    this.host.releaseChannel(this.id);
  }

  /** @internal Acknowledgement from a Message: dropped if this channel is not the one that delivered it. */
  settle(deliveryTag: number, generation: number, how: Settlement): boolean {
    if (generation !== this.generation || !this.canSend) return false;
    this.acks.settle(deliveryTag, how);
    return true;
  }

  /** @internal True while acks (or other frames) of this channel's connection wait for the next flush. */
  get hasPendingWrites(): boolean {
    return this.host.hasPendingWrites;
  }

  /** @internal Writes what waits for the next flush of this channel's connection now. */
  flushNow(): void {
    this.host.flushNow();
  }

  /** @internal Runs `hook` once what waits for the next flush of this channel's connection is written. */
  afterNextFlush(hook: () => void): void {
    this.host.afterNextFlush(hook);
  }

  // ------------------------------------------------------------------ close

  /**
   * Closes the channel (channel.close) after the calls already queued. Publishes awaiting a confirm
   * are rejected if the broker has not confirmed them by then. Idempotent. With `timeout` (default
   * the connection's `operationTimeout`), it resolves at the latest that long after the close was
   * sent, the broker's close-ok or not; the id is then kept until the close-ok arrives.
   */
  async close(options?: { timeout?: number }): Promise<void> {
    if (isEnded(this.state)) return;
    if (this.state === 'closing') {
      await new Promise((resolve) => this.once('close', resolve));
      return;
    }
    const connection = this.host.unusable;
    if (connection !== undefined) {
      this.finish(connection instanceof ClosedError ? new ClosedError('connection closed') : connection);
      return;
    }
    this.acknowledger?.flushRun();
    const closing = this.call(
      'channel.close',
      { replyCode: REPLY_CODES.REPLY_SUCCESS, replyText: 'Goodbye', classId: 0, methodId: 0 },
      options?.timeout === undefined ? undefined : { timeout: options.timeout },
    );
    this.moveTo('closing');
    try {
      await closing;
    } catch {
      // Closed by the broker or the connection meanwhile: closed either way.
    }
    this.finish(undefined);
  }

  /** `await using ch = await conn.openChannel()` closes the channel at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Ends the channel for its user: rejects pending calls and confirms, stops consumers, and frees
   * the id, unless `next` is `abandoned` (then the broker's close-ok frees it).
   */
  private finish(error: AMQPError | undefined, next: 'closed' | 'abandoned' = 'closed'): void {
    if (isEnded(this.state)) return;
    this.moveTo(next);
    this.closeError = error;
    this.inbound.reset();
    const reason = error ?? new ClosedError(`channel ${this.id} was closed`);
    for (const c of this.calls.drain()) {
      // A close we asked for completes normally when the broker closes or the connection drops.
      if (c.name === 'channel.close') c.resolve(null);
      else c.reject(reason);
    }
    this.publisher?.confirms?.failAll(reason);
    this.acknowledger?.flushRun(); // only clears the hold: the channel no longer writes
    this.consumerTable?.stopAll(error);
    if (next === 'closed') this.host.releaseChannel(this.id);
    this.emit('close', error);
  }

  // ------------------------------------------------------------------ receiving

  /** @internal */
  get lifecycle(): ChannelState {
    return this.state;
  }

  /** @internal */
  closedByServer(error: ChannelClosedByServer): void {
    this.finish(error);
  }

  /** @internal */
  flowChanged(active: boolean): void {
    this.flowActive = active;
    this.emit('flow', active);
  }

  /** @internal A mandatory message came back: its confirm rejects with it, and `'return'` tells of it. */
  returned(message: ReturnedMessage): void {
    this.publisher?.confirms?.markReturned(new MessageReturned(message));
    if (this.listenerCount('return') > 0) this.emit('return', message);
  }

  /** @internal The connection is about to send connection.close: held acks go first. */
  onConnectionClosing(): void {
    this.acknowledger?.flushRun(); // writes only while the channel is open or closing
  }

  /** @internal The connection died. */
  onConnectionLost(error: AMQPError): void {
    this.finish(error);
    this.releaseAbandoned();
  }
}
