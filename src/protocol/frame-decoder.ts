/**
 * The protocol layer inbound: socket chunks of any size in, decoded method, content header and
 * body frames out, so the connection above only routes them by channel.
 *
 * Whole frames first (`FrameDecoder`). A frame that lies whole inside one chunk is handed on as a
 * view of that chunk (no copy). Only a frame split across chunks is copied, into a buffer
 * allocated once its header has been read and its size checked against the negotiated frame-max,
 * so a hostile size never causes a large allocation.
 *
 * Then each frame decoded (`decodeFrames`). Every rule about a single frame is checked there (an
 * unknown method, trailing bytes, a connection method off channel 0, content on channel 0, a
 * heartbeat off channel 0 or with a payload); what depends on state (an unopened channel, content
 * out of order) is left to the layers that hold it. Nothing is allocated per frame beyond the
 * decoded values: one `Reader` is pointed at frame after frame, and a body is handed on as a view
 * of the read buffer.
 *
 * @module
 */
import { FrameError } from '../errors.js';
import { type ContentHeader, decodeContentHeader } from './content-header.js';
import {
  FRAME_BODY,
  FRAME_END,
  FRAME_HEADER,
  FRAME_HEARTBEAT,
  FRAME_METHOD,
  REPLY_CODES,
} from './generated/constants.js';
import { type AMQPMethod, CHANNEL_ZERO_CLASSES, decodeMethod } from './generated/methods.js';
import { Reader } from './reader.js';

// ---------------------------------------------------------------------------- bytes → whole frames

/** Receives each frame: its type, channel and payload as `buf[start, end)`. */
export type FrameSink = (type: number, channel: number, buf: Buffer, start: number, end: number) => void;

/**
 * Largest content-header frame accepted, header and frame-end included, whatever the frame-max.
 * A content header cannot be split across frames, so a client with large headers (pika does this)
 * sends one frame above frame-max, and RabbitMQ forwards it as it is; refusing it would close the
 * connection over a valid message. 4 MiB holds any realistic header table while keeping what one
 * connection may buffer for an incomplete frame bounded.
 */
export const MAX_HEADER_FRAME_SIZE = 4 * 1024 * 1024;

/** Frame header (type, channel, size) plus the frame-end octet. */
export const FRAME_OVERHEAD = 8;
const HEADER_SIZE = 7;

/**
 * A big-endian u32 read by hand (the caller knows the 4 bytes are there): `Buffer#readUInt32BE`
 * checks its offset and compiles to several times the code, in every function it is inlined into.
 */
