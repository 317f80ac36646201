/**
 * The life of a connection as one state: the handshake step it is at, open, closing, closed.
 * Errors are classified from this state (a socket that ends while authenticating means refused
 * credentials; a close while opening the vhost means the vhost was refused), never from the text
 * of a message.
 *
 * ```
 * awaiting-start ─► authenticating ─► tuning ─► opening-vhost ─► open ─► closing ─► closed
 *        └────────────────┴──────────────┴────────────┴───────────┴──────────────────►┘
 * ```
 *
 * @module
 */
import { checkedMove, isAllowed, type PublicState, type Transitions } from '../state-machine.js';

export type ConnectionState =
  /** The protocol header is sent; connection.start is awaited. */
  | 'awaiting-start'
  /** connection.start-ok is sent; connection.tune (or a SASL challenge) is awaited. */
  | 'authenticating'
  /** connection.tune arrived; the limits are being agreed (tune-ok). */
  | 'tuning'
  /** connection.open is sent; open-ok is awaited. */
  | 'opening-vhost'
  /** open-ok arrived: channels may be opened. */
  | 'open'
  /** We sent connection.close and wait for close-ok. */
  | 'closing'
  /** Dead, for good: a connection is never reopened. */
  | 'closed';

const NEXT: Transitions<ConnectionState> = {
  'awaiting-start': ['authenticating', 'closing', 'closed'],
  authenticating: ['tuning', 'closing', 'closed'],
  tuning: ['opening-vhost', 'closing', 'closed'],
  'opening-vhost': ['open', 'closing', 'closed'],
  open: ['closing', 'closed'],
  closing: ['closed'],
  closed: [],
};

/** True when `to` may follow `from`. */
export function canMove(from: ConnectionState, to: ConnectionState): boolean {
  return isAllowed(NEXT, from, to);
}

/** `to`, if it may follow `from`; a move the state machine does not allow is a bug in the connection. */
export function nextState(from: ConnectionState, to: ConnectionState): ConnectionState {
  return checkedMove(NEXT, 'connection', from, to);
}

/** True while the handshake is under way (before open-ok). */
export function isHandshaking(state: ConnectionState): boolean {
  return state === 'awaiting-start' || state === 'authenticating' || state === 'tuning' || state === 'opening-vhost';
}

export function publicState(state: ConnectionState): PublicState {
  return isHandshaking(state) ? 'opening' : (state as PublicState);
}
