/**
 * The synchronous methods of one channel: one in flight, the rest waiting in order (AMQP allows a
 * single outstanding synchronous request per channel), each with its optional deadline.
 *
 * @module
 */
import { type AMQPError, AbortError, InvalidArgumentError, TimeoutError } from '../errors.js';
import {
  type AMQPMethod,
  METHOD_IDS,
  type MethodByName,
  type MethodInputByName,
  SYNC_RESPONSES,
  type SyncMethodName,
  type SyncReplyByName,
} from '../protocol/generated/methods.js';
import type { Consumer, MessageHandler } from './consumer.js';
import type { Message } from './message.js';

/**
 * What a call resolves with: its reply method, typed from the spec; for basic.consume the started
 * consumer, for basic.get the fetched message (or get-empty), and for a channel.close the channel
 * ended first `null`.
 */
export type CallResult<N extends SyncMethodName> = N extends 'basic.consume'
  ? Consumer
  : N extends 'basic.get'
    ? Message | MethodByName['basic.get-empty']
    : N extends 'channel.close'
      ? SyncReplyByName[N] | null
      : SyncReplyByName[N];

/** What may answer the call in flight. */
export type CallReply = AMQPMethod | Message | Consumer;

/** One queued synchronous method. */
export interface PendingCallOf<N extends SyncMethodName> {
  readonly name: N;
  readonly args: MethodInputByName[N];
  /** Ids of the methods that answer it. */
  readonly replies: readonly number[];
  resolve(reply: CallResult<N>): void;
  reject(error: AMQPError): void;
  /** For basic.consume: the handler to register when consume-ok arrives. */
  handler?: MessageHandler;
}

/** What a channel's call needs for some methods besides its deadline. */
export interface CallExtra {
  /** channel.open is sent while the channel is still opening. */
  opening?: boolean;
  /** basic.consume: the handler to register when consume-ok arrives. */
  handler?: MessageHandler;
}

/** Any queued call; narrowing on `name` types its arguments and its result. */
export type PendingCall = { [N in SyncMethodName]: PendingCallOf<N> }[SyncMethodName];

/** How long a call may take, and what else may end it. */
export interface CallLimits {
  /** Milliseconds to wait for the reply; 0 waits forever. */
  timeout: number;
  signal: AbortSignal | undefined;
  /** For the message of a timeout. */
  channelId: number;
}

/** Told when a call's deadline or abort fired before its reply came, with the error to reject it with. */
export type Abandon = <N extends SyncMethodName>(call: PendingCallOf<N>, error: AMQPError) => void;

/** What a call queue needs from its channel. */
export interface CallSender {
  /** Writes a call's method; throws `InvalidArgumentError` (having written nothing) on bad arguments. */
  sendCall(call: PendingCall): void;
  /** A call's deadline or abort fired before its reply came. */
  abandonCall: Abandon;
}

/** Longest delay a Node timer takes (longer ones fire at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;
const NO_REPLY: readonly number[] = [];
/** The queue of every idle channel, shared (never pushed to): most channels are idle most of the time. */
const IDLE: PendingCall[] = [];

export class CallQueue {
  private calls: PendingCall[] = IDLE;
  private headIndex = 0;

  /** The sender is an object rather than closures, so that a channel makes no function objects for its queue. */
  constructor(private readonly sender: CallSender) {}

  /** The call in flight, if any. */
  get head(): PendingCall | undefined {
    return this.calls[this.headIndex];
  }

  /**
   * Queues `name` and resolves with its reply. An invalid limit or an aborted signal rejects
   * before anything is queued; bad arguments reject as the call is sent (nothing is written).
   */
  request<N extends SyncMethodName>(
    name: N,
    args: MethodInputByName[N],
    limits: CallLimits,
    handler: MessageHandler | undefined,
  ): Promise<CallResult<N>> {
    const { timeout, signal } = limits;
    if (typeof timeout !== 'number' || !(timeout >= 0)) {
      return Promise.reject(new InvalidArgumentError(`timeout must be 0 or more milliseconds, got ${String(timeout)}`));
    }
    if (signal?.aborted) return Promise.reject(new AbortError(`${name} aborted`, { cause: signal.reason }));
    const replies = SYNC_RESPONSES.get(METHOD_IDS[name]) ?? NO_REPLY;
    return new Promise<CallResult<N>>((resolve, reject) => {
      const call: PendingCallOf<N> = { name, args, replies, resolve, reject };
      if (handler !== undefined) call.handler = handler;
      if (timeout > 0 || signal !== undefined) {
        armDeadline(call, limits, (c, error) => this.sender.abandonCall(c, error));
      }
      this.push(call);
    });
  }

