/**
 * Frames over a socket: incremental decoding of what arrives, coalesced writes of what leaves,
 * socket backpressure as a promise, and heartbeats.
 *
 * @module
 */
import type { Duplex } from 'node:stream';
import { type AMQPError, FrameError, HeartbeatTimeout, SocketError } from '../errors.js';
import { FrameDecoder } from '../protocol/frame-decoder.js';
import { REPLY_CODES } from '../protocol/generated/constants.js';
import { FrameEncoder } from '../protocol/frame-encoder.js';

/** Bytes buffered (encoded or in the socket) above which writers are asked to wait. */
const HIGH_WATER_MARK = 4 * 1024 * 1024;
/** Encoded bytes above which a flush is done at once rather than at the end of the tick. */
const FLUSH_NOW = 512 * 1024;
/** Largest frame accepted from a peer even when frame-max is unlimited. */
const MAX_INCOMING_FRAME = 128 * 1024 * 1024;

/** The transport a socket carries: what the shared socket listeners below reach it through. */
const kTransport = Symbol('warren.transport');
type TransportSocket = Duplex & { [kTransport]: FrameTransport };

// `this` is the socket: Node calls a listener on its emitter.
function onSocketData(this: TransportSocket, chunk: Buffer): void {
  this[kTransport].onData(chunk);
}
function onSocketError(this: TransportSocket, err: Error): void {
  this[kTransport].fail(new SocketError(`socket error: ${err.message}`, { cause: err }));
}
function onSocketClose(this: TransportSocket): void {
  this[kTransport].fail(new SocketError('the connection to the broker was closed'));
}
function onSocketEnd(this: TransportSocket): void {
  this[kTransport].fail(new SocketError('the broker ended the connection'));
}
function onSocketDrain(this: TransportSocket): void {
  this[kTransport].releaseWriters();
}

/** Where the transport hands each whole frame (the connection's channel table). */
export interface FrameReceiver {
  /** A whole frame arrived: its type, channel and payload as `buf[start, end)`. */
  onFrame(type: number, channel: number, buf: Buffer, start: number, end: number): void;
}

/** What the transport tells its owner (its connection, whose method this is). */
export interface TransportEvents {
  /** The transport is dead: socket error or end, heartbeat loss, or a malformed frame. Called once. */
  onFailure(error: AMQPError): void;
}

export class FrameTransport {
  readonly decoder: FrameDecoder;
  readonly encoder: FrameEncoder;
  private readonly socket: Duplex;
  private readonly events: TransportEvents;
  private flushScheduled = false;
  // Made with their first entry: most connections are idle most of the time.
  private flushHooks: (() => void)[] | undefined = undefined;
  private afterFlushHooks: (() => void)[] | undefined = undefined;
  private drainWaiters: (() => void)[] | undefined = undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readSinceTick = false;
  private wroteSinceTick = false;
  private silentTicks = 0;
  private failed = false;
  /** Optional hook that sees every outgoing chunk (frame tracing). */
  onWrite: ((chunk: Buffer) => void) | undefined;

  constructor(socket: Duplex, frameMax: number, frames: FrameReceiver, events: TransportEvents) {
    this.socket = socket;
    this.events = events;
    this.encoder = new FrameEncoder(frameMax);
    this.decoder = new FrameDecoder(frameMax, (type, channel, buf, start, end) =>
      frames.onFrame(type, channel, buf, start, end),
    );
    // Listeners shared by every transport, which find theirs on the socket (`this` in a listener):
    // five closures per connection otherwise.
    (socket as TransportSocket)[kTransport] = this;
    socket.on('data', onSocketData);
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
    socket.on('end', onSocketEnd);
    socket.on('drain', onSocketDrain);
  }

  /** A chunk arrived (from the shared socket listener). */
  onData(chunk: Buffer): void {
    this.readSinceTick = true;
    if (this.failed) return;
    try {
      this.decoder.push(chunk);
    } catch (err) {
      const error =
        err instanceof FrameError
          ? err
          : new FrameError(`failed to decode a frame: ${String(err)}`, REPLY_CODES.FRAME_ERROR);
      this.fail(error);
    }
  }

  /** Marks the transport dead and tells the owner once. The socket is left for the owner to close. */
  fail(error: AMQPError): void {
    if (this.failed) return;
    this.failed = true;
    this.stopHeartbeat();
    this.releaseWriters();
    this.events.onFailure(error);
  }

  get isFailed(): boolean {
    return this.failed;
  }

  /** The frame-max in force: the encoder holds it, and the decoder's limit follows from it. */
  get frameMax(): number {
    return this.encoder.frameMax;
  }

