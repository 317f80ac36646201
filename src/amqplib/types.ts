/**
 * The shapes of amqplib's API (options, replies, messages), written for warren/amqplib so that code
 * typed against `@types/amqplib` compiles unchanged.
 *
 * @module
 */

/** What the broker answered, by operation (amqplib's `Replies`). */
export namespace Replies {
  /** An operation whose reply carries no fields. */
  export type Empty = {};
  /** Reply of `assertQueue` and `checkQueue`. */
  export interface AssertQueue {
    queue: string;
    messageCount: number;
    consumerCount: number;
  }
  /** Reply of `purgeQueue`. */
  export interface PurgeQueue {
    messageCount: number;
  }
  /** Reply of `deleteQueue`. */
  export interface DeleteQueue {
    messageCount: number;
  }
  /** Reply of `assertExchange`. */
  export interface AssertExchange {
    exchange: string;
  }
  /** Reply of `consume` and `cancel`. */
  export interface Consume {
    consumerTag: string;
  }
}

/**
 * A field-table or property value as amqplib types it (`any`: plain values, or `{ '!': type, value }`).
 * The one deliberate `any` of warren's public API: amqplib code relies on it to compile unchanged.
 */
// biome-ignore lint/suspicious/noExplicitAny: header values are whatever the application puts there, as in amqplib.
export type HeaderValue = any;

/** Options of each operation (amqplib's `Options`). */
export namespace Options {
  /** Where to connect, as an object instead of a URL. */
  export interface Connect {
    protocol?: string | undefined;
    hostname?: string | undefined;
    port?: number | undefined;
    username?: string | undefined;
    password?: string | undefined;
    locale?: string | undefined;
    frameMax?: number | undefined;
    channelMax?: number | undefined;
    heartbeat?: number | undefined;
    vhost?: string | undefined;
  }
  /** Options of `assertQueue`. `durable` defaults to true, as in amqplib. */
  export interface AssertQueue {
    exclusive?: boolean | undefined;
    durable?: boolean | undefined;
    autoDelete?: boolean | undefined;
    arguments?: Record<string, HeaderValue> | undefined;
    messageTtl?: number | undefined;
    expires?: number | undefined;
    deadLetterExchange?: string | undefined;
    deadLetterRoutingKey?: string | undefined;
    maxLength?: number | undefined;
    maxPriority?: number | undefined;
    overflow?: string | undefined;
    queueMode?: string | undefined;
  }
  /** Options of `deleteQueue`. */
  export interface DeleteQueue {
    ifUnused?: boolean | undefined;
    ifEmpty?: boolean | undefined;
  }
  /** Options of `assertExchange`. `durable` defaults to true, as in amqplib. */
  export interface AssertExchange {
    durable?: boolean | undefined;
    internal?: boolean | undefined;
    autoDelete?: boolean | undefined;
    alternateExchange?: string | undefined;
    arguments?: Record<string, HeaderValue> | undefined;
  }
  /** Options of `deleteExchange`. */
  export interface DeleteExchange {
    ifUnused?: boolean | undefined;
  }
  /** Options of `publish` and `sendToQueue`: message properties plus amqplib's conveniences. */
  export interface Publish {
    /** Per-message TTL in milliseconds (sent as a string). */
    expiration?: string | number | undefined;
    userId?: string | undefined;
    /** Extra routing keys (RabbitMQ's sender-selected distribution), sent in the headers. */
    CC?: string | string[] | undefined;
    mandatory?: boolean | undefined;
    /** `true` for deliveryMode 2. */
    persistent?: boolean | undefined;
    deliveryMode?: boolean | number | undefined;
    /** Like CC, but removed from the headers before delivery. */
    BCC?: string | string[] | undefined;
    contentType?: string | undefined;
    contentEncoding?: string | undefined;
    headers?: Record<string, HeaderValue> | undefined;
    priority?: number | undefined;
    correlationId?: string | undefined;
    replyTo?: string | undefined;
    messageId?: string | undefined;
    /** Seconds since the epoch. */
    timestamp?: number | undefined;
    type?: string | undefined;
    appId?: string | undefined;
  }
  /** Options of `consume`. */
  export interface Consume {
    consumerTag?: string | undefined;
    noLocal?: boolean | undefined;
    noAck?: boolean | undefined;
    exclusive?: boolean | undefined;
    /** Consumer priority (`x-priority`). */
    priority?: number | undefined;
    arguments?: Record<string, HeaderValue> | undefined;
  }
  /** Options of `get`. */
  export interface Get {
    noAck?: boolean | undefined;
  }
}

/** The delivery fields every message has. */
export interface CommonMessageFields {
  deliveryTag: number;
  redelivered: boolean;
  exchange: string;
  routingKey: string;
}

/** Fields of any message. */
export interface MessageFields extends CommonMessageFields {
  messageCount?: number | undefined;
  consumerTag?: string | undefined;
}

/** Fields of a message from `consume`. */
export interface ConsumeMessageFields extends CommonMessageFields {
  consumerTag: string;
}

/** Fields of a message from `get`. */
export interface GetMessageFields extends CommonMessageFields {
  messageCount: number;
}

/** Headers as amqplib decodes them. */
export interface MessagePropertyHeaders {
  [key: string]: HeaderValue;
}

/**
 * Message properties; absent ones are `undefined`. `timestamp` is seconds since the epoch. Typed as
 * loosely as amqplib's own declarations (`any`), so that code such as
 * `ch.sendToQueue(msg.properties.replyTo, …)` compiles unchanged; the values are strings and numbers.
 */
export interface MessageProperties {
  contentType: HeaderValue;
  contentEncoding: HeaderValue;
  headers: MessagePropertyHeaders | undefined;
  deliveryMode: HeaderValue;
  priority: HeaderValue;
  correlationId: HeaderValue;
  replyTo: HeaderValue;
  expiration: HeaderValue;
  messageId: HeaderValue;
  timestamp: HeaderValue;
  type: HeaderValue;
  userId: HeaderValue;
  appId: HeaderValue;
  clusterId: HeaderValue;
}

/** A message: `{ content, fields, properties }`, as amqplib hands it out. */
export interface Message {
  content: Buffer;
  fields: MessageFields;
  properties: MessageProperties;
}

/** A message delivered to a consumer. */
export interface ConsumeMessage extends Message {
  fields: ConsumeMessageFields;
}

/** A message fetched with `get`. */
export interface GetMessage extends Message {
  fields: GetMessageFields;
}

/** Properties the broker sent when the connection opened. */
export interface ServerProperties {
  host: string;
  product: string;
  version: string;
  platform: string;
  copyright?: string;
  information: string;
  [key: string]: string | undefined;
}
