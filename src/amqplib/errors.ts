/**
 * Errors in the shapes amqplib applications test for: a numeric `code` (the AMQP reply code),
 * `classId` and `methodId` on errors the broker caused, and `IllegalOperationError` for use after close.
 * The warren error that caused each one is its `cause`.
 *
 * @module
 */
import {
  type AMQPError,
  ChannelClosedByServer,
  ConnectionClosedByServer,
  InvalidArgumentError,
  PublishNacked,
  REPLY_CODES,
} from '../errors.js';

/** AMQP reply codes by the names amqplib prints: the spec's names, with `-` for `_`. */
const REPLY_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(REPLY_CODES).map(([name, code]) => [code, name.replaceAll('_', '-')]),
);

/**
 * An error the broker reported by closing the channel or the connection. `code` is the AMQP reply
 * code (404, 406, 320, …) as in amqplib; the message starts with the broker's reply text.
 *
 * @example
 * ```ts
 * try { await ch.checkQueue('missing'); }
 * catch (err) { if ((err as BrokerError).code === 404) console.log('no such queue'); }
 * ```
 */
export class BrokerError extends Error {
  /** The AMQP reply code, e.g. 404 (NOT_FOUND) or 406 (PRECONDITION_FAILED). */
  readonly code: number;
  /** Class of the method that failed (0 when the broker names none). */
  readonly classId: number;
  /** The method that failed within its class. */
  readonly methodId: number;

  /** @internal */
  constructor(message: string, details: { replyCode: number; classId: number; methodId: number }, cause: AMQPError) {
    super(message, { cause });
    this.name = 'Error';
    this.code = details.replyCode;
    this.classId = details.classId;
    this.methodId = details.methodId;
  }
}

/**
 * Thrown when a closed channel or connection is used (publishing, acknowledging, declaring), as in
 * amqplib.
 */
export class IllegalOperationError extends Error {
  /** Where the channel or connection changed state; warren does not capture it and leaves it empty. */
  readonly stackAtStateChange: string | undefined = undefined;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IllegalOperationError';
  }
}

/** `queue.declare` → `QueueDeclare`, the way amqplib names methods in messages. */
function methodTitle(method: string | undefined): string {
  if (method === undefined) return 'unknown method';
  return method
    .split(/[.-]/)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}

function closeText(replyCode: number, replyText: string): string {
  return `${replyCode} (${REPLY_NAMES.get(replyCode) ?? 'UNKNOWN'}) with message "${replyText}"`;
}

/**
 * Converts the warren error that ended a channel operation into amqplib's shape. `operation` is the
 * method that was called, so that the message says whether that call was the culprit.
 * @internal
 */
export function toAmqplibError(error: AMQPError, operation?: string): Error {
  if (error instanceof ChannelClosedByServer || error instanceof ConnectionClosedByServer) {
    const which =
      error instanceof ConnectionClosedByServer
        ? 'Connection closed'
        : operation !== undefined && operation === error.method
          ? `Operation failed: ${methodTitle(operation)}`
          : 'Channel closed by server';
    return new BrokerError(
      `${error.replyText} (${which}: ${closeText(error.replyCode, error.replyText)})`,
      error,
      error,
    );
  }
  if (error instanceof PublishNacked) return Object.assign(new Error('message nacked'), { cause: error });
  if (error instanceof InvalidArgumentError) return new TypeError(error.message, { cause: error });
  return error;
}
