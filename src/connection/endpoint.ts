/**
 * The contract between a connection and the channels it carries. The connection layer knows
 * channels only through this interface, so it never imports the channel layer above it.
 *
 * @module
 */
import type { AMQPError } from '../errors.js';
import type { ContentHeader } from '../protocol/content-header.js';
import type { AMQPMethod } from '../protocol/generated/methods.js';
import type { FrameTransport } from '../transport/frame-transport.js';

/** What a channel receives from its connection. Throwing `FrameError` closes the connection with its code. */
export interface ChannelEndpoint {
  onMethod(method: AMQPMethod): void;
  /** The decoded header, valid until this returns (the object is reused for the next one). */
  onHeader(header: ContentHeader): void;
  /** A body frame's payload: a view of the read buffer (keep it, or copy it, as the message needs). */
  onBody(payload: Buffer): void;
  /** The connection is gone; reject everything pending with `error`. */
  onConnectionLost(error: AMQPError): void;
}

/** What a channel may use of its connection. */
export interface ChannelHost {
  readonly transport: FrameTransport;
  /** Negotiated frame-max. */
  readonly frameMax: number;
  /** True while the connection is open and usable. */
  readonly isOpen: boolean;
  /** The reason the connection is not usable, if it is not. */
  readonly closeReason: AMQPError | undefined;
  /**
   * Default time limit, in milliseconds, of every synchronous method on its channels (0 or absent:
   * none); see `ConnectionOptions.operationTimeout`.
   */
  readonly operationTimeout?: number;
  /** Frees the channel id once the close handshake is over. */
  releaseChannel(id: number): void;
}
