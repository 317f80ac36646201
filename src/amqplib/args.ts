/**
 * amqplib's option names and value shapes translated to warren's, and warren's messages back into
 * amqplib's `{ content, fields, properties }`.
 *
 * @module
 */
import type { Message as WarrenMessage } from '../channel/message.js';
import type { BasicProperties } from '../protocol/generated/properties.js';
import { Decimal, type FieldTable, type FieldTypeTag, type FieldValue, TypedValue } from '../protocol/field-values.js';
import type { HeaderValue, Message, MessageProperties, Options } from './types.js';

/** Every key of an object, inherited ones too: amqplib callers build options with Object.create. */
function entries(table: object | null | undefined): [string, unknown][] {
  const out: [string, unknown][] = [];
  if (table === null || table === undefined) return out;
  for (const key in table) out.push([key, (table as Record<string, unknown>)[key]]);
  return out;
}

/** amqplib's `{ '!': type, value }` wire-type annotations. */
const TYPE_TAGS: Readonly<Record<string, FieldTypeTag>> = {
  int: 'I',
  unsignedint: 'i',
  long: 'l',
  unsignedlong: 'l',
  short: 's',
  unsignedshort: 'u',
  byte: 'b',
  unsignedbyte: 'B',
  float: 'f',
  double: 'd',
  bool: 't',
  boolean: 't',
  string: 'S',
  longstr: 'S',
  shortstr: 'S',
  bytes: 'x',
};

function toFieldValue(value: unknown): FieldValue | undefined {
  if (value === undefined) return undefined;
  if (value === null) return null as unknown as FieldValue;
  if (Array.isArray(value)) return value.map((v) => toFieldValue(v) ?? (null as unknown as FieldValue));
  if (Buffer.isBuffer(value) || value instanceof Date) return value;
  if (typeof value === 'object') {
    const tagged = value as { '!'?: unknown; value?: unknown };
    if (typeof tagged['!'] === 'string') {
      if (tagged['!'] === 'timestamp') return new Date(Number(tagged.value) * 1000);
      if (tagged['!'] === 'decimal') {
        const d = tagged.value as { places: number; digits: number };
        return new Decimal(d.places, d.digits);
      }
      const tag = TYPE_TAGS[tagged['!']];
      const inner = toFieldValue(tagged.value);
      if (tag !== undefined && inner !== undefined) return new TypedValue(tag, inner);
      return inner;
    }
    return toFieldTable(value as Record<string, unknown>);
  }
  return value as FieldValue;
}

/** A table as amqplib applications write one, for warren's encoder. */
export function toFieldTable(table: object | null | undefined): FieldTable {
  const out: FieldTable = {};
  for (const [key, value] of entries(table)) {
    const v = toFieldValue(value);
    if (v !== undefined) out[key] = v;
  }
  return out;
}

function fromFieldValue(value: FieldValue): HeaderValue {
  if (value instanceof Date) return { '!': 'timestamp', value: Math.floor(value.getTime() / 1000) };
  if (value instanceof Decimal) return { '!': 'decimal', value: { places: value.scale, digits: value.value } };
  if (value instanceof TypedValue) return fromFieldValue(value.value);
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(fromFieldValue);
  if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value))
    return fromFieldTable(value as FieldTable);
  return value;
}

/** A decoded table in the shapes amqplib hands out (timestamps and decimals tagged, 64-bit as number). */
export function fromFieldTable(table: FieldTable): Record<string, HeaderValue> {
  const out: Record<string, HeaderValue> = {};
  for (const key of Object.keys(table)) out[key] = fromFieldValue(table[key] as FieldValue);
  return out;
}

function setIf(table: FieldTable, key: string, value: unknown): void {
  if (value !== undefined) table[key] = value as FieldValue;
}

