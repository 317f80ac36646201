/**
 * Content assembly: a content method (basic.deliver, basic.get-ok, basic.return), then its header
 * frame, then body frames until the announced size. Anything out of that order is a 505.
 *
 * @module
 */
import { REPLY_CODES } from '../protocol/generated/constants.js';
import { FrameError } from '../errors.js';
import type { AMQPMethod } from '../protocol/generated/methods.js';
import type { ContentHeader } from '../protocol/content-header.js';
import type { BasicProperties } from '../protocol/generated/properties.js';

/** A whole message: its method, properties and body. */
export interface AssembledContent {
  method: AMQPMethod;
  properties: BasicProperties;
  body: Buffer;
  /** Why the properties could not be decoded (then `properties` is `{}`); the framing was intact. */
  decodeError: FrameError | undefined;
}

const EMPTY_BODY = Buffer.alloc(0);

export class ContentAssembler {
  private method: AMQPMethod | undefined;
  private properties: BasicProperties = {};
  private decodeError: FrameError | undefined;
  /** -1 until the header has arrived. */
  private bodySize = -1;
  private received = 0;
  /** Body frames kept as views until the whole body has arrived. */
  private parts: Buffer[] = [];

  constructor(private readonly channelId: number) {}

  /** True between a content method and the end of its body. */
  get busy(): boolean {
    return this.method !== undefined;
  }

  start(method: AMQPMethod): void {
    this.method = method;
    this.bodySize = -1;
    this.received = 0;
  }

  /** Takes the content header; returns the content if the body is empty. */
  header(header: ContentHeader): AssembledContent | undefined {
    if (this.method === undefined || this.bodySize >= 0) {
      throw new FrameError(
        `content header without a method on channel ${this.channelId}`,
        REPLY_CODES.UNEXPECTED_FRAME,
      );
    }
    this.bodySize = header.bodySize;
    // Properties that did not decode affect this message alone: it is still assembled, carrying why.
    this.properties = header.properties;
    this.decodeError = header.decodeError;
    return this.bodySize === 0 ? this.complete(EMPTY_BODY) : undefined;
  }

  /** Adds a body frame; returns the content once the body is complete. */
  body(payload: Buffer): AssembledContent | undefined {
    if (this.method === undefined || this.bodySize < 0) {
      throw new FrameError(
        `body frame without a content header on channel ${this.channelId}`,
        REPLY_CODES.UNEXPECTED_FRAME,
      );
    }
    const n = payload.length;
    if (this.received + n > this.bodySize) {
      throw new FrameError(
        `body longer than the ${this.bodySize} bytes its header announced on channel ${this.channelId}`,
        REPLY_CODES.UNEXPECTED_FRAME,
      );
    }
    // A body in one frame is handed on as a view of the read buffer: no copy.
    if (this.received === 0 && n === this.bodySize) return this.complete(payload);
    // Views of the frames, joined once complete: memory follows the bytes that arrived, never the size a
    // header announced (a hostile 2^56-byte header must not allocate anything).
    this.parts.push(payload);
    this.received += n;
    if (this.received < this.bodySize) return undefined;
    const body = Buffer.concat(this.parts, this.bodySize);
    this.parts = [];
    return this.complete(body);
  }

  private complete(body: Buffer): AssembledContent {
    const content = { method: this.method!, properties: this.properties, body, decodeError: this.decodeError };
    this.reset();
    return content;
  }

  /** Drops a half-assembled message (the channel closed). */
  reset(): void {
    this.method = undefined;
    this.properties = {};
    this.decodeError = undefined;
    this.bodySize = -1;
    this.received = 0;
    this.parts = [];
  }
}
