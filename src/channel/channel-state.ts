/**
 * The life of a channel as one state. `abandoned` is the one a user never sees as such: a method
 * got no reply in time (or was aborted), so the channel was closed on our side, but its id stays
 * taken and whatever the broker still sends on it is read and dropped until its close-ok (or
 * close) arrives; a reply that came late must not answer a call on a new channel with that id.
 *
 * ```
 * opening ─► open ─► closing ─► closed
 *    │         │        │         ▲
 *    └─────────┴────────┴► abandoned
 * ```
 *
 * @module
 */
import { type AMQPError, ClosedError } from '../errors.js';
import { checkedMove, type PublicState, type Transitions } from '../state-machine.js';

export type ChannelState =
  /** channel.open is sent; open-ok is awaited. */
  | 'opening'
  /** Methods may be sent. */
  | 'open'
  /** close() sent channel.close; close-ok is awaited. */
  | 'closing'
  /** Closed for its user; the id is held until the broker's close-ok. */
  | 'abandoned'
  /** Done; the id is free. */
  | 'closed';

const NEXT: Transitions<ChannelState> = {
  opening: ['open', 'closing', 'abandoned', 'closed'],
  open: ['closing', 'abandoned', 'closed'],
  closing: ['abandoned', 'closed'],
  abandoned: ['closed'],
  closed: [],
};

/** `to`, if it may follow `from`; a move the state machine does not allow is a bug in the channel. */
export function nextState(from: ChannelState, to: ChannelState): ChannelState {
  return checkedMove(NEXT, 'channel', from, to);
}

/** True once the channel is closed for its user (whether or not its id is free yet). */
export function isEnded(state: ChannelState): boolean {
  return state === 'closed' || state === 'abandoned';
}

export function publicChannelState(state: ChannelState): PublicState {
  return state === 'abandoned' ? 'closed' : state;
}

/**
 * Why a channel in `state` cannot be used, as the error a call on it rejects with: always a
 * `ClosedError`, caused by what closed the channel or its connection when that was an error.
 * `connection` is the connection's reason (a `ClosedError` after a clean close or while closing).
 */
export function unusableError(
  id: number,
  state: ChannelState,
  closeError: AMQPError | undefined,
  connection: AMQPError | undefined,
): ClosedError {
  const reason = closeError ?? (connection instanceof ClosedError ? undefined : connection);
  if (reason === undefined) return new ClosedError(`channel ${id} is ${state === 'closing' ? 'closing' : 'closed'}`);
  if (reason instanceof ClosedError) return reason;
  return new ClosedError(`channel ${id} is closed: ${reason.message}`, { cause: reason });
}