/** queue.declare arguments from amqplib's promoted options (`messageTtl`, `deadLetterExchange`, …). */
export function queueArguments(options: Options.AssertQueue): FieldTable {
  const args = toFieldTable(options.arguments);
  setIf(args, 'x-expires', options.expires);
  setIf(args, 'x-message-ttl', options.messageTtl);
  setIf(args, 'x-dead-letter-exchange', options.deadLetterExchange);
  setIf(args, 'x-dead-letter-routing-key', options.deadLetterRoutingKey);
  setIf(args, 'x-max-length', options.maxLength);
  setIf(args, 'x-max-priority', options.maxPriority);
  setIf(args, 'x-overflow', options.overflow);
  setIf(args, 'x-queue-mode', options.queueMode);
  return args;
}

/** exchange.declare arguments (`alternateExchange`). */
export function exchangeArguments(options: Options.AssertExchange): FieldTable {
  const args = toFieldTable(options.arguments);
  setIf(args, 'alternate-exchange', options.alternateExchange);
  return args;
}

/** basic.consume arguments (`priority`). */
export function consumeArguments(options: Options.Consume): FieldTable {
  const args = toFieldTable(options.arguments);
  setIf(args, 'x-priority', options.priority);
  return args;
}

function routingList(value: string | string[] | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.map(String) : [String(value)];
}

/** Message properties from amqplib's publish options (`persistent`, `CC`, numeric `expiration`, …). */
export function publishProperties(options: Options.Publish | undefined): BasicProperties {
  if (options === undefined || options === null) return { headers: {} };
  const p: BasicProperties = {};
  const headers = toFieldTable(options.headers);
  setIf(headers, 'CC', routingList(options.CC));
  setIf(headers, 'BCC', routingList(options.BCC));
  // Always a table, as amqplib sends it: consumers read msg.properties.headers[...] without a check.
  p.headers = headers;
  if (options.persistent !== undefined) p.deliveryMode = options.persistent ? 2 : 1;
  else if (typeof options.deliveryMode === 'number') p.deliveryMode = options.deliveryMode;
  else if (options.deliveryMode) p.deliveryMode = 2;
  if (options.expiration !== undefined) p.expiration = String(options.expiration);
  if (options.timestamp !== undefined) p.timestamp = new Date(options.timestamp * 1000);
  if (options.contentType !== undefined) p.contentType = options.contentType;
  if (options.contentEncoding !== undefined) p.contentEncoding = options.contentEncoding;
  if (options.priority !== undefined) p.priority = options.priority;
  if (options.correlationId !== undefined) p.correlationId = options.correlationId;
  if (options.replyTo !== undefined) p.replyTo = options.replyTo;
  if (options.messageId !== undefined) p.messageId = options.messageId;
  if (options.type !== undefined) p.type = options.type;
  if (options.userId !== undefined) p.userId = options.userId;
  if (options.appId !== undefined) p.appId = options.appId;
  return p;
}

/** warren's properties as amqplib presents them: every key present, `timestamp` in seconds. */
export function amqplibProperties(p: BasicProperties): MessageProperties {
  return {
    contentType: p.contentType,
    contentEncoding: p.contentEncoding,
    headers: p.headers === undefined ? undefined : fromFieldTable(p.headers),
    deliveryMode: p.deliveryMode,
    priority: p.priority,
    correlationId: p.correlationId,
    replyTo: p.replyTo,
    expiration: p.expiration,
    messageId: p.messageId,
    timestamp: p.timestamp === undefined ? undefined : Math.floor(p.timestamp.getTime() / 1000),
    type: p.type,
    userId: p.userId,
    appId: p.appId,
    clusterId: p.clusterId,
  };
}

/** A delivered or fetched warren message in amqplib's shape. */
export function amqplibMessage(m: WarrenMessage): Message {
  const fields: Message['fields'] =
    m.consumerTag !== undefined
      ? {
          consumerTag: m.consumerTag,
          deliveryTag: m.deliveryTag,
          redelivered: m.redelivered,
          exchange: m.exchange,
          routingKey: m.routingKey,
        }
      : {
          deliveryTag: m.deliveryTag,
          redelivered: m.redelivered,
          exchange: m.exchange,
          routingKey: m.routingKey,
          messageCount: m.messageCount ?? 0,
        };
  return { content: m.body, fields, properties: amqplibProperties(m.properties) };
}
