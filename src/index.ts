/**
 * warren: an AMQP 0-9-1 client for Node.js, Bun and Deno, and RabbitMQ.
 *
 * Start with {@link createClient}: a client that reconnects by itself, declares again what you
 * declared, resumes consumers and re-sends unconfirmed publishes. {@link connect} is the low-level API.
 *
 * @example
 * ```ts
 * import { createClient } from 'warren';
 * const client = createClient('amqp://guest:guest@127.0.0.1:5672');
 * await client.declareQueue('hello');
 * client.consume('hello', async (msg) => console.log(msg.body.toString()));
 * await client.publisher().publish('', 'hello', 'world');
 * ```
 * @module
 */
export { Channel } from './channel/channel.js';
// The channel's option, result and event types (CallOptions, ConsumeOptions, ReturnedMessage…).
export type * from './channel/channel-options.js';
export type { ExchangeArgumentOptions, QueueArgumentOptions } from './channel/declare-options.js';
export { Consumer } from './channel/consumer.js';
export type { ConsumerEvents, MessageHandler } from './channel/consumer.js';
export { Message } from './channel/message.js';
export type { MultipleOptions, RequeueOptions } from './channel/message.js';
export { Connection, connect } from './connect.js';
export type { ConnectionEvents } from './connection/connection-base.js';
export type { AuthMechanism, ConnectionOptions } from './connection/options.js';
export type { Credentials, CredentialsProvider } from './connection/credentials.js';
export { parseUrl, redactUrl } from './connection/options.js';
export {
  AbortError,
  AMQPError,
  AuthenticationError,
  ChannelClosedByServer,
  ChannelError,
  ClosedError,
  ConnectionAttemptsExhausted,
  ConnectionClosedByServer,
  ConnectionError,
  CredentialsRefreshError,
  ConsumerCancelled,
  FrameError,
  HandshakeError,
  HeartbeatTimeout,
  InvalidArgumentError,
  isHardError,
  isSoftError,
  MessageReturned,
  PublishNacked,
  PublisherFullError,
  REPLY_CODES,
  SocketError,
  TimeoutError,
} from './errors.js';
export type {
  AMQPErrorCode,
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
export { CodecRegistry, jsonCodec } from './client/codecs.js';
export type { Codec, Decoded } from './client/codecs.js';
export type { BindOptions, WaitOptions } from './client/client.js';
export type { ClientEvents, ClientOptions } from './client/client-options.js';
export type { Logger } from './client/logger.js';
export type { ClientHealth, ClientStats } from './client/stats.js';
export { Subscription } from './client/subscription.js';
export type { SubscribeOptions, SubscriptionEvents, SubscriptionHandler } from './client/subscription-options.js';
export type { RetryOptions } from './client/retry.js';
export { MessageIterator } from './client/consumer-iterator.js';
export type { MessageIteratorOptions } from './client/consumer-iterator.js';
export { Publisher } from './client/publisher.js';
export type { PublisherEvents, PublisherOptions, PublisherPublishOptions } from './client/publisher-options.js';
export type { RpcOptions } from './client/rpc.js';
export type { RpcHandler, RpcReply, RpcServerOptions } from './client/rpc-server.js';
export type { TopologyEntity } from './client/topology.js';
export { configureTracing, tracePublish, traceProcess, tracingReady } from './tracing/index.js';
export { configureMetrics } from './tracing/metrics.js';
export type { MetricsOptions, OtelMeterProvider } from './tracing/metrics.js';
export type { OpenTelemetryApi, PublishSpanInfo, ServerInfo, TracingOptions } from './tracing/index.js';