function getU32(buf: Buffer, at: number): number {
  return buf[at]! * 0x1000000 + ((buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!);
}

export class FrameDecoder {
  /** Largest whole frame accepted, header and frame-end included (the negotiated frame-max). */
  maxFrameSize: number;
  /** Largest content-header frame accepted (at least `maxFrameSize`); see `MAX_HEADER_FRAME_SIZE`. */
  maxHeaderFrameSize = MAX_HEADER_FRAME_SIZE;
  private readonly sink: FrameSink;
  private readonly header = Buffer.alloc(HEADER_SIZE);
  private headerFill = 0;
  private partial: Buffer | null = null;
  private partialFill = 0;

  constructor(maxFrameSize: number, sink: FrameSink) {
    this.maxFrameSize = maxFrameSize;
    this.sink = sink;
  }

  /** Bytes held for a frame not yet complete. */
  get buffered(): number {
    return this.headerFill + this.partialFill;
  }

  /** Feeds one chunk; calls the sink for every frame it completes. Throws `FrameError` on bad input. */
  push(chunk: Buffer): void {
    let off = 0;
    const len = chunk.length;

    if (this.headerFill > 0 || this.partial !== null) {
      off = this.continuePartial(chunk);
      if (off < 0) return;
    }

    // Fast path: whole frames inside this chunk.
    while (len - off >= HEADER_SIZE) {
      const type = chunk[off]!;
      const channel = (chunk[off + 1]! << 8) | chunk[off + 2]!;
      const size = getU32(chunk, off + 3);
      this.checkHeader(type, size);
      const frameEnd = off + HEADER_SIZE + size;
      if (frameEnd >= len) break;
      if (chunk[frameEnd] !== FRAME_END) throw badEnd(chunk[frameEnd]!);
      this.sink(type, channel, chunk, off + HEADER_SIZE, frameEnd);
      off = frameEnd + 1;
    }

    if (off < len) this.startPartial(chunk, off);
  }

  private checkHeader(type: number, size: number): void {
    if (type !== FRAME_METHOD && type !== FRAME_HEADER && type !== FRAME_BODY && type !== FRAME_HEARTBEAT) {
      throw new FrameError(`unknown frame type ${type}`, REPLY_CODES.FRAME_ERROR, { frameType: type });
    }
    if (size + FRAME_OVERHEAD <= this.maxFrameSize) return;
    if (type === FRAME_HEADER) {
      if (size + FRAME_OVERHEAD <= this.maxHeaderFrameSize) return;
      throw new FrameError(
        `content header frame of ${size + FRAME_OVERHEAD} bytes exceeds both the negotiated frame-max ` +
          `${this.maxFrameSize} and the ${this.maxHeaderFrameSize}-byte limit for content headers`,
        REPLY_CODES.FRAME_ERROR,
      );
    }
    throw new FrameError(
      `frame of ${size + FRAME_OVERHEAD} bytes exceeds the negotiated frame-max ${this.maxFrameSize}`,
      REPLY_CODES.FRAME_ERROR,
    );
  }

  /** Keeps the tail of a chunk that holds less than a whole frame. */
  private startPartial(chunk: Buffer, off: number): void {
    const rest = chunk.length - off;
    if (rest < HEADER_SIZE) {
      chunk.copy(this.header, 0, off);
      this.headerFill = rest;
      return;
    }
    const size = getU32(chunk, off + 3);
    // checkHeader already ran for this header in the fast path loop.
    this.partial = Buffer.allocUnsafe(HEADER_SIZE + size + 1);
    chunk.copy(this.partial, 0, off);
    this.partialFill = rest;
  }

  /** Completes a frame begun in earlier chunks. Returns the offset after it, or -1 if the chunk ran out. */
  private continuePartial(chunk: Buffer): number {
    let off = 0;
    if (this.partial === null) {
      const take = Math.min(HEADER_SIZE - this.headerFill, chunk.length);
      chunk.copy(this.header, this.headerFill, 0, take);
      this.headerFill += take;
      off = take;
      if (this.headerFill < HEADER_SIZE) return -1;
      const size = getU32(this.header, 3);
      this.checkHeader(this.header[0]!, size);
      this.partial = Buffer.allocUnsafe(HEADER_SIZE + size + 1);
      this.header.copy(this.partial, 0);
      this.partialFill = HEADER_SIZE;
      this.headerFill = 0;
    }
    const frame = this.partial;
    const take = Math.min(frame.length - this.partialFill, chunk.length - off);
    chunk.copy(frame, this.partialFill, off, off + take);
    this.partialFill += take;
    off += take;
    if (this.partialFill < frame.length) return -1;
    this.partial = null;
    this.partialFill = 0;
    const last = frame.length - 1;
    if (frame[last] !== FRAME_END) throw badEnd(frame[last]!);
    this.sink(frame[0]!, (frame[1]! << 8) | frame[2]!, frame, HEADER_SIZE, last);
    return off;
  }
}

function badEnd(octet: number): FrameError {
  return new FrameError(
    `frame-end octet is 0x${octet.toString(16).padStart(2, '0')}, expected 0xce`,
    REPLY_CODES.FRAME_ERROR,
  );
}

// ------------------------------------------------------------------- whole frames → decoded frames

/** Receives decoded frames. Throwing `FrameError` closes the connection with its code. */
export interface DecodedFrameHandler {
  method(channel: number, method: AMQPMethod): void;
  /** The decoded header: one object reused frame after frame, so read it before returning. */
  header(channel: number, header: ContentHeader): void;
  /** A body frame's payload: a view of the read buffer, valid until the handler returns. */
  body(channel: number, payload: Buffer): void;
}

/** A `FrameSink` that decodes each frame and hands it to `handler`. Throws `FrameError` on bad input. */
export function decodeFrames(handler: DecodedFrameHandler): FrameSink {
  const r = new Reader(Buffer.alloc(0), 0, 0);
  const header: ContentHeader = { bodySize: 0, properties: {}, decodeError: undefined };
  return (type, channel, buf, start, end) => {
    switch (type) {
      case FRAME_METHOD: {
        r.buf = buf;
        r.pos = start;
        r.end = end;
        const method = decodeMethod(r);
        if (method === undefined) {
          const id = buf.readUInt32BE(start);
          throw new FrameError(
            `unknown method ${id >>> 16}.${id & 0xffff} on channel ${channel}`,
            REPLY_CODES.COMMAND_INVALID,
          );
        }
        if (r.pos !== end)
          throw new FrameError(`${method.name} has ${end - r.pos} bytes of trailing garbage`, REPLY_CODES.SYNTAX_ERROR);
        if (channel !== 0 && CHANNEL_ZERO_CLASSES.has(method.id >>> 16)) {
          throw new FrameError(
            `${method.name} arrived on channel ${channel}; it belongs on channel 0`,
            REPLY_CODES.COMMAND_INVALID,
          );
        }
        handler.method(channel, method);
        return;
      }
      case FRAME_HEADER:
        // No content method is allowed on channel 0, so this is content without its method (spec 4.2.6).
        if (channel === 0) throw new FrameError('content header on channel 0', REPLY_CODES.UNEXPECTED_FRAME);
        r.buf = buf;
        r.pos = start;
        r.end = end;
        handler.header(channel, decodeContentHeader(r, header));
        return;
      case FRAME_BODY:
        if (channel === 0) throw new FrameError('body frame on channel 0', REPLY_CODES.UNEXPECTED_FRAME);
        handler.body(channel, buf.subarray(start, end));
        return;
      case FRAME_HEARTBEAT:
        if (channel !== 0) throw new FrameError(`heartbeat on channel ${channel}`, REPLY_CODES.FRAME_ERROR);
        if (end !== start)
          throw new FrameError(`heartbeat frame with a ${end - start}-byte payload`, REPLY_CODES.FRAME_ERROR);
        return;
    }
  };
}
