/**
 * Building blocks of the fuzzers: AMQP frames as bytes (from test/support/frames.ts, which the TCP
 * fake server shares), and a tiny broker on an in-memory socket
 * that runs the handshake, answers the client's synchronous methods and records what the client
 * sends, so that a real `Connection` can be driven frame by frame with no network and no timers.
 *
 *   const broker = new MemoryBroker({ frameMax: 4096 });
 *   const conn = await Connection.overStream(broker.clientEnd, { heartbeat: 0 });
 *   broker.inject([frame(8, 0, Buffer.alloc(0))]);   // whatever bytes, in whatever chunks
 *   broker.closeFromClient;                           // the connection.close the client sent, if any
 */
import type { Duplex } from 'node:stream';
import { FrameDecoder } from '../../src/protocol/frame-decoder.js';
import { FRAME_METHOD, PROTOCOL_HEADER } from '../../src/protocol/generated/constants.js';
import type {
  AMQPMethod,
  MethodArgsByName,
  MethodInputByName,
  MethodName,
} from '../../src/protocol/generated/methods.js';
import { memorySocketPair } from '../../src/transport/memory.js';
import { decodeFrame, methodFrame, ordinaryReply, replyFrame } from '../support/frames.js';

// ------------------------------------------------------------------------------------------- broker

export interface MemoryBrokerOptions {
  /** frame-max proposed in connection.tune (0 = no limit). */
  frameMax?: number;
  channelMax?: number;
  /** Mechanisms offered in connection.start. */
  mechanisms?: string;
  /** Consumer tag the broker gives every basic.consume that asks for none. */
  consumerTag?: string;
  /**
   * When false, the broker sends nothing by itself: not even connection.start. The test then
   * injects the handshake (or garbage in its place).
   */
  autoHandshake?: boolean;
  /** Called with 'header' once the protocol header is in, then with every method the client sends. */
  onClient?: (what: 'header' | ClientMethod) => void;
}

/** A method the client sent, with the channel it came on. */
export interface ClientMethod {
  channel: number;
  method: AMQPMethod;
}

/**
 * The broker's end of an in-memory socket. It answers connection.start-ok, connection.open and
 * connection.close itself and everything else as `ordinaryReply` does, counts basic.publish per
 * channel, and keeps every method the client sent. Bytes the client sends that are not valid AMQP are recorded in `clientStreamError`.
 */
export class MemoryBroker {
  /** Give this to `Connection.overStream`. */
  readonly clientEnd: Duplex;
  private readonly serverEnd: Duplex;
  readonly methods: ClientMethod[] = [];
  /** The client's connection.close, if it sent one. */
  closeFromClient: MethodArgsByName['connection.close'] | undefined;
  /** basic.publish count per channel (delivery tags of confirms start at 1). */
  readonly published = new Map<number, number>();
  /** Frames the broker has written, handshake included. */
  framesSent = 0;
  /** Set if the client ever wrote something that is not AMQP. */
  clientStreamError: Error | undefined;
  /** Frames the client sent after its connection.close (must stay 0). */
  framesAfterClose = 0;
  /** Whether the client ended or destroyed its end. */
  clientEnded = false;
  private readonly decoder: FrameDecoder;
  private headerSeen = 0;
  private readonly options: Required<Omit<MemoryBrokerOptions, 'onClient'>>;
  private readonly onClient: ((what: 'header' | ClientMethod) => void) | undefined;

