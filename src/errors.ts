/**
 * The warren error hierarchy. Every failure reaches the caller as one of these, so that
 * `instanceof` tells what happened and what to do about it.
 *
 * ```
 * AMQPError
 * ├─ ConnectionError
 * │  ├─ ConnectionClosedByServer   (replyCode, replyText, classId, methodId)
 * │  ├─ HeartbeatTimeout
 * │  ├─ SocketError
 * │  ├─ CredentialsRefreshError    (a refreshed credential was refused, or could not be obtained)
 * │  ├─ ConnectionAttemptsExhausted (the robust client gave up connecting)
 * │  └─ HandshakeError
 * │     └─ AuthenticationError
 * ├─ ChannelError
 * │  └─ ChannelClosedByServer      (replyCode, replyText, classId, methodId)
 * ├─ PublishNacked
 * ├─ MessageReturned               (the returned message)
 * ├─ FrameError                    (malformed input from the peer; replyCode to send)
 * ├─ TimeoutError
 * ├─ PublisherFullError           (a publisher at its maxPending limit with onFull: 'reject')
 * ├─ ClosedError                   (used after close)
 * ├─ ConsumerCancelled             (the broker cancelled a consumer, e.g. its queue was deleted)
 * └─ InvalidArgumentError          (bad input from the caller, thrown before anything is written)
 * ```
 *
 * @module
 */
import {
  HARD_ERRORS,
  type HardReplyCode,
  REPLY_CODES,
  type ReplyCode,
  SOFT_ERRORS,
  type SoftReplyCode,
} from './protocol/generated/constants.js';

export { REPLY_CODES };
export type { HardReplyCode, ReplyCode, SoftReplyCode };

/**
 * A reply code as a broker sent it: one of the spec's (`ReplyCode`, which editors offer) or any other
 * number a broker may use. Compares with plain numbers and with `REPLY_CODES`.
 *
 * @example
 * ```ts
 * if (err instanceof ChannelClosedByServer && err.replyCode === REPLY_CODES.NOT_FOUND) await declare();
 * ```
 */
export type AnyReplyCode = ReplyCode | (number & Record<never, never>);

/** True for a reply code that closes the whole connection (a hard error, e.g. 320, 501, 530). */
export function isHardError(code: number): code is HardReplyCode {
  return HARD_ERRORS.has(code);
}

/** True for a reply code that closes only the channel (a soft error, e.g. 404, 406). */
export function isSoftError(code: number): code is SoftReplyCode {
  return SOFT_ERRORS.has(code);
}

/**
 * Connection closes a new connection may well not meet again: forced (a broker restart, an operator's
 * close_connection), a resource error, an internal error. A 530 not-allowed or 402 invalid path (a bad
 * vhost) will recur.
 */
const RECOVERABLE_CONNECTION_CLOSES: ReadonlySet<number> = new Set<HardReplyCode>([
  REPLY_CODES.CONNECTION_FORCED,
  REPLY_CODES.RESOURCE_ERROR,
  REPLY_CODES.INTERNAL_ERROR,
]);

/**
 * The same class in every copy of warren has the same id under this registry-wide symbol, so that
 * `instanceof` works across copies (ESM and CommonJS builds each define their own classes).
 */
const CLASS_ID: unique symbol = Symbol.for('warren.errorClass');

/** Gives each class its id (its name, which is part of the public API). @internal */
export function brandErrorClasses(classes: Record<string, abstract new (...args: never[]) => unknown>): void {
  for (const [name, cls] of Object.entries(classes)) {
    Object.defineProperty(cls, CLASS_ID, { value: `warren.${name}`, enumerable: false });
  }
}

function classId(value: unknown): unknown {
  return typeof value === 'function' && Object.hasOwn(value, CLASS_ID)
    ? (value as unknown as Record<typeof CLASS_ID, unknown>)[CLASS_ID]
    : undefined;
}

/** `instanceof`, or an object whose prototype chain has a class with the same id. @internal */
export function isBrandedInstance(cls: abstract new (...args: never[]) => unknown, value: unknown): boolean {
  if (Function.prototype[Symbol.hasInstance].call(cls, value)) return true;
  const id = classId(cls);
  if (id === undefined || typeof value !== 'object' || value === null) return false;
  for (let proto: unknown = Object.getPrototypeOf(value); proto !== null; proto = Object.getPrototypeOf(proto)) {
    const ctor = Object.hasOwn(proto as object, 'constructor')
      ? (proto as { constructor: unknown }).constructor
      : undefined;
    if (classId(ctor) === id) return true;
  }
  return false;
}

