/**
 * Everything a channel reads, in the order it happens: what each frame that arrives on the channel
 * does (replies answer the call in flight, the broker's own requests such as cancel, flow and close
 * are answered), how content (deliveries, get-ok, returns) is assembled from its method, header and
 * body frames, and the `Message` or returned message built from it and handed on. Anything out of
 * order is a 505, which closes the connection.
 *
 * @module
 */
import { ChannelClosedByServer, FrameError, REPLY_CODES } from '../errors.js';
import type { ContentHeader } from '../protocol/content-header.js';
import {
  type AMQPMethod,
  METHOD_NAMES,
  type MethodArgsByName,
  type MethodInputByName,
  type MethodName,
} from '../protocol/generated/methods.js';
import type { BasicProperties } from '../protocol/generated/properties.js';
import type { Acknowledger } from './acknowledger.js';
import type { CallQueue } from './call-queue.js';
import type { ReturnedMessage } from './channel-options.js';
import type { ChannelState } from './channel-state.js';
import type { ConfirmTracker } from './confirms.js';
import type { ConsumerRegistry } from './consumer.js';
import { type AckTarget, Message } from './message.js';

// -------------------------------------------------------------------- what it needs of its channel

/** What the receiving side asks of its channel. */
export interface ReceivingChannel extends AckTarget {
  readonly id: number;
  /** Stamped on each message, so an ack reaches only the channel that delivered it. */
  readonly generation: number;
  readonly lifecycle: ChannelState;
  readonly publishing: { readonly confirms: ConfirmTracker | undefined };
  readonly calls: CallQueue;
  readonly consumers: ConsumerRegistry;
  readonly acks: Acknowledger;
  /** Sends a method and schedules the flush. */
  send<N extends MethodName>(name: N, args: MethodInputByName[N]): void;
  closedByServer(error: ChannelClosedByServer): void;
  /** The broker asked to stop or resume publishing (channel.flow). */
  flowChanged(active: boolean): void;
  returned(message: ReturnedMessage): void;
  /** The broker's close-ok (or close) of an abandoned channel arrived: its id may be reused. */
  releaseAbandoned(): void;
}

// ------------------------------------------------------------------------------ routing each frame

export class ChannelInbound {
  private readonly content: ContentAssembler;

  constructor(private readonly channel: ReceivingChannel) {
    this.content = new ContentAssembler(channel.id);
  }

  /** Drops a half-assembled message (the channel ended). */
  reset(): void {
    this.content.reset();
  }

  /** True for what an abandoned channel reads and drops (see `ChannelState`). */
  private get dropping(): boolean {
    return !this.content.busy && this.channel.lifecycle === 'abandoned';
  }

  method(m: AMQPMethod): void {
    const ch = this.channel;
    if (this.dropping) {
      this.afterAbandon(m);
      return;
    }
    if (this.content.busy) {
      throw new FrameError(
        `${m.name} arrived on channel ${ch.id} while a message body was expected`,
        REPLY_CODES.UNEXPECTED_FRAME,
      );
    }
    switch (m.name) {
      case 'basic.deliver':
      case 'basic.get-ok':
      case 'basic.return':
        this.content.start(m);
        return;
      case 'basic.ack':
        ch.publishing.confirms?.confirm(m.args.deliveryTag, m.args.multiple, true);
        return;
      case 'basic.nack':
        ch.publishing.confirms?.confirm(m.args.deliveryTag, m.args.multiple, false);
        return;
      case 'basic.consume-ok': {
        const head = ch.calls.head;
        if (head?.name !== 'basic.consume') {
          // The same consumer confirmed twice (seen once from RabbitMQ 3.10 while a quorum queue
          // elected its leader): it is registered already, so nothing is lost by letting it pass.
          if (ch.consumers.get(m.args.consumerTag) !== undefined) return;
          throw this.unexpected(m);
        }
        const consumer = ch.consumers.started({
          consumerTag: m.args.consumerTag,
          queue: head.args.queue ?? '',
          handler: head.handler ?? (() => {}),
          noAck: head.args.noAck ?? false,
        });
        ch.calls.answer(m.id, consumer);
        return;
      }
      case 'basic.cancel':
        // The broker cancelled a consumer (queue deleted, node down): consumer_cancel_notify.
        if (!m.args.nowait) ch.send('basic.cancel-ok', { consumerTag: m.args.consumerTag });
        ch.consumers.cancelled(m.args.consumerTag, { serverCancelled: true });
        return;
      case 'channel.flow':
        ch.send('channel.flow-ok', { active: m.args.active });
        ch.flowChanged(m.args.active);
        return;
      case 'channel.close': {
        ch.send('channel.close-ok', {});
        const method = METHOD_NAMES.get(m.args.classId * 65536 + m.args.methodId);
        ch.closedByServer(new ChannelClosedByServer(m.args, method));
        return;
      }
      case 'channel.close-ok':
        ch.calls.answer(m.id, m);
        return;
      default:
        if (ch.calls.answer(m.id, m)) return;
        throw this.unexpected(m);
    }
  }

  header(header: ContentHeader): void {
    if (this.dropping) return; // cut off by an abandoned call
    const done = this.content.header(header);
    if (done !== undefined) this.complete(done);
  }

  body(payload: Buffer): void {
    if (this.dropping) return;
    const done = this.content.body(payload);
    if (done !== undefined) this.complete(done);
  }

  private unexpected(m: AMQPMethod): FrameError {
    return new FrameError(`unexpected ${m.name} on channel ${this.channel.id}`, REPLY_CODES.UNEXPECTED_FRAME);
  }

