/**
 * The channels of one connection by id: allocation (the lowest free id after the last one given,
 * wrapping at channel-max), release, and the inbound side of the connection: every whole frame from
 * the transport is decoded here and routed by channel id, channel 0's to the connection and every
 * other one straight to its channel's `inbound`.
 *
 * @module
 */
import { ChannelError, FrameError } from '../errors.js';
import type { ContentHeader } from '../protocol/content-header.js';
import { type DecodedFrameHandler, decodeFrames } from '../protocol/frame-decoder.js';
import { REPLY_CODES } from '../protocol/generated/constants.js';
import type { AMQPMethod } from '../protocol/generated/methods.js';
import type { FrameReceiver } from '../transport/frame-transport.js';
import type { ChannelEndpoint } from './endpoint.js';
import type { FrameTracer } from './frame-trace.js';

/** What the table needs of its connection. */
export interface ChannelTableHost {
  /** False once the connection is closed: the rest of a chunk that held a fatal frame is not acted on. */
  readonly takesFrames: boolean;
  readonly tracer: FrameTracer | undefined;
  /** Takes the methods of channel 0 (the connection's own). */
  onChannelZero(method: AMQPMethod): void;
  /** A frame could not be handled: the connection fails with `error`. */
  frameFailed(error: FrameError): void;
}

export class ChannelTable implements FrameReceiver, DecodedFrameHandler {
  private readonly channels: (ChannelEndpoint | undefined)[] = [];
  private lastId = 0;
  private count = 0;
  /** The negotiated channel-max (0 until tune: then any channel's frame is a protocol error). */
  channelMax = 0;
  private readonly decoded = decodeFrames(this);

  constructor(private readonly host: ChannelTableHost) {}

  /** A whole frame from the transport: decoded (see `decodeFrames`), then routed below. */
  onFrame(type: number, channelId: number, buf: Buffer, start: number, end: number): void {
    const host = this.host;
    if (!host.takesFrames) return;
    host.tracer?.incoming(type, channelId, buf, start, end);
    try {
      this.decoded(type, channelId, buf, start, end);
    } catch (err) {
      host.frameFailed(
        err instanceof FrameError
          ? err
          : new FrameError(
              `failed to process a frame: ${err instanceof Error ? err.message : String(err)}`,
              REPLY_CODES.INTERNAL_ERROR,
              { cause: err },
            ),
      );
    }
  }

  method(channelId: number, method: AMQPMethod): void {
    if (channelId === 0) this.host.onChannelZero(method);
    else this.route(channelId, method.name)?.inbound.method(method);
  }

  header(channelId: number, header: ContentHeader): void {
    this.route(channelId, 'content header')?.inbound.header(header);
  }

  body(channelId: number, payload: Buffer): void {
    this.route(channelId, 'body')?.inbound.body(payload);
  }

  /** Allocates an id below `max` and registers the endpoint `create` makes for it. */
  allocate<T extends ChannelEndpoint>(max: number, create: (id: number) => T): T {
    if (this.count >= max) {
      throw new ChannelError(`all ${max} channels the broker allows are in use; close some or raise channel_max`);
    }
    let id = this.lastId;
    do {
      id = id >= max ? 1 : id + 1;
    } while (this.channels[id] !== undefined);
    this.lastId = Math.max(this.lastId, id);
    const endpoint = create(id);
    this.channels[id] = endpoint;
    this.count++;
    return endpoint;
  }

  release(id: number): void {
    if (this.channels[id] === undefined) return;
    this.channels[id] = undefined;
    this.count--;
  }

  /**
   * The endpoint a frame for channel `id` goes to. Frames for a channel never opened are a
   * protocol error; after a close they are dropped (`undefined`).
   */
  private route(id: number, what: string): ChannelEndpoint | undefined {
    const ch = this.channels[id];
    if (ch === undefined && (id > this.channelMax || id > this.lastId)) {
      throw new FrameError(`${what} for channel ${id}, which is not open`, REPLY_CODES.CHANNEL_ERROR);
    }
    return ch;
  }

  /** Every registered endpoint. */
  *[Symbol.iterator](): IterableIterator<ChannelEndpoint> {
    for (const ch of this.channels) if (ch !== undefined) yield ch;
  }
}
