/**
 * What the connection's and the channel's state machines share: each lists, for every state, the
 * states that may follow it, and a move it does not list is a bug in the code that asked for it.
 * Users see both through the same four states (`PublicState`).
 *
 * @module
 */

/**
 * A connection's or a channel's state as users see it (`inspect`, `toJSON`, error messages): the
 * connection's handshake steps are one, and a channel's abandoned state is closed.
 */
export type PublicState = 'opening' | 'open' | 'closing' | 'closed';

/** For each state, the states that may follow it. */
export type Transitions<S extends string> = { readonly [From in S]: readonly S[] };

/** True when `moves` lets `to` follow `from`. */
export function isAllowed<S extends string>(moves: Transitions<S>, from: S, to: S): boolean {
  return moves[from].includes(to);
}

/** `to`, if `moves` lets it follow `from`; otherwise throws an internal error naming the `machine`. */
export function checkedMove<S extends string>(moves: Transitions<S>, machine: string, from: S, to: S): S {
  if (!isAllowed(moves, from, to)) throw new Error(`internal: ${machine} state ${from} cannot move to ${to}`);
  return to;
}
