/**
 * The protocol layer's last step inbound: whole frames from `FrameDecoder` in, decoded method,
 * content header and body frames out, so the connection above only routes them by channel.
 *
 * Every rule about a single frame is checked here (an unknown method, trailing bytes, a
 * connection method off channel 0, content on channel 0, a heartbeat off channel 0 or with a
 * payload); what depends on state (an unopened channel, content out of order) is left to the
 * layers that hold it. Nothing is allocated per frame beyond the decoded values: one `Reader`
 * is pointed at frame after frame, and a body is handed on as a view of the read buffer.
 *
 * @module
 */
import { FrameError } from '../errors.js';
import { type ContentHeader, decodeContentHeader } from './content-header.js';
import type { FrameSink } from './frame-decoder.js';
import { FRAME_BODY, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD, REPLY_CODES } from './generated/constants.js';
import { type AMQPMethod, CHANNEL_ZERO_CLASSES, decodeMethod } from './generated/methods.js';
import { Reader } from './reader.js';

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
