/**
 * warren: an AMQP 0-9-1 client for Node.js and RabbitMQ.
 *
 * @example
 * ```ts
 * import { connect } from 'warren';
 * const conn = await connect('amqp://guest:guest@127.0.0.1:5672');
 * const ch = await conn.openChannel();
 * await ch.queueDeclare('hello');
 * await ch.basicPublish('', 'hello', Buffer.from('world'));
 * await conn.close();
 * ```
 * @module
 */
export { Channel } from './channel/channel.js';
export type {
  ChannelEvents,
  ConsumeOptions,
  ExchangeDeclareOptions,
  PublishOptions,
  QueueDeclareOptions,
  QueueDeclareResult,
  ReturnedMessage,
} from './channel/channel.js';
export { Consumer } from './channel/consumer.js';
export type { ConsumerEvents, MessageHandler } from './channel/consumer.js';
export { Message } from './channel/message.js';
export type { MultipleOptions, RequeueOptions } from './channel/message.js';
export { Connection, connect } from './connect.js';
export type { ConnectionEvents } from './connection/connection-base.js';
export type { AuthMechanism, ConnectionOptions } from './connection/options.js';
export { parseUrl, redactUrl } from './connection/options.js';
export {
  AbortError,
  AMQPError,
  AuthenticationError,
  ChannelClosedByServer,
  ChannelError,
  ClosedError,
  ConnectionClosedByServer,
  ConnectionError,
  ConsumerCancelled,
  FrameError,
  HandshakeError,
  HeartbeatTimeout,
  InvalidArgumentError,
  isHardError,
  isSoftError,
  MessageReturned,
  PublishNacked,
  REPLY_CODES,
  SocketError,
  TimeoutError,
} from './errors.js';
export type {
  AMQPErrorOptions,
  AnyReplyCode,
  HardReplyCode,
  ReplyCode,
  ReturnedMessageInfo,
  ServerCloseDetails,
  SoftReplyCode,
} from './errors.js';
export type { BasicProperties } from './protocol/generated/properties.js';
export { AmqpTimestamp, Decimal, fieldTypeOf, TypedValue } from './protocol/field-values.js';
export type { FieldTable, FieldTypeTag, FieldValue } from './protocol/field-values.js';
export { USER_CODE_ERROR_CODE, UserCodeError } from './user-code.js';
export { VERSION } from './version.js';
export { Backoff } from './client/backoff.js';
export type { BackoffOptions } from './client/backoff.js';
export { Client, createClient } from './client/client.js';
export type { BindOptions, WaitOptions } from './client/client.js';
export { ClientCore } from './client/client-core.js';
export type { ClientEvents, ClientOptions } from './client/client-core.js';
export { Subscription } from './client/consumer.js';
export type { SubscribeOptions, SubscriptionEvents, SubscriptionHandler } from './client/consumer.js';
export type { RetryOptions } from './client/retry.js';
export { MessageIterator } from './client/consumer-iterator.js';
export type { MessageIteratorOptions } from './client/consumer-iterator.js';
export { Publisher } from './client/publisher.js';
export type { PublisherEvents, PublisherOptions } from './client/publisher.js';
export type { RpcOptions } from './client/rpc.js';
export type { RpcHandler, RpcReply, RpcServerOptions } from './client/rpc-server.js';
export type { TopologyEntity } from './client/topology.js';
export { configureTracing, tracePublish, traceProcess, tracingReady } from './tracing/index.js';
export type { OpenTelemetryApi, PublishSpanInfo, ServerInfo, TracingOptions } from './tracing/index.js';
