/**
 * Frame writer. Frames are appended to one arena buffer; `take()` hands out everything written
 * since the last call as buffers ready for one socket write, so a burst of publishes in one tick
 * becomes one contiguous write. Bodies above `LARGE_BODY` are not copied: their frames reference the
 * caller's buffer.
 *
 * @module
 */
import { FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD } from './generated/constants.js';
import { METHOD_ENCODERS, type MethodInputByName, type MethodName } from './generated/methods.js';
import type { BasicProperties } from './generated/properties.js';
import { encodeContentHeader } from './content-header.js';
import { Writer } from './writer.js';
import { InvalidArgumentError } from '../errors.js';

/**
 * An arena starts small, so an idle connection holds 1 KiB (a slice of Node's shared buffer pool)
 * rather than 256, and doubles when one burst (the bytes of one flush) fills more than half of it,
 * up to `ARENA_MAX`, which a busy connection reaches within its first few bursts. It grows with the
 * size of the bursts, not with all a connection ever wrote: one that writes a little at a time
 * (acks, heartbeats) keeps a small arena however long it lives.
 */
const ARENA_INITIAL = 1024;
const ARENA_MAX = 256 * 1024;
/** Bodies at least this large are written as views of the caller's buffer instead of being copied. */
export const LARGE_BODY = 64 * 1024;
const EMPTY: Buffer[] = [];

/**
 * A Writer whose taken bytes are never touched again, so views of them handed to the socket stay
 * valid. `base` is the start of the bytes not yet taken; when room runs out only those move, to the
 * start of a fresh buffer.
 */
class ArenaWriter extends Writer {
  constructor() {
    super(ARENA_INITIAL);
  }
  override ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }
  /** Out of line: `ensure` is inlined into every write, and this part runs only when the arena is full. */
  private grow(n: number): void {
    const pendingBytes = this.pos - this.base;
    const needed = (pendingBytes + n) * 2;
    const size =
      needed <= this.buf.length ? this.buf.length : Math.max(Math.min(ARENA_MAX, this.buf.length * 2), needed);
    // Not from Node's shared pool: an arena outlives the other slices of the pool it was cut from,
    // so a small arena taken at some later write would keep a whole 8 KiB pool alive by itself.
    const next = Buffer.allocUnsafeSlow(size);
    this.buf.copy(next, 0, this.base, this.pos);
    this.buf = next;
    this.base = 0;
    this.pos = pendingBytes;
  }
}

/**
 * A big-endian u32 stored by hand: `Buffer#writeUInt32BE` checks its arguments and compiles to
 * several times the code, repeated in every hot function it is inlined into.
 */
function putU32(buf: Buffer, at: number, v: number): void {
  buf[at] = v >>> 24;
  buf[at + 1] = (v >>> 16) & 0xff;
  buf[at + 2] = (v >>> 8) & 0xff;
  buf[at + 3] = v & 0xff;
}

/** Out of line, so the message is not compiled into every caller of `finish`. */
function frameTooLarge(header: boolean, frameSize: number, frameMax: number): InvalidArgumentError {
  return new InvalidArgumentError(
    `a ${header ? 'message header (properties)' : 'method'} frame of ${frameSize} bytes exceeds the negotiated frame-max ${frameMax}; shorten the headers or arguments`,
  );
}

export class FrameEncoder {
  /** Negotiated frame-max; body frames carry at most frameMax − 8 bytes. */
  frameMax: number;
  private readonly w = new ArenaWriter();
  private chunks: Buffer[] = [];
  /** The basic.publish method frame last written, reused while the destination stays the same. */
  private lastPublish:
    | { channel: number; exchange: string; routingKey: string; mandatory: boolean; frame: Buffer }
    | undefined;
  private pendingBytes = 0;

  constructor(frameMax: number) {
    this.frameMax = frameMax;
  }

  /** Bytes encoded and not yet taken. */
  get pending(): number {
    return this.pendingBytes + (this.w.pos - this.w.base);
  }

  /** Starts a frame; returns its position relative to the arena base (an arena move keeps that valid). */
  private begin(type: number, channel: number): number {
    const w = this.w;
    w.ensure(7);
    const at = w.pos;
    w.buf[at] = type;
    w.buf[at + 1] = channel >>> 8;
    w.buf[at + 2] = channel & 0xff;
    w.pos += 7;
    return at - w.base;
  }

