/**
 * The publishing side of a warren/amqplib channel: the plain hot path, the publishes held while the
 * channel recovers (bounded, sent again in order), confirm-mode publishes not yet confirmed (for the
 * callbacks and `waitForConfirms`), and amqplib's `'drain'` when the write buffer has room again.
 *
 * @module
 */
import type { Channel as WarrenChannel } from '../channel/channel.js';
import type { Connection as WarrenConnection } from '../connect.js';
import { type AMQPError, ChannelClosedByServer, InvalidArgumentError, MessageReturned } from '../errors.js';
import type { BasicProperties } from '../protocol/generated/properties.js';
import { publishProperties } from './args.js';
import { IllegalOperationError, toAmqplibError } from './errors.js';
import type { Options, Replies } from './types.js';

/**
 * Called with `(null, {})` when the broker confirmed a publish, or with the error alone (and `ok`
 * undefined, as in amqplib) when it did not.
 */
export type ConfirmCallback = (err: Error | null, ok: Replies.Empty) => void;

/** What the publishing side needs from its channel. @internal */
export interface PublishHost {
  readonly confirmMode: boolean;
  /** Publishes a recovering channel holds before `publish` throws. */
  readonly maxBuffered: number;
  state(): 'open' | 'recovering' | 'closed';
  /** The open warren channel, if any. */
  channel(): WarrenChannel | undefined;
  /** The live warren connection, if any. */
  connection(): WarrenConnection | undefined;
  /** The current name of a queue the channel declared (server-named queues change on recovery). */
  queueName(name: string): string;
  /** Emits `'drain'` on the channel. */
  drain(): void;
  reportHandlerError(err: unknown, event: string): void;
}

/** One `publish` call, as the application made it. @internal */
export interface PublishRequest {
  exchange: string;
  routingKey: string;
  content: Buffer;
  options: Options.Publish | undefined;
  callback: ConfirmCallback | undefined;
}

interface PendingPublish {
  seq: number;
  exchange: string;
  routingKey: string;
  content: Buffer;
  properties: BasicProperties;
  mandatory: boolean;
  callback: ConfirmCallback | undefined;
  settled: boolean;
  waiters: ((err: Error | null) => void)[];
}

let publishSeq = 0;

/**
 * As in amqplib, a plain publish that a closing channel drops is not reported; one warren refused to
 * encode (a header value it cannot send, a priority above 255) is, as a warning, since amqplib
 * would have thrown.
 */
const ignore = (err: unknown): void => {
  if (err instanceof InvalidArgumentError) process.emitWarning(`warren/amqplib: publish not sent: ${err.message}`);
};

/** @internal */
export class Publishing {
  /** Confirm-mode publishes not settled yet, for `waitForConfirms`. */
  private readonly unconfirmed = new Set<PendingPublish>();
  /** Publishes waiting for the channel to come back. */
  private offline: PendingPublish[] = [];
  private closedWithUnconfirmed = false;
  private drainWanted = false;

  constructor(private readonly host: PublishHost) {}

  /** Publishes (arguments already checked); false asks the caller to wait for `'drain'`. */
  publish({ exchange, routingKey, content, options, callback }: PublishRequest): boolean {
    const host = this.host;
    const ch = host.channel();
    const usable = host.state() === 'open' && ch !== undefined && this.offline.length === 0;
    if (usable && !host.confirmMode) {
      // The plain hot path: nothing to remember about the message once it is written.
      const routed = exchange === '' ? host.queueName(routingKey) : routingKey;
      ch.basicPublish(exchange, routed, content, publishProperties(options), {
        mandatory: options?.mandatory === true,
      }).catch(ignore);
      return this.writable();
    }
    const pending: PendingPublish = {
      seq: ++publishSeq,
      exchange,
      routingKey,
      content,
      properties: publishProperties(options),
      mandatory: options?.mandatory === true,
      callback,
      settled: false,
      waiters: [],
    };
    if (host.confirmMode) this.unconfirmed.add(pending);
    if (!usable) {
      if (this.offline.length >= host.maxBuffered) {
        this.unconfirmed.delete(pending);
        throw new IllegalOperationError(
          `Channel is reconnecting and already holds ${this.offline.length} publishes (recover.maxBuffered); wait for 'drain'`,
        );
      }
      this.offline.push(pending);
      if (this.offline.length < host.maxBuffered / 2) return true;
      this.drainWanted = true;
      return false;
    }
    this.send(ch, pending);
    return this.writable();
  }

  /** The channel is back on `ch`: sends what waited, in publish order. */
  resume(ch: WarrenChannel): void {
    const offline = this.offline.sort((a, b) => a.seq - b.seq);
    this.offline = [];
    for (const p of offline) this.send(ch, p);
    if (this.drainWanted) this.waitDrain();
  }

  /** The channel closed for good: what waited fails, and so does `waitForConfirms` if anything was unconfirmed. */
  closed(): void {
    const closed = new Error('channel closed');
    const offline = this.offline;
    this.offline = [];
    for (const p of offline) this.settle(p, closed);
    if (this.unconfirmed.size > 0) this.closedWithUnconfirmed = true;
  }

  /** Resolves when every publish so far is confirmed; rejects on the first nack or a close. */
  settled(): Promise<void> {
    if (this.closedWithUnconfirmed) return Promise.reject(new Error('channel closed'));
    const waits = [...this.unconfirmed].map(
      (p) => new Promise<void>((resolve, reject) => p.waiters.push((err) => (err === null ? resolve() : reject(err)))),
    );
    return Promise.all(waits).then(() => undefined);
  }

  /** True while the connection's write buffer has room; otherwise arranges one `'drain'`. */
  private writable(): boolean {
    const conn = this.host.connection();
    if (conn === undefined || conn.transport.writable) return true;
    if (!this.drainWanted) {
      this.drainWanted = true;
      this.waitDrain();
    }
    return false;
  }

  private waitDrain(): void {
    const conn = this.host.connection();
    if (conn === undefined || this.host.state() !== 'open') return;
    conn.transport.waitWritable().then(() => {
      if (this.host.state() !== 'open' || !this.drainWanted) return;
      this.drainWanted = false;
      this.host.drain();
    });
  }

  private send(ch: WarrenChannel, p: PendingPublish): void {
    const routingKey = p.exchange === '' ? this.host.queueName(p.routingKey) : p.routingKey;
    const sent = ch.basicPublish(p.exchange, routingKey, p.content, p.properties, { mandatory: p.mandatory });
    if (!this.host.confirmMode) {
      sent.catch(ignore);
      return;
    }
    sent.then(
      () => this.settle(p, null),
      (err: AMQPError) => {
        const state = this.host.state();
        // Returned-and-confirmed counts as confirmed in amqplib; the return comes through 'return'.
        if (err instanceof MessageReturned) this.settle(p, null);
        else if (state === 'recovering' && !(err instanceof ChannelClosedByServer)) this.offline.push(p);
        else
          this.settle(
            p,
            state === 'closed' || err instanceof ChannelClosedByServer
              ? new Error('channel closed')
              : toAmqplibError(err),
          );
      },
    );
  }

  private settle(p: PendingPublish, err: Error | null): void {
    if (p.settled) return;
    p.settled = true;
    this.unconfirmed.delete(p);
    if (err !== null && this.host.state() === 'closed') this.closedWithUnconfirmed = true;
    if (p.callback !== undefined) {
      try {
        p.callback(err, (err === null ? {} : undefined) as Replies.Empty);
      } catch (e) {
        this.host.reportHandlerError(e, 'publish callback');
      }
    }
    for (const w of p.waiters) w(err);
  }
}
