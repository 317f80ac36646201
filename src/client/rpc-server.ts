/**
 * The serving side of RPC: consume a queue, run a handler per request, publish its answer to the
 * request's `replyTo` with the same `correlationId`, then ack the request. Works with `client.rpc()`
 * (direct reply-to) and with any client that sets `replyTo` to a queue of its own.
 *
 * The reply is published with a confirm before the request is acked, so a cut between the two makes
 * the request be delivered again (and answered twice; the caller ignores the second answer).
 *
 * @module
 */
import type { Message } from '../channel/message.js';
import type { BasicProperties } from '../protocol/generated/properties.js';
import { Subscription } from './subscription.js';
import type { SubscribeOptions } from './subscription-options.js';
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
    async (request) => {
      const answer = await handler(request);
      const replyTo = request.properties.replyTo;
      if (replyTo === undefined || replyTo === '') return; // nobody asked for an answer
      const { body, properties } =
        typeof answer === 'string' || Buffer.isBuffer(answer) ? { body: answer, properties: undefined } : answer;
      const correlationId = request.properties.correlationId;
      await replies().publish('', replyTo, body, {
        ...properties,
        ...(correlationId === undefined ? {} : { correlationId }),
      });
    },
    { ...options, requeueOnError: options.requeueOnError ?? false },
  );
}
