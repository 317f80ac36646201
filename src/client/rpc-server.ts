/**
 * The serving side of RPC: consume a queue, run a handler per request, publish its answer to the
 * request's `replyTo` with the same `correlationId`, then ack the request. Works with `client.rpc()`
 * (direct reply-to) and with any client that sets `replyTo` to a queue of its own.
 *
 * A request is acked only once its reply can no longer be lost by a cut; a cut before that makes the
 * request be delivered again (and answered twice; the caller ignores the second answer):
 * - A direct reply-to reply is published on the request's own channel, just before the ack and in
 *   the same write. The broker handles a channel's frames in order, so it has routed the reply
 *   before it takes the ack. No confirm is waited for: the call costs no extra round trip.
 * - A reply to a queue of the caller's own is published with a confirm, and the request is acked
 *   after it: the queue may keep the reply on disk, which only the confirm vouches for.
 *
 * @module
 */
import type { Message } from '../channel/message.js';
import type { BasicProperties } from '../protocol/generated/properties.js';
import { isThenable } from '../user-code.js';
import { DIRECT_REPLY_TO } from './rpc.js';
import { Subscription } from './subscription.js';
import { REQUEUE, type SubscribeOptions } from './subscription-options.js';
import type { ClientHost } from './host.js';
import type { Publisher } from './publisher.js';

/**
 * What an RPC handler answers: a body, or a body with properties (e.g. `contentType`, `headers`).
 *
 * @example
 * ```ts
 * const reply: RpcReply = { body: JSON.stringify({ ok: true }), properties: { contentType: 'application/json' } };
 * ```
 */
export type RpcReply = Buffer | string | { body: Buffer | string; properties?: BasicProperties };

/**
 * Answers one request. Throwing nacks the request (not requeued unless `requeueOnError`), and the
 * caller gets no reply (its `rpc()` times out).
 *
 * @example
 * ```ts
 * const add: RpcHandler = (req) => String(req.json<number[]>().reduce((a, b) => a + b, 0));
 * ```
 */
export type RpcHandler = (request: Message) => RpcReply | Promise<RpcReply>;

/**
 * Options of `client.rpcServer()`: those of `client.consume()`, with `requeueOnError` defaulting to
 * `false` (a request that makes the handler throw would otherwise come back forever).
 *
 * @example
 * ```ts
 * client.rpcServer('rpc.add', add, { concurrency: 4 });
 * ```
 */
export type RpcServerOptions = SubscribeOptions;

/** @internal */
export function createRpcServer(
  host: ClientHost,
  queue: string,
  handler: RpcHandler,
  replies: () => Publisher,
  options: RpcServerOptions = {},
): Subscription {
  return new Subscription(
    host,
    queue,
    async (request, isCurrent, channel) => {
      const returned = handler(request);
      // A handler that answers at once costs no extra turn of the microtask queue.
      const answer = isThenable(returned) ? await returned : returned;
      const replyTo = request.properties.replyTo;
      if (replyTo === undefined || replyTo === '') return; // nobody asked for an answer
      const plain = typeof answer === 'string' || Buffer.isBuffer(answer);
      const body = plain ? answer : answer.body;
      const properties = plain ? undefined : answer.properties;
      const correlationId = request.properties.correlationId;
      const replyProperties: BasicProperties =
        correlationId === undefined ? { ...properties } : { ...properties, correlationId };
      if (replyTo.startsWith(DIRECT_REPLY_TO)) {
        // A channel that has died cannot carry the reply; the broker requeues the request by itself.
        if (!isCurrent()) throw REQUEUE;
        await channel.basicPublish('', replyTo, typeof body === 'string' ? Buffer.from(body) : body, replyProperties);
        return;
      }
      await replies().publish('', replyTo, body, replyProperties);
    },
    { ...options, requeueOnError: options.requeueOnError ?? false },
  );
}
