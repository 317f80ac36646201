/**
 * Assembled content turned into what the application sees: a `Message` (from basic.deliver or
 * basic.get-ok) or a returned message (basic.return).
 *
 * @module
 */
import type { MethodArgsByName } from '../protocol/generated/methods.js';
import type { ReturnedMessage } from './channel-options.js';
import type { AssembledContent } from './content-assembler.js';
import { type AckTarget, Message } from './message.js';

/**
 * A message pushed to a consumer (basic.deliver, which names the consumer) or fetched by
 * basic.get (get-ok, which says how many are left); `target` is undefined when it needs no ack.
 */
export function contentMessage(
  content: AssembledContent,
  args: MethodArgsByName['basic.deliver'] | MethodArgsByName['basic.get-ok'],
  target: AckTarget | undefined,
  generation: number,
): Message {
  return new Message(
    {
      body: content.body,
      properties: content.properties,
      deliveryTag: args.deliveryTag,
      redelivered: args.redelivered,
      exchange: args.exchange,
      routingKey: args.routingKey,
      consumerTag: 'consumerTag' in args ? args.consumerTag : undefined,
      messageCount: 'messageCount' in args ? args.messageCount : undefined,
      decodeError: content.decodeError,
    },
    target,
    generation,
  );
}

/** A mandatory message the broker could not route. */
export function returnedMessage(content: AssembledContent, args: MethodArgsByName['basic.return']): ReturnedMessage {
  return {
    replyCode: args.replyCode,
    replyText: args.replyText,
    exchange: args.exchange,
    routingKey: args.routingKey,
    body: content.body,
    properties: content.properties,
    decodeError: content.decodeError,
  };
}
