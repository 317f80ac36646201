/**
 * Message bodies by content type: an opt-in registry of codecs that turns values into bodies on
 * publish and bodies back into values on delivery, chosen by the message's `contentType`. JSON is
 * built in; add your own (MessagePack, protobuf, text…) with {@link CodecRegistry.register}.
 *
 * @module
 */
import type { Message } from '../channel/message.js';
import { InvalidArgumentError } from '../errors.js';
import type { BasicProperties } from '../protocol/generated/properties.js';

/**
 * How values of one content type become message bodies and back.
 *
 * @example
 * ```ts
 * const text: Codec<string> = {
 *   contentType: 'text/plain',
 *   encode: (value) => Buffer.from(value, 'utf8'),
 *   decode: (body) => body.toString('utf8'),
 * };
 * ```
 */
export interface Codec<T = unknown> {
  /** The `contentType` property this codec reads and writes, e.g. `'application/json'`. */
  readonly contentType: string;
  /** The body for `value`. Throw for a value this codec cannot represent. */
  encode(value: T): Buffer | string;
  /** The value in `body`. Throw for a body that is not valid in this content type. */
  decode(body: Buffer): T;
}

/** `application/json`: `JSON.stringify` in UTF-8, and `JSON.parse`. */
export const jsonCodec: Codec = {
  contentType: 'application/json',
  encode(value) {
    const text = JSON.stringify(value);
    if (text === undefined) throw new InvalidArgumentError(`JSON cannot represent ${typeof value}`);
    return text;
  },
  decode: (body) => JSON.parse(body.toString('utf8')) as unknown,
};

/** A delivered message with its body decoded by the codec of its `contentType`. */
export type Decoded<T> = Message & {
  /** The body decoded by the codec of the message's `contentType` (decoded on first read, once). */
  readonly value: T;
};

/** The content type without parameters: `application/json; charset=utf-8` → `application/json`. */
function baseType(contentType: string): string {
  return contentType.split(';')[0]!.trim().toLowerCase();
}

/**
 * The codecs a client uses, by content type. Pass one to `createClient({ codecs })`: then
 * `publish()` accepts objects (encoded with the codec of `properties.contentType`, by default the
 * registry's first codec, JSON, which also sets `contentType`), and `consume<T>()` and `rpc<T>()`
 * hand over messages whose `value` is the decoded body.
 *
 * @example
 * ```ts
 * const codecs = new CodecRegistry().register({
 *   contentType: 'text/plain',
 *   encode: (s: string) => s,
 *   decode: (body) => body.toString(),
 * });
 * const client = createClient({ urls: 'amqp://127.0.0.1', codecs });
 * await client.publisher().publish('', 'orders', { id: 42 }); // application/json
 * client.consume<{ id: number }>('orders', async (msg) => console.log(msg.value.id));
 * ```
 */
export class CodecRegistry {
  private readonly byType = new Map<string, Codec>();
  private readonly defaultType: string;

  /** JSON, then `codecs`; the first one is the default for publishing objects. */
  constructor(codecs: readonly Codec[] = []) {
    this.defaultType = jsonCodec.contentType;
    this.register(jsonCodec);
    for (const codec of codecs) this.register(codec);
  }

  /** Adds (or replaces) the codec of `codec.contentType`. Returns the registry, for chaining. */
  register<T>(codec: Codec<T>): this {
    if (typeof codec?.contentType !== 'string' || codec.contentType === '') {
      throw new InvalidArgumentError('a codec needs a contentType, such as application/json');
    }
    if (typeof codec.encode !== 'function' || typeof codec.decode !== 'function') {
      throw new InvalidArgumentError(`the codec of ${codec.contentType} needs encode() and decode() functions`);
    }
    this.byType.set(baseType(codec.contentType), codec as Codec);
    return this;
  }

  /** The codec of `contentType` (parameters such as `charset` ignored), if there is one. */
  get(contentType: string): Codec | undefined {
    return this.byType.get(baseType(contentType));
  }

  /**
   * The body and properties to publish `value` with: by the codec of `properties.contentType`, or
   * JSON (then `contentType` is set to `application/json`).
   */
  encode(value: unknown, properties: BasicProperties = {}): { body: Buffer; properties: BasicProperties } {
    const type = properties.contentType ?? this.defaultType;
    const codec = this.get(type);
    if (codec === undefined) {
      throw new InvalidArgumentError(
        `no codec for content type '${type}'; register one (codecs.register({ contentType, encode, decode })) ` +
          'or publish a Buffer or a string',
      );
    }
    const body = codec.encode(value);
    return {
      body: typeof body === 'string' ? Buffer.from(body, 'utf8') : body,
      properties: properties.contentType === undefined ? { ...properties, contentType: codec.contentType } : properties,
    };
  }

  /** The value in `message`'s body, by the codec of its `contentType`. */
  decode<T = unknown>(message: Pick<Message, 'body' | 'properties'>): T {
    const type = message.properties.contentType;
    const codec = type === undefined ? undefined : this.get(type);
    if (codec === undefined) {
      throw new InvalidArgumentError(
        `no codec for the message's content type ${type === undefined ? '(none set)' : `'${type}'`}; ` +
          'register one, or read msg.body',
      );
    }
    return codec.decode(message.body) as T;
  }

  /** Gives `message` a `value` property that decodes its body on first read. @internal */
  attach<T>(message: Message): Decoded<T> {
    const slot: DecodeSlot = { codecs: this, decoded: undefined };
    Object.defineProperty(message, kDecode, { value: slot, configurable: true, enumerable: false, writable: false });
    Object.defineProperty(message, 'value', DECODED_VALUE);
    return message as Decoded<T>;
  }
}

/** What an attached message keeps, out of sight of `console.log` and `JSON.stringify`: its registry and, once read, its value. */
const kDecode = Symbol('warren.decode');
interface DecodeSlot {
  codecs: CodecRegistry;
  decoded: { value: unknown } | undefined;
}

// One getter shared by every message: a getter made per message would give each message a hidden
// class of its own (V8 keeps accessors in the object's map), which slows every later read of it.
const DECODED_VALUE: PropertyDescriptor = {
  configurable: true,
  enumerable: false,
  get(this: Message & { [kDecode]: DecodeSlot }): unknown {
    const slot = this[kDecode];
    slot.decoded ??= { value: slot.codecs.decode(this) };
    return slot.decoded.value;
  },
};

/**
 * The body to send: Buffers and strings as they are; other values through `codecs`, when the client
 * has them. @internal
 */
export function encodeBody(
  codecs: CodecRegistry | undefined,
  body: unknown,
  properties: BasicProperties | undefined,
): { body: Buffer; properties: BasicProperties | undefined } {
  if (typeof body === 'string') return { body: Buffer.from(body), properties };
  if (Buffer.isBuffer(body)) return { body, properties };
  if (codecs === undefined || body === null || typeof body !== 'object') {
    throw new InvalidArgumentError(
      `message body must be a Buffer or a string, got ${body === null ? 'null' : typeof body}` +
        (codecs === undefined && body !== null && typeof body === 'object'
          ? '; to publish objects, give the client codecs: createClient({ codecs: new CodecRegistry() })'
          : ''),
    );
  }
  return codecs.encode(body, properties);
}
