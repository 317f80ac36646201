/**
 * The contract between a connection and the channels it carries, in both directions. The
 * connection knows channels only as `ChannelEndpoint`s (so it never imports the channel layer
 * above it), and a channel reaches the wire only through the `ChannelWriter` its connection
 * implements (so it never imports the transport below it).
 *
 * @module
 */
import type { AMQPError } from '../errors.js';
import type { ContentHeader } from '../protocol/content-header.js';
import type { AMQPMethod, MethodInputByName, MethodName } from '../protocol/generated/methods.js';
import type { BasicProperties } from '../protocol/generated/properties.js';

/** The decoded frames of one channel. Throwing `FrameError` closes the connection with its code. */
export interface ChannelFrames {
  method(method: AMQPMethod): void;
  /** The decoded header, valid until this returns (the object is reused for the next one). */
  header(header: ContentHeader): void;
  /** A body frame's payload: a view of the read buffer (keep it, or copy it, as the message needs). */
  body(payload: Buffer): void;
}

/** What a channel receives from its connection. */
export interface ChannelEndpoint {
  /** Where the channel's frames go: routed there straight from the decoder. */
  readonly inbound: ChannelFrames;
  /** The connection is gone; reject everything pending with `error`. */
  onConnectionLost(error: AMQPError): void;
  /** The connection is about to send connection.close: write what is held back (coalesced acks). */
  onConnectionClosing(): void;
}

/**
 * Where a publish goes. A pending confirm carries these fields, so the tracked publish path hands
 * its own record down and allocates nothing per message.
 */
export interface PublishTarget {
  readonly exchange: string;
  readonly routingKey: string;
  readonly mandatory: boolean;
}

/**
 * How a channel writes through its connection. Frames are encoded at once (bad arguments throw
 * `InvalidArgumentError` with nothing written) and leave at the next flush, in the order sent.
 */
export interface ChannelWriter {
  /** Encodes one method frame. */
  sendMethod<N extends MethodName>(channel: number, name: N, args: MethodInputByName[N]): void;
  /** Encodes basic.publish, its content header and its body frames: all of them or, on bad input, none. */
  sendPublish(channel: number, target: PublishTarget, properties: BasicProperties | undefined, body: Buffer): void;
  /** Asks for a flush at the end of this tick (at once when much is buffered). */
  scheduleFlush(): void;
  /** Writes what waits now. */
  flushNow(): void;
  /** Runs `hook` right before the next flush, so frames it held back (coalesced acks) join that write. */
  beforeNextFlush(hook: () => void): void;
  /** Runs `hook` right after the next flush has written what waits. */
  afterNextFlush(hook: () => void): void;
  /** True while frames (or before-flush hooks) wait for the next flush. */
  readonly hasPendingWrites: boolean;
  /** True while the buffered output is below the high-water mark. */
  readonly writable: boolean;
  /** Resolves once the buffered output fell below the high-water mark, or the connection died. */
  waitWritable(): Promise<void>;
  /**
   * `undefined` while the connection can carry frames: the one "can I send?" test. Otherwise why
   * not: the error that ended the connection, or a `ClosedError` while it closes or after a clean close.
   */
  readonly unusable: AMQPError | undefined;
}

/** What a channel may use of its connection. */
export interface ChannelHost extends ChannelWriter {
  /**
   * Default time limit, in milliseconds, of every synchronous method on its channels (0 or absent:
   * none); see `ConnectionOptions.operationTimeout`.
   */
  readonly operationTimeout?: number;
  /** Frees the channel id once the close handshake is over. */
  releaseChannel(id: number): void;
}