  constructor(options: MemoryBrokerOptions = {}) {
    this.options = {
      frameMax: options.frameMax ?? 131072,
      channelMax: options.channelMax ?? 2047,
      mechanisms: options.mechanisms ?? 'PLAIN AMQPLAIN',
      consumerTag: options.consumerTag ?? 'ctag',
      autoHandshake: options.autoHandshake ?? true,
    };
    this.onClient = options.onClient;
    const [client, server] = memorySocketPair();
    this.clientEnd = client;
    this.serverEnd = server;
    this.decoder = new FrameDecoder(0xffffffff, (type, channel, buf, start, end) =>
      this.onFrame(type, channel, buf, start, end),
    );
    server.on('data', (chunk: Buffer) => this.onData(chunk));
    server.on('end', () => {
      this.clientEnded = true;
    });
    server.on('close', () => {
      this.clientEnded = true;
    });
    server.on('error', () => {});
  }

  /** Writes frames (or any bytes) to the client, each buffer as one chunk. Ignored once the socket is gone. */
  inject(chunks: readonly Buffer[], frames = 0): void {
    this.framesSent += frames;
    for (const c of chunks) {
      if (this.serverEnd.destroyed || this.serverEnd.writableEnded) return;
      this.serverEnd.write(c);
    }
  }

  /** Half-closes the broker's end: the client sees the socket end. */
  end(): void {
    if (!this.serverEnd.destroyed && !this.serverEnd.writableEnded) this.serverEnd.end();
  }

  destroy(): void {
    this.serverEnd.destroy();
    this.clientEnd.destroy();
  }

  private send<N extends MethodName>(channel: number, name: N, args: MethodInputByName[N]): void {
    this.inject([methodFrame(channel, name, args)], 1);
  }

  private onData(chunk: Buffer): void {
    let off = 0;
    if (this.headerSeen < 8) {
      off = Math.min(8 - this.headerSeen, chunk.length);
      for (let i = 0; i < off; i++) {
        if (chunk[i] !== PROTOCOL_HEADER[this.headerSeen + i])
          this.clientStreamError ??= new Error('bad protocol header');
      }
      this.headerSeen += off;
      if (this.headerSeen === 8) this.onClient?.('header');
      if (this.headerSeen === 8 && this.options.autoHandshake) {
        this.send(0, 'connection.start', {
          versionMajor: 0,
          versionMinor: 9,
          serverProperties: { product: 'memory-broker', capabilities: { publisher_confirms: true } },
          mechanisms: this.options.mechanisms,
          locales: 'en_US',
        });
      }
    }
    if (off >= chunk.length || this.clientStreamError !== undefined) return;
    try {
      this.decoder.push(chunk.subarray(off));
    } catch (err) {
      this.clientStreamError = err instanceof Error ? err : new Error(String(err));
    }
  }

  private onFrame(type: number, channel: number, buf: Buffer, start: number, end: number): void {
    if (this.closeFromClient !== undefined) this.framesAfterClose++;
    // Content frames (of a basic.publish) need no answer; only methods are decoded and answered.
    if (type !== FRAME_METHOD) return;
    const f = decodeFrame(type, channel, Buffer.from(buf.subarray(start, end)));
    const m = f.method;
    if (m === undefined) {
      this.clientStreamError ??=
        f.methodError ?? new Error(`client sent an unknown method id ${buf.readUInt32BE(start)}`);
      return;
    }
    const received = { channel, method: m };
    this.methods.push(received);
    this.onClient?.(received);
    if (!this.options.autoHandshake && channel === 0 && m.name !== 'connection.close') return;
    switch (m.name) {
      case 'connection.start-ok':
        this.send(0, 'connection.tune', {
          channelMax: this.options.channelMax,
          frameMax: this.options.frameMax,
          heartbeat: 0,
        });
        return;
      case 'connection.open':
        this.send(0, 'connection.open-ok', {});
        return;
      case 'connection.close':
        this.closeFromClient = m.args;
        this.send(0, 'connection.close-ok', {});
        return;
      case 'basic.publish':
        this.published.set(channel, (this.published.get(channel) ?? 0) + 1);
        return;
      default: {
        const reply = ordinaryReply(m, () => this.options.consumerTag);
        if (reply !== undefined) this.inject([replyFrame(channel, reply)], 1);
      }
    }
  }
}