  /** Queues a call; sends it at once if nothing is in flight. */
  push<N extends SyncMethodName>(call: PendingCallOf<N>): void {
    // A PendingCallOf<N> is one member of the PendingCall union; TypeScript cannot see that for a generic N.
    const pending = call as unknown as PendingCall;
    if (this.calls === IDLE) this.calls = [pending];
    else this.calls.push(pending);
    if (this.calls.length - this.headIndex === 1) this.sendHead();
  }

  /** Completes the call in flight if `id` answers it, and sends the next. */
  answer(id: number, reply: CallReply): boolean {
    const head = this.head;
    if (head === undefined || !head.replies.includes(id)) return false;
    this.shift();
    // The id is one of the replies the spec gives for this call, so `reply` is of its type.
    (head.resolve as (reply: CallReply) => void)(reply);
    // Usually nothing waits behind it: then sendHead is not even called, so the optimised answer()
    // carries no inlined copy of the whole send path.
    if (this.calls !== IDLE) this.sendHead();
    return true;
  }

  /** Takes a call that waits behind the one in flight out of the queue; false if it is not waiting. */
  removeWaiting<N extends SyncMethodName>(call: PendingCallOf<N>): boolean {
    const at = this.calls.indexOf(call as unknown as PendingCall, this.headIndex + 1);
    if (at < 0) return false;
    this.calls.splice(at, 1);
    return true;
  }

  /** Empties the queue, handing back every call not yet answered. */
  drain(): PendingCall[] {
    const rest = this.calls.slice(this.headIndex);
    this.calls = IDLE;
    this.headIndex = 0;
    return rest;
  }

  private sendHead(): void {
    const head = this.head;
    if (head === undefined) return;
    try {
      this.sender.sendCall(head);
    } catch (err) {
      // Invalid arguments: nothing was written. Fail this call and move on to the next.
      this.shift();
      head.reject(err instanceof InvalidArgumentError ? err : new InvalidArgumentError(String(err)));
      this.sendHead();
    }
  }

  private shift(): void {
    this.calls[this.headIndex] = undefined as never;
    this.headIndex++;
    if (this.headIndex === this.calls.length) {
      this.calls = IDLE;
      this.headIndex = 0;
    }
  }
}

/**
 * Gives `call` a deadline (`timeout` ms, 0 for none) and an abort signal: when either fires first,
 * `abandon` is told with the error to reject it with. Both are let go as soon as it settles.
 */
export function armDeadline<N extends SyncMethodName>(
  call: PendingCallOf<N>,
  deadline: CallLimits,
  abandon: (call: PendingCallOf<N>, error: AMQPError) => void,
): void {
  const { timeout, signal } = deadline;
  const { resolve, reject } = call;
  let timer: NodeJS.Timeout | undefined;
  const onAbort = () => abandon(call, new AbortError(`${call.name} aborted`, { cause: signal?.reason }));
  const release = () => {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  };
  call.resolve = (reply) => {
    release();
    resolve(reply);
  };
  call.reject = (error) => {
    release();
    reject(error);
  };
  if (timeout > 0) {
    const expired = () =>
      abandon(
        call,
        new TimeoutError(
          `${call.name} got no reply from the broker within ${timeout} ms; channel ${deadline.channelId} was closed, ` +
            'because AMQP cannot cancel a method in flight (open a new channel to go on)',
        ),
      );
    timer = setTimeout(expired, Math.min(timeout, MAX_TIMER_MS));
  }
  signal?.addEventListener('abort', onAbort, { once: true });
}