/** The `code` of every warren error class, one per class. */
export type AMQPErrorCode =
  | 'AMQP_ERROR'
  | 'CONNECTION_ERROR'
  | 'CONNECTION_CLOSED_BY_SERVER'
  | 'HEARTBEAT_TIMEOUT'
  | 'SOCKET_ERROR'
  | 'HANDSHAKE_ERROR'
  | 'AUTHENTICATION_ERROR'
  | 'CHANNEL_ERROR'
  | 'CHANNEL_CLOSED_BY_SERVER'
  | 'PUBLISH_NACKED'
  | 'MESSAGE_RETURNED'
  | 'FRAME_ERROR'
  | 'TIMEOUT'
  | 'PUBLISHER_FULL'
  | 'CREDENTIALS_REFRESH_FAILED'
  | 'CONNECTION_ATTEMPTS_EXHAUSTED'
  | 'CLOSED'
  | 'INVALID_ARGUMENT'
  | 'ABORTED'
  | 'CONSUMER_CANCELLED';

/** Options common to every warren error. */
export interface AMQPErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * Base class of every error warren raises.
 *
 * @example
 * ```ts
 * try { await ch.queueDeclare('q', { passive: true }); }
 * catch (err) { if (err instanceof AMQPError) console.log(err.code, err.message); }
 * ```
 */
export class AMQPError extends Error {
  /**
   * `err instanceof SomeWarrenError` also holds for an error made by another copy of warren loaded in
   * the same process (the ESM and the CommonJS build side by side, or two installed copies).
   */
  static override [Symbol.hasInstance]<T>(this: abstract new (...args: never[]) => T, value: unknown): value is T {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the subclass `instanceof` was asked about
    return isBrandedInstance(this, value);
  }

  /** A stable machine-readable code, e.g. `'CHANNEL_CLOSED_BY_SERVER'`. */
  readonly code: AMQPErrorCode = 'AMQP_ERROR';
  /** Whether retrying the operation (on a new channel or connection) can succeed. */
  readonly recoverable: boolean = false;

  constructor(message: string, options?: AMQPErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
  }
}

/** Fields carried by a close sent by the server (connection.close or channel.close). */
export interface ServerCloseDetails {
  /** Why, e.g. 320 CONNECTION_FORCED or 404 NOT_FOUND (see `REPLY_CODES`). */
  replyCode: AnyReplyCode;
  /** The broker's explanation. */
  replyText: string;
  /** The class of the method that caused the close; 0 when none did. */
  classId: number;
  /** The method that caused the close, within `classId`; 0 when none did. */
  methodId: number;
}

/** The message of a `…ClosedByServer` error. */
function serverCloseMessage(what: 'connection' | 'channel', details: ServerCloseDetails, method?: string): string {
  return (
    `${what} closed by the broker: ${details.replyCode} ${details.replyText}` + (method ? ` (caused by ${method})` : '')
  );
}

/**
 * The fields a `…ClosedByServer` error adds: `ServerCloseDetails` and `method`, set in its
 * constructor (by `setServerCloseFields`) and declared by merging this into the class.
 */
interface ServerClosed extends Readonly<ServerCloseDetails> {
  /** The method that caused the close, as `class.method` (e.g. `'basic.publish'`, `'queue.declare'`), when known. */
  readonly method: string | undefined;
}
export interface ConnectionClosedByServer extends ServerClosed {}
export interface ChannelClosedByServer extends ServerClosed {}

/** Sets the fields of a `…ClosedByServer` error (declared by `ServerClosed`). */
function setServerCloseFields(
  error: ServerCloseDetails & { method: string | undefined },
  details: ServerCloseDetails,
  method: string | undefined,
): void {
  error.replyCode = details.replyCode;
  error.replyText = details.replyText;
  error.classId = details.classId;
  error.methodId = details.methodId;
  error.method = method;
}

/** Something went wrong with the connection as a whole; every channel on it is gone. */
export class ConnectionError extends AMQPError {
  override readonly code: AMQPErrorCode = 'CONNECTION_ERROR';
  override readonly recoverable: boolean = true;
}

/**
 * The broker closed the connection (connection.close). `replyCode` 320 means it was forced
 * (e.g. `rabbitmqctl close_connection` or a broker shutdown).
 */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the constructor sets every field the interface declares
export class ConnectionClosedByServer extends ConnectionError implements ServerCloseDetails {
  override readonly code: AMQPErrorCode = 'CONNECTION_CLOSED_BY_SERVER';
  override readonly recoverable: boolean;

  constructor(details: ServerCloseDetails, method?: string) {
    super(serverCloseMessage('connection', details, method));
    setServerCloseFields(this, details, method);
    this.recoverable = RECOVERABLE_CONNECTION_CLOSES.has(details.replyCode);
  }
}

