/**
 * One publish as the robust publisher holds it (an `Entry`, from the call until its promise settles,
 * across resends) and one send of it as the channel's confirm bookkeeping sees it (a `Send`).
 *
 * @module
 */
import type { PublishOptions } from '../channel/channel.js';
import type { PendingConfirm } from '../channel/confirms.js';
import { type AMQPError, ChannelClosedByServer, type MessageReturned, REPLY_CODES } from '../errors.js';
import type { BasicProperties } from '../protocol/generated/properties.js';
import type { PublishSpan } from '../tracing/index.js';
import type { Fifo } from './fifo.js';

/** @internal */
export const WAITING = 0;
/** @internal */
export const INFLIGHT = 1;
/** @internal */
export const DONE = 2;
/** @internal */
export const MANDATORY: PublishOptions = { mandatory: true };
/** @internal What a settled or abandoned entry holds instead of its body, so that the body can be collected. */
export const NO_BODY = Buffer.alloc(0);

/** @internal */
export interface Entry {
  exchange: string;
  routingKey: string;
  /** Dropped (`NO_BODY`) once the caller's promise settles: nothing sends it after that. */
  body: Buffer;
  properties: BasicProperties | undefined;
  mandatory: boolean;
  /** Wire state: waiting to be sent, sent and not settled, or settled / dropped. */
  state: number;
  /** Bumped on every send, so that the settlement of an earlier send is recognised and ignored. */
  attempt: number;
  /** Unconfirmed when the broker closed the channel over a publish it did not name: sent alone. */
  suspect: boolean;
  /** True once the caller's promise has settled (confirmed, failed or abandoned). */
  done: boolean;
  resolve: () => void;
  reject: (error: AMQPError) => void;
  /** The caller's signal, while the entry is watched for it (see `watch()`). */
  signal: AbortSignal | undefined;
  /** The OpenTelemetry PRODUCER span, when tracing is on; ended when the caller's promise settles. */
  span: PublishSpan | undefined;
  /** Body size, counted in `pendingBytes` while the publisher holds the entry. */
  size: number;
  /** Taken in (counted in `pendingCount`), as opposed to waiting for room under `maxPending`. */
  held: boolean;
  /** The per-publish `timeout`, while it runs. */
  timer: NodeJS.Timeout | undefined;
  /** Times the broker nacked it; up to `nackRetries` it is sent again. */
  nacks: number;
  /** While it rests after a nack (see `Publisher.rest`): when it may be sent again (epoch ms). */
  resendAt: number;
}

/** @internal */
export type Settle = (e: Entry, attempt: number, error: AMQPError | undefined) => void;

/**
 * @internal One send of an entry, as the channel's confirm bookkeeping sees it: the channel calls it
 * synchronously when the ack, nack or return is read. One small object per send, no promise.
 */
export class Send implements PendingConfirm {
  returned: MessageReturned | undefined = undefined;
  settled = false;
  constructor(
    private readonly settle: Settle,
    private readonly entry: Entry,
    private readonly attempt: number,
    /** The routing key as sent: a server-named queue's name on this connection. */
    readonly routingKey: string,
  ) {}
  get exchange(): string {
    return this.entry.exchange;
  }
  get mandatory(): boolean {
    return this.entry.mandatory;
  }
  resolve(): void {
    this.settle(this.entry, this.attempt, undefined);
  }
  reject(error: AMQPError): void {
    this.settle(this.entry, this.attempt, error);
  }
  /** The channel closed unconfirmed: the publisher hears of it from the channel's 'close' event. */
  lost(): void {}
}

/** @internal Whose fault a channel close is; see `attribute`. */
export type Blame = 'alone' | 'suspects' | { exchange: string } | undefined;

/**
 * @internal Which unconfirmed messages a channel close is the fault of: `'alone'` the only one in
 * flight, `{ exchange }` every message to that exchange, `'suspects'` one of them but unknown which,
 * `undefined` none (the connection died, or the close was not caused by a publish). `inflight`
 * holds the sent entries, `count` how many of them are still unsettled.
 */
export function attribute(error: AMQPError | undefined, inflight: Fifo<Entry>, count: number): Blame {
  if (!(error instanceof ChannelClosedByServer) || error.method !== 'basic.publish') return undefined;
  if (count === 0) return undefined;
  // Only publishes are sent on this channel: with one in flight, it is the cause.
  if (count === 1) return 'alone';
  // "NOT_FOUND - no exchange 'x' in vhost '/'", "ACCESS_REFUSED - write access to exchange 'x'
  // ...": every message to that exchange fails alike. Other codes may be about one message.
  if (error.replyCode === REPLY_CODES.NOT_FOUND || error.replyCode === REPLY_CODES.ACCESS_REFUSED) {
    const named = /exchange '([^']*)'/.exec(error.replyText);
    if (named !== null && hasInflightTo(inflight, named[1]!)) return { exchange: named[1]! };
  }
  return 'suspects';
}

function hasInflightTo(inflight: Fifo<Entry>, exchange: string): boolean {
  for (let i = 0; i < inflight.length; i++) {
    const e = inflight.at(i);
    if (e.state === INFLIGHT && e.exchange === exchange) return true;
  }
  return false;
}
