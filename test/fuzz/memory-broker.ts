/**
 * Building blocks of the fuzzers: AMQP frames as bytes, and a tiny broker on an in-memory socket
 * that runs the handshake, answers the client's synchronous methods and records what the client
 * sends, so that a real `Connection` can be driven frame by frame with no network and no timers.
 *
 *   const broker = new MemoryBroker({ frameMax: 4096 });
 *   const conn = await Connection.overStream(broker.clientEnd, { heartbeat: 0 });
 *   broker.inject([frame(8, 0, Buffer.alloc(0))]);   // whatever bytes, in whatever chunks
 *   broker.closeFromClient;                           // the connection.close the client sent, if any
 */
import type { Duplex } from 'node:stream';
import { decodeContentHeader, encodeContentHeader } from '../../src/protocol/content-header.js';
import { FrameDecoder } from '../../src/protocol/frame-decoder.js';
import {
  FRAME_BODY,
  FRAME_END,
  FRAME_HEADER,
  FRAME_METHOD,
  PROTOCOL_HEADER,
} from '../../src/protocol/generated/constants.js';
import {
  type AMQPMethod,
  decodeMethod,
  METHOD_ENCODERS,
  type MethodArgsByName,
  type MethodInputByName,
  type MethodName,
} from '../../src/protocol/generated/methods.js';
import { BASIC_CLASS_ID, type BasicProperties } from '../../src/protocol/generated/properties.js';
import type { FieldTable } from '../../src/protocol/field-values.js';
import { Reader } from '../../src/protocol/reader.js';
import { Writer } from '../../src/protocol/writer.js';
import { memorySocketPair } from '../../src/transport/memory.js';

// ------------------------------------------------------------------------------------------- frames

/** One whole frame: type, channel, payload and frame-end. */
export function frame(type: number, channel: number, payload: Buffer, end = FRAME_END): Buffer {
  const out = Buffer.allocUnsafe(payload.length + 8);
  out[0] = type;
  out.writeUInt16BE(channel, 1);
  out.writeUInt32BE(payload.length, 3);
  payload.copy(out, 7);
  out[out.length - 1] = end;
  return out;
}

/** The payload of a method frame. */
export function methodPayload<N extends MethodName>(name: N, args: MethodInputByName[N]): Buffer {
  const w = new Writer(256);
  (METHOD_ENCODERS[name] as (w: Writer, a: MethodInputByName[N]) => void)(w, args);
  return Buffer.from(w.buf.subarray(0, w.pos));
}

export function methodFrame<N extends MethodName>(channel: number, name: N, args: MethodInputByName[N]): Buffer {
  return frame(FRAME_METHOD, channel, methodPayload(name, args));
}

/** The payload of a content header frame. */
export function headerPayload(bodySize: number, properties: BasicProperties = {}, classId = BASIC_CLASS_ID): Buffer {
  const w = new Writer(256);
  encodeContentHeader(w, bodySize, properties, classId);
  return Buffer.from(w.buf.subarray(0, w.pos));
}

/** The frames of a whole message: `method`, its content header and the body cut at frameMax − 8. */
export function contentFrames(
  channel: number,
  method: Buffer,
  body: Buffer,
  frameMax: number,
  properties: BasicProperties = {},
): Buffer[] {
  const out = [
    frame(FRAME_METHOD, channel, method),
    frame(FRAME_HEADER, channel, headerPayload(body.length, properties)),
  ];
  const max = frameMax - 8;
  for (let off = 0; off < body.length; off += max) {
    out.push(frame(FRAME_BODY, channel, body.subarray(off, Math.min(body.length, off + max))));
  }
  return out;
}

/** A field table's bytes (length prefix included), for hand-made malformed tables. */
export function tableBytes(table: FieldTable): Buffer {
  const w = new Writer(256);
  w.table(table);
  return Buffer.from(w.buf.subarray(0, w.pos));
}

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
 * The broker's end of an in-memory socket. It answers connection.start-ok, connection.open,
 * channel.open, basic.qos, basic.consume, confirm.select, basic.recover, basic.get (always empty),
 * channel.close and connection.close, counts basic.publish per channel, and keeps every method the
 * client sent. Bytes the client sends that are not valid AMQP are recorded in `clientStreamError`.
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
  private contentPending = 0;

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
    if (type === FRAME_HEADER || type === FRAME_BODY) {
      // Content of a basic.publish: the header says how much body follows.
      if (type === FRAME_HEADER) {
        this.contentPending = decodeContentHeader(new Reader(buf, start, end)).bodySize;
      } else {
        this.contentPending -= end - start;
      }
      return;
    }
    if (type !== FRAME_METHOD) return;
    let m: AMQPMethod | undefined;
    try {
      m = decodeMethod(new Reader(buf, start, end));
    } catch (err) {
      this.clientStreamError ??= err instanceof Error ? err : new Error(String(err));
      return;
    }
    if (m === undefined) {
      this.clientStreamError ??= new Error(`client sent an unknown method id ${buf.readUInt32BE(start)}`);
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
      case 'channel.open':
        this.send(channel, 'channel.open-ok', {});
        return;
      case 'channel.close':
        this.send(channel, 'channel.close-ok', {});
        return;
      case 'basic.qos':
        this.send(channel, 'basic.qos-ok', {});
        return;
      case 'basic.consume':
        this.send(channel, 'basic.consume-ok', { consumerTag: m.args.consumerTag || this.options.consumerTag });
        return;
      case 'basic.cancel':
        if (!m.args.nowait) this.send(channel, 'basic.cancel-ok', { consumerTag: m.args.consumerTag });
        return;
      case 'confirm.select':
        this.send(channel, 'confirm.select-ok', {});
        return;
      case 'basic.recover':
        this.send(channel, 'basic.recover-ok', {});
        return;
      case 'basic.get':
        this.send(channel, 'basic.get-empty', {});
        return;
      case 'basic.publish':
        this.published.set(channel, (this.published.get(channel) ?? 0) + 1);
        return;
      default:
        return;
    }
  }
}