/** No frame arrived from the broker for two heartbeat intervals. */
export class HeartbeatTimeout extends ConnectionError {
  override readonly code: AMQPErrorCode = 'HEARTBEAT_TIMEOUT';
}

/** The socket failed (refused, reset, ended unexpectedly, TLS failure). */
export class SocketError extends ConnectionError {
  override readonly code: AMQPErrorCode = 'SOCKET_ERROR';
}

/** The AMQP handshake failed (protocol mismatch, vhost refused, timeout during open). */
export class HandshakeError extends ConnectionError {
  override readonly code: AMQPErrorCode = 'HANDSHAKE_ERROR';
  override readonly recoverable: boolean = false;
  /**
   * What failed, for code that must tell the cases apart: `'credentials'`, `'vhost'` (the broker
   * refused connection.open), `'protocol'` (not an AMQP 0-9-1 server, or no common SASL mechanism),
   * `'closed'` (the broker closed during the handshake), `'aborted'`.
   */
  readonly reason: 'credentials' | 'vhost' | 'protocol' | 'closed' | 'aborted';
  /** The reply code of the broker's connection.close, when it sent one. */
  readonly replyCode: AnyReplyCode | undefined;

  constructor(
    message: string,
    options?: AMQPErrorOptions & { reason?: HandshakeError['reason']; replyCode?: AnyReplyCode },
  ) {
    super(message, options);
    this.reason = options?.reason ?? 'protocol';
    this.replyCode = options?.replyCode;
  }
}

/** The broker refused the credentials. Retrying with the same credentials will not help. */
export class AuthenticationError extends HandshakeError {
  override readonly code: AMQPErrorCode = 'AUTHENTICATION_ERROR';
  constructor(message: string, options?: AMQPErrorOptions & { replyCode?: AnyReplyCode }) {
    super(message, { ...options, reason: 'credentials' });
  }
}

/** Something went wrong on one channel; the connection and other channels go on. */
export class ChannelError extends AMQPError {
  override readonly code: AMQPErrorCode = 'CHANNEL_ERROR';
  override readonly recoverable: boolean = true;
}

/**
 * The broker closed the channel (channel.close), for example 404 NOT_FOUND for a missing queue or
 * 406 PRECONDITION_FAILED for a declare whose arguments differ from the existing entity.
 */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the constructor sets every field the interface declares
export class ChannelClosedByServer extends ChannelError implements ServerCloseDetails {
  override readonly code: AMQPErrorCode = 'CHANNEL_CLOSED_BY_SERVER';

  constructor(details: ServerCloseDetails, method?: string) {
    super(serverCloseMessage('channel', details, method));
    setServerCloseFields(this, details, method);
  }
}

/** The broker nacked a published message (basic.nack in confirm mode): it was not stored. */
export class PublishNacked extends AMQPError {
  override readonly code: AMQPErrorCode = 'PUBLISH_NACKED';
  override readonly recoverable: boolean = true;
  constructor(message = 'the broker refused (nacked) the published message; it was not stored') {
    super(message);
  }
}

/** A message as returned by basic.return. */
export interface ReturnedMessageInfo {
  /** Usually 312 NO_ROUTE. */
  replyCode: AnyReplyCode;
  replyText: string;
  exchange: string;
  routingKey: string;
  body: Buffer;
  properties: import('./protocol/generated/properties.js').BasicProperties;
  /** Why the properties could not be decoded (they are then `{}`); see `Message.decodeError`. */
  decodeError?: FrameError | undefined;
}

/** A mandatory message could not be routed to any queue and was returned (basic.return). */
export class MessageReturned extends AMQPError {
  override readonly code: AMQPErrorCode = 'MESSAGE_RETURNED';
  readonly replyCode: AnyReplyCode;
  readonly replyText: string;
  /** The returned message. */
  readonly returned: ReturnedMessageInfo;
  constructor(returned: ReturnedMessageInfo) {
    super(
      `message returned by the broker: ${returned.replyCode} ${returned.replyText} ` +
        `(exchange '${returned.exchange}', routing key '${returned.routingKey}'); bind a queue or drop 'mandatory'`,
    );
    this.replyCode = returned.replyCode;
    this.replyText = returned.replyText;
    this.returned = returned;
  }
}

/**
 * The peer sent bytes that are not valid AMQP. `replyCode` is the code the spec prescribes for the
 * connection.close warren sends back (501 frame-error, 502 syntax-error, 503 command-invalid,
 * 505 unexpected-frame).
 */
