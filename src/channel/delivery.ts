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

/** A message pushed to a consumer; `target` is undefined when it needs no ack (noAck). */
export function deliveredMessage(
  content: AssembledContent,
  args: MethodArgsByName['basic.deliver'],
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
      consumerTag: args.consumerTag,
      decodeError: content.decodeError,
    },
    target,
    generation,
  );
}

/** A message fetched by basic.get. */
export function fetchedMessage(
  content: AssembledContent,
  args: MethodArgsByName['basic.get-ok'],
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
      messageCount: args.messageCount,
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
