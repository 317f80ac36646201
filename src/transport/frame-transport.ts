/**
 * Frames over a socket: incremental decoding of what arrives, coalesced writes of what leaves,
 * socket backpressure as a promise, and heartbeats.
 *
 * @module
 */
import type { Duplex } from 'node:stream';
import { type AMQPError, FrameError, HeartbeatTimeout, SocketError } from '../errors.js';
import { FrameDecoder, type FrameSink } from '../protocol/frame-decoder.js';
import { REPLY_CODES } from '../protocol/generated/constants.js';
import { FrameEncoder } from '../protocol/frame-encoder.js';

/** Bytes buffered (encoded or in the socket) above which writers are asked to wait. */
const HIGH_WATER_MARK = 4 * 1024 * 1024;
/** Encoded bytes above which a flush is done at once rather than at the end of the tick. */
const FLUSH_NOW = 512 * 1024;
/** Largest frame accepted from a peer even when frame-max is unlimited. */
const MAX_INCOMING_FRAME = 128 * 1024 * 1024;

/** What the transport tells its owner. */
export interface TransportEvents {
  /** A whole frame arrived. */
  onFrame: FrameSink;
  /** The transport is dead: socket error or end, heartbeat loss, or a malformed frame. Called once. */
  onFailure(error: AMQPError): void;
}

export class FrameTransport {
  readonly decoder: FrameDecoder;
  readonly encoder: FrameEncoder;
  private readonly socket: Duplex;
  private readonly events: TransportEvents;
  private flushScheduled = false;
  private flushHooks: (() => void)[] = [];
  private afterFlushHooks: (() => void)[] = [];
  private drainWaiters: (() => void)[] = [];
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readSinceTick = false;
  private wroteSinceTick = false;
  private silentTicks = 0;
  private failed = false;
  /** Optional hook that sees every outgoing chunk (frame tracing). */
  onWrite: ((chunk: Buffer) => void) | undefined;

  constructor(socket: Duplex, frameMax: number, events: TransportEvents) {
    this.socket = socket;
    this.events = events;
    this.encoder = new FrameEncoder(frameMax);
    this.decoder = new FrameDecoder(frameMax, events.onFrame);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err: Error) => this.fail(new SocketError(`socket error: ${err.message}`, { cause: err })));
    socket.on('close', () => this.fail(new SocketError('the connection to the broker was closed')));
    socket.on('end', () => this.fail(new SocketError('the broker ended the connection')));
    socket.on('drain', () => this.releaseWriters());
  }

  private onData(chunk: Buffer): void {
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
    this.flushHooks.push(hook);
    this.scheduleFlush();
  }

  /** True while frames (or coalesced acks) wait for the next flush. */
  get hasPendingWrites(): boolean {
    return this.flushHooks.length > 0 || this.encoder.pending > 0;
  }

  /**
   * Runs `hook` right after the next flush has written what waits: for work that must not start
   * while those frames are held back (a consumer's next handler, which may block the event loop).
   */
  afterNextFlush(hook: () => void): void {
    this.afterFlushHooks.push(hook);
    this.scheduleFlush();
  }

  /** Writes everything encoded so far. */
  flush(): void {
    this.write();
    if (this.afterFlushHooks.length > 0) {
      const hooks = this.afterFlushHooks;
      this.afterFlushHooks = [];
      for (const hook of hooks) hook();
    }
  }

  private write(): void {
    if (this.flushHooks.length > 0) {
      const hooks = this.flushHooks;
      this.flushHooks = [];
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
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private releaseWriters(): void {
    if (this.drainWaiters.length === 0) return;
    if (!this.failed && !this.writable) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
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
    this.heartbeatTimer = setInterval(() => {
      if (this.readSinceTick) this.silentTicks = 0;
      else this.silentTicks++;
      this.readSinceTick = false;
      if (this.silentTicks >= 4) {
        this.fail(new HeartbeatTimeout(`no heartbeat or data from the broker for ${seconds * 2} seconds`));
        return;
      }
      if (!this.wroteSinceTick) {
        this.encoder.heartbeat();
        this.flush();
      }
      this.wroteSinceTick = false;
    }, tick);
    this.heartbeatTimer.unref();
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