  /** What arrives for an abandoned channel: dropped, until close-ok frees the id. */
  private afterAbandon(m: AMQPMethod): void {
    switch (m.name) {
      case 'channel.close':
        this.channel.send('channel.close-ok', {});
        this.channel.releaseAbandoned();
        return;
      case 'channel.close-ok':
        this.channel.releaseAbandoned();
        return;
      case 'basic.deliver':
      case 'basic.get-ok':
      case 'basic.return':
        this.content.start(m); // its header and body frames follow; they are read and dropped
        return;
      default:
        return;
    }
  }

  private complete(content: AssembledContent): void {
    const ch = this.channel;
    const state = ch.lifecycle;
    if (state === 'closed' || state === 'abandoned') return; // a late delivery to an abandoned channel
    const m = content.method;
    if (m.name === 'basic.deliver') {
      const consumer = ch.consumers.get(m.args.consumerTag);
      const noAck = consumer?.noAck ?? false;
      ch.acks.delivered(m.args.deliveryTag, noAck);
      const message = contentMessage(content, m.args, noAck ? undefined : ch, ch.generation);
      if (consumer !== undefined) consumer.deliver(message);
      else if (!noAck) message.reject({ requeue: true }); // consumer gone (cancel in flight): give it back
    } else if (m.name === 'basic.get-ok') {
      const head = ch.calls.head;
      const noAck = head?.name === 'basic.get' && (head.args.noAck ?? false);
      ch.acks.delivered(m.args.deliveryTag, noAck);
      const message = contentMessage(content, m.args, noAck ? undefined : ch, ch.generation);
      if (!ch.calls.answer(m.id, message)) {
        throw new FrameError('basic.get-ok without a basic.get', REPLY_CODES.UNEXPECTED_FRAME);
      }
    } else if (m.name === 'basic.return') {
      ch.returned(returnedMessage(content, m.args));
    }
  }
}

// ------------------------------------------------------------------------------ assembling content
// A content method (basic.deliver, basic.get-ok, basic.return), then its header frame, then body
// frames until the announced size. Anything out of that order is a 505.

/** A whole message: its method, properties and body. */
export interface AssembledContent {
  method: AMQPMethod;
  properties: BasicProperties;
  body: Buffer;
  /** Why the properties could not be decoded (then `properties` is `{}`); the framing was intact. */
  decodeError: FrameError | undefined;
}

const EMPTY_BODY = Buffer.alloc(0);
/** The properties between messages; never handed out, since every message's header replaces them. */
const NO_PROPERTIES: BasicProperties = {};

export class ContentAssembler {
  private method: AMQPMethod | undefined;
  private properties: BasicProperties = NO_PROPERTIES;
  private decodeError: FrameError | undefined;
  /** -1 until the header has arrived. */
  private bodySize = -1;
  private received = 0;
  /** Body frames kept as views until the whole body has arrived; made for a body of several frames only. */
  private parts: Buffer[] | undefined = undefined;

  constructor(private readonly channelId: number) {}

  /** True between a content method and the end of its body. */
  get busy(): boolean {
    return this.method !== undefined;
  }

  start(method: AMQPMethod): void {
    this.method = method;
    this.bodySize = -1;
    this.received = 0;
  }

  /** Takes the content header; returns the content if the body is empty. */
  header(header: ContentHeader): AssembledContent | undefined {
    if (this.method === undefined || this.bodySize >= 0) {
      throw new FrameError(
        `content header without a method on channel ${this.channelId}`,
        REPLY_CODES.UNEXPECTED_FRAME,
      );
    }
    this.bodySize = header.bodySize;
    // Properties that did not decode affect this message alone: it is still assembled, carrying why.
    this.properties = header.properties;
    this.decodeError = header.decodeError;
    return this.bodySize === 0 ? this.complete(EMPTY_BODY) : undefined;
  }

  /** Adds a body frame; returns the content once the body is complete. */
  body(payload: Buffer): AssembledContent | undefined {
    if (this.method === undefined || this.bodySize < 0) {
      throw new FrameError(
        `body frame without a content header on channel ${this.channelId}`,
        REPLY_CODES.UNEXPECTED_FRAME,
      );
    }
    const n = payload.length;
    if (this.received + n > this.bodySize) {
      throw new FrameError(
        `body longer than the ${this.bodySize} bytes its header announced on channel ${this.channelId}`,
        REPLY_CODES.UNEXPECTED_FRAME,
      );
    }
    // A body in one frame is handed on as a view of the read buffer: no copy.
    if (this.received === 0 && n === this.bodySize) return this.complete(payload);
    // Views of the frames, joined once complete: memory follows the bytes that arrived, never the size a
    // header announced (a hostile 2^56-byte header must not allocate anything).
    const parts = (this.parts ??= []);
    parts.push(payload);
    this.received += n;
    if (this.received < this.bodySize) return undefined;
    return this.complete(Buffer.concat(parts, this.bodySize));
  }

  private complete(body: Buffer): AssembledContent {
    const content = { method: this.method!, properties: this.properties, body, decodeError: this.decodeError };
    this.reset();
    return content;
  }

  /** Drops a half-assembled message (the channel closed). */
  reset(): void {
    this.method = undefined;
    this.properties = NO_PROPERTIES;
    this.decodeError = undefined;
    this.bodySize = -1;
    this.received = 0;
    this.parts = undefined;
  }
}

// ---------------------------------------------------------------------------- building the message
// Assembled content turned into what the application sees: a `Message` (from basic.deliver or
// basic.get-ok) or a returned message (basic.return).

/**
 * A message pushed to a consumer (basic.deliver, which names the consumer) or fetched by
 * basic.get (get-ok, which says how many are left); `target` is undefined when it needs no ack.
 */
function contentMessage(
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
function returnedMessage(content: AssembledContent, args: MethodArgsByName['basic.return']): ReturnedMessage {
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