  /** Applies the negotiated frame-max to both directions. */
  setFrameMax(frameMax: number): void {
    this.encoder.frameMax = frameMax;
    // With no limit negotiated (0 on both sides), still bound what one frame header can make us
    // allocate: RabbitMQ's own ceiling for frame_max is far below this.
    this.decoder.maxFrameSize = Math.min(frameMax, MAX_INCOMING_FRAME);
  }

  /** Asks for a flush at the end of this tick, so frames written in one burst leave in one write. */
  scheduleFlush(): void {
    if (this.encoder.pending >= FLUSH_NOW) {
      this.flush();
      return;
    }
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flushTask);
  }

  private readonly flushTask = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  /**
   * Runs `hook` right before the next flush, so it can append frames it has been holding back
   * (coalesced acks) to the same write.
   */
  beforeNextFlush(hook: () => void): void {
    (this.flushHooks ??= []).push(hook);
    this.scheduleFlush();
  }

  /** True while frames (or coalesced acks) wait for the next flush. */
  get hasPendingWrites(): boolean {
    return this.flushHooks !== undefined || this.encoder.pending > 0;
  }

  /**
   * Runs `hook` right after the next flush has written what waits: for work that must not start
   * while those frames are held back (a consumer's next handler, which may block the event loop).
   */
  afterNextFlush(hook: () => void): void {
    (this.afterFlushHooks ??= []).push(hook);
    this.scheduleFlush();
  }

  /** Writes everything encoded so far. */
  flush(): void {
    this.write();
    const hooks = this.afterFlushHooks;
    if (hooks !== undefined) {
      this.afterFlushHooks = undefined;
      for (const hook of hooks) hook();
    }
  }

  private write(): void {
    const hooks = this.flushHooks;
    if (hooks !== undefined) {
      this.flushHooks = undefined;
      for (const hook of hooks) hook();
    }
    const chunks = this.encoder.take();
    if (chunks.length === 0 || this.failed) return;
    this.wroteSinceTick = true;
    const socket = this.socket;
    if (chunks.length === 1) {
      const chunk = chunks[0]!;
      this.onWrite?.(chunk);
      socket.write(chunk);
      return;
    }
    socket.cork();
    for (const chunk of chunks) {
      this.onWrite?.(chunk);
      socket.write(chunk);
    }
    socket.uncork();
  }

  /** True while the buffered output is below the high-water mark. */
  get writable(): boolean {
    return this.encoder.pending + this.socket.writableLength < HIGH_WATER_MARK;
  }

  /** Resolves when the buffered output has fallen below the high-water mark (or the transport died). */
  waitWritable(): Promise<void> {
    if (this.writable || this.failed) return Promise.resolve();
    this.flush();
    return new Promise((resolve) => (this.drainWaiters ??= []).push(resolve));
  }

  /** Lets the publishes waiting for the socket go once it has room (or the transport died). */
  releaseWriters(): void {
    const waiters = this.drainWaiters;
    if (waiters === undefined) return;
    if (!this.failed && !this.writable) return;
    this.drainWaiters = undefined;
    for (const w of waiters) w();
  }

  /**
   * Sends a heartbeat when nothing was written for half an interval, and declares the peer dead when
   * nothing was read for two whole intervals.
   */
  startHeartbeat(seconds: number): void {
    this.stopHeartbeat();
    if (seconds <= 0) return;
    const tick = (seconds * 1000) / 2;
    // The timer carries its transport as an argument: no closure per connection.
    this.heartbeatTimer = setInterval(FrameTransport.heartbeatTick, tick, this, seconds);
    this.heartbeatTimer.unref();
  }

  private static heartbeatTick(transport: FrameTransport, seconds: number): void {
    if (transport.readSinceTick) transport.silentTicks = 0;
    else transport.silentTicks++;
    transport.readSinceTick = false;
    if (transport.silentTicks >= 4) {
      transport.fail(new HeartbeatTimeout(`no heartbeat or data from the broker for ${seconds * 2} seconds`));
      return;
    }
    if (!transport.wroteSinceTick) {
      transport.encoder.heartbeat();
      transport.flush();
    }
    transport.wroteSinceTick = false;
  }

  stopHeartbeat(): void {
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  /** Flushes and half-closes; the socket is destroyed after `graceMs` if the peer does not close it. */
  end(graceMs = 1000): void {
    this.flush();
    this.stopHeartbeat();
    const socket = this.socket;
    socket.end();
    const timer = setTimeout(() => socket.destroy(), graceMs);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  }

  destroy(): void {
    this.stopHeartbeat();
    this.socket.destroy();
  }
}