  private finish(relativeAt: number): void {
    const w = this.w;
    const at = w.base + relativeAt;
    const size = w.pos - at - 7;
    // The broker would close the whole connection (501); refuse it here, before anything is sent.
    if (size > this.frameMax - 8) throw frameTooLarge(w.buf[at] === FRAME_HEADER, size + 8, this.frameMax);
    putU32(w.buf, at + 3, size);
    w.ensure(1);
    w.buf[w.pos++] = FRAME_END;
  }

  /** Bytes pending in the arena; stable across arena moves, unlike absolute positions. */
  private arenaPending(): number {
    return this.w.pos - this.w.base;
  }

  /** Drops whatever was appended after `pendingBefore`, so nothing half-written is ever sent. */
  private rollback(pendingBefore: number): void {
    this.w.pos = this.w.base + pendingBefore;
  }

  /** Appends one method frame. Throws InvalidArgumentError (and writes nothing) on bad arguments. */
  method<N extends MethodName>(channel: number, name: N, args: MethodInputByName[N]): void {
    const before = this.arenaPending();
    try {
      const at = this.begin(FRAME_METHOD, channel);
      (METHOD_ENCODERS[name] as (w: Writer, a: MethodInputByName[N]) => void)(this.w, args);
      this.finish(at);
    } catch (err) {
      this.rollback(before);
      throw err;
    }
  }

  /** Appends a heartbeat frame. */
  heartbeat(): void {
    const at = this.begin(FRAME_HEARTBEAT, 0);
    this.finish(at);
  }

  /**
   * Appends basic.publish, its content header and body frames. All-or-nothing: if the arguments
   * or properties are invalid it throws and nothing is appended.
   */
  publish(
    channel: number,
    exchange: string,
    routingKey: string,
    mandatory: boolean,
    properties: BasicProperties | undefined,
    body: Buffer,
  ): void {
    const w = this.w;
    const before = this.arenaPending();
    try {
      const cached = this.lastPublish;
      if (
        cached !== undefined &&
        cached.routingKey === routingKey &&
        cached.exchange === exchange &&
        cached.channel === channel &&
        cached.mandatory === mandatory
      ) {
        // Publishing again to the same place: the method frame is the same bytes as last time.
        w.ensure(cached.frame.length);
        cached.frame.copy(w.buf, w.pos);
        w.pos += cached.frame.length;
      } else {
        const start = this.arenaPending();
        const methodAt = this.begin(FRAME_METHOD, channel);
        METHOD_ENCODERS['basic.publish'](w, { exchange, routingKey, mandatory });
        this.finish(methodAt);
        const frame = Buffer.from(w.buf.subarray(w.base + start, w.pos));
        this.lastPublish = { channel, exchange, routingKey, mandatory, frame };
      }
      const at = this.begin(FRAME_HEADER, channel);
      encodeContentHeader(w, body.length, properties);
      this.finish(at);
    } catch (err) {
      this.rollback(before);
      throw err;
    }
    this.body(channel, body);
  }

  private body(channel: number, body: Buffer): void {
    const max = this.frameMax - 8;
    const w = this.w;
    if (body.length < LARGE_BODY) {
      for (let off = 0; off < body.length; off += max) {
        const n = Math.min(max, body.length - off);
        const at = this.begin(FRAME_BODY, channel);
        w.ensure(n);
        if (n <= 32) {
          // A native copy costs more than a short loop for the tiny bodies that dominate message rates.
          const dst = w.buf;
          const base = w.pos - off;
          for (let i = off; i < off + n; i++) dst[base + i] = body[i]!;
        } else {
          body.copy(w.buf, w.pos, off, off + n);
        }
        w.pos += n;
        this.finish(at);
      }
      return;
    }
    for (let off = 0; off < body.length; off += max) {
      const n = Math.min(max, body.length - off);
      const at = this.begin(FRAME_BODY, channel);
      putU32(w.buf, w.base + at + 3, n);
      this.cut();
      this.chunks.push(body.subarray(off, off + n));
      this.pendingBytes += n;
      w.ensure(1);
      w.buf[w.pos++] = FRAME_END;
    }
  }

  /** Moves the arena bytes written so far into the chunk list. */
  private cut(): void {
    const w = this.w;
    if (w.pos > w.base) {
      this.chunks.push(w.buf.subarray(w.base, w.pos));
      this.pendingBytes += w.pos - w.base;
      w.base = w.pos;
    }
  }

  /** Everything encoded since the last call, in order; the encoder starts afresh. */
  take(): Buffer[] {
    this.cut();
    if (this.chunks.length === 0) return EMPTY;
    const out = this.chunks;
    this.chunks = [];
    this.pendingBytes = 0;
    return out;
  }
}