export class FrameError extends ConnectionError {
  override readonly code: AMQPErrorCode = 'FRAME_ERROR';
  /** A hard error code: the whole connection closes. */
  readonly replyCode: HardReplyCode;
  /**
   * The frame-type octet found, when it is none AMQP 0-9-1 defines: 65 (`'A'`) is the first byte
   * of a protocol header, the answer of a server that speaks another AMQP version.
   */
  readonly frameType: number | undefined;
  constructor(
    message: string,
    replyCode: HardReplyCode = REPLY_CODES.FRAME_ERROR,
    options?: AMQPErrorOptions & { frameType?: number },
  ) {
    super(message, options);
    this.replyCode = replyCode;
    this.frameType = options?.frameType;
  }
}

/** An operation did not finish within its time limit. */
export class TimeoutError extends AMQPError {
  override readonly code: AMQPErrorCode = 'TIMEOUT';
  override readonly recoverable: boolean = true;
}

/**
 * A robust publisher already holds `maxPending` messages (or `maxPendingBytes` bytes) and was made
 * with `onFull: 'reject'`: this message was not taken. Retry later, shed it, or park it yourself.
 *
 * @example
 * ```ts
 * try { await pub.publish('', 'jobs', body); }
 * catch (err) { if (err instanceof PublisherFullError) await parkForLater(body); }
 * ```
 */
export class PublisherFullError extends AMQPError {
  override readonly code: AMQPErrorCode = 'PUBLISHER_FULL';
  override readonly recoverable: boolean = true;
}

/**
 * A credential that changes (`credentials` given as a function) could not be refreshed on a live
 * connection: the function threw, or the broker refused the new secret (connection.update-secret).
 * The connection is closed when the broker refused; the robust client then reconnects with fresh
 * credentials. `cause` says why; the message never holds the secret.
 *
 * @example
 * ```ts
 * conn.on('credentialsError', (err) => log.warn(`token refresh failed: ${err.message}`));
 * ```
 */
export class CredentialsRefreshError extends ConnectionError {
  override readonly code: AMQPErrorCode = 'CREDENTIALS_REFRESH_FAILED';
}

/**
 * The robust client stopped trying to connect: `maxAttempts` attempts in all (or every URL's
 * `connectionAttempts` in a client with `maxRounds`) failed. `cause` is the last attempt's error.
 * Every waiting operation rejects with it; the client is closed.
 *
 * @example
 * ```ts
 * client.on('error', (err) => { if (err instanceof ConnectionAttemptsExhausted) process.exit(1); });
 * ```
 */
export class ConnectionAttemptsExhausted extends ConnectionError {
  override readonly code: AMQPErrorCode = 'CONNECTION_ATTEMPTS_EXHAUSTED';
  override readonly recoverable: boolean = false;
  /** How many connection attempts were made. */
  readonly attempts: number;
  constructor(message: string, attempts: number, options?: AMQPErrorOptions) {
    super(message, options);
    this.attempts = attempts;
  }
}

/** The connection, channel, consumer or client was used after it was closed. */
export class ClosedError extends AMQPError {
  override readonly code: AMQPErrorCode = 'CLOSED';
}

/** An operation was abandoned through its `AbortSignal`. */
export class AbortError extends AMQPError {
  override readonly code: AMQPErrorCode = 'ABORTED';
  constructor(message = 'the operation was aborted', options?: AMQPErrorOptions) {
    super(message, options);
  }
}

/**
 * The broker cancelled a consumer (basic.cancel from the server), usually because its queue was
 * deleted. Delivery has stopped; the robust client re-subscribes only when asked to
 * (`resubscribeOnCancel`).
 *
 * @example
 * ```ts
 * sub.on('cancel', (err) => { if (err instanceof ConsumerCancelled) console.log('queue gone:', err.queue); });
 * ```
 */
export class ConsumerCancelled extends AMQPError {
  override readonly code: AMQPErrorCode = 'CONSUMER_CANCELLED';
  override readonly recoverable: boolean = true;
  /** The queue the consumer was reading from. */
  readonly queue: string;
  constructor(queue: string, options?: AMQPErrorOptions) {
    super(
      `the broker cancelled the consumer of queue '${queue}' (was the queue deleted?); ` +
        'delivery has stopped; set resubscribeOnCancel to wait for the queue to come back',
      options,
    );
    this.queue = queue;
  }
}

/** The caller passed a value warren cannot send (wrong type, out of range, too long). */
export class InvalidArgumentError extends AMQPError {
  override readonly code: AMQPErrorCode = 'INVALID_ARGUMENT';
}

brandErrorClasses({
  AMQPError,
  ConnectionError,
  ConnectionClosedByServer,
  HeartbeatTimeout,
  SocketError,
  HandshakeError,
  AuthenticationError,
  ChannelError,
  ChannelClosedByServer,
  PublishNacked,
  MessageReturned,
  FrameError,
  TimeoutError,
  ClosedError,
  InvalidArgumentError,
  AbortError,
  ConsumerCancelled,
});
