/**
 * The broker's side of the wire, shared by every fake broker in the tests (the TCP fake server in
 * fake-server.ts, the in-memory broker of the fuzzers): AMQP frames built as bytes, frames from the
 * client decoded as far as warren's codec goes, and what an ordinary broker says (RabbitMQ 3.10's server
 * properties, the replies to ordinary methods).
 *
 *   socket.write(Buffer.concat(contentFrames(1, methodPayload('basic.deliver', args), body, 4096)));
 *   const f = decodeFrame(type, channel, payload);        // f.method, f.header, f.methodError
 *   const reply = ordinaryReply(f.method, nextTag);       // ['channel.open-ok', {}] or undefined
 */
import { decodeContentHeader, encodeContentHeader } from '../../src/protocol/content-header.js';
import type { FieldTable } from '../../src/protocol/field-values.js';
import {
  FRAME_BODY,
  FRAME_END,
  FRAME_HEADER,
  FRAME_HEARTBEAT,
  FRAME_METHOD,
} from '../../src/protocol/generated/constants.js';
import {
  type AMQPMethod,
  decodeMethod,
  METHOD_ENCODERS,
  type MethodInputByName,
  type MethodName,
} from '../../src/protocol/generated/methods.js';
import { BASIC_CLASS_ID, type BasicProperties } from '../../src/protocol/generated/properties.js';
import { Reader } from '../../src/protocol/reader.js';
import { Writer } from '../../src/protocol/writer.js';

// ------------------------------------------------------------------------------------- building

/** One whole frame: type, channel, payload and frame-end (another `end` makes a malformed frame). */
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

/** One method frame as bytes. */
export function methodFrame<N extends MethodName>(channel: number, name: N, args: MethodInputByName[N]): Buffer {
  return frame(FRAME_METHOD, channel, methodPayload(name, args));
}

/** The payload of a content header frame. */
export function headerPayload(bodySize: number, properties: BasicProperties = {}, classId = BASIC_CLASS_ID): Buffer {
  const w = new Writer(256);
  encodeContentHeader(w, bodySize, properties, classId);
  return Buffer.from(w.buf.subarray(0, w.pos));
}

/** A content header frame (class basic) announcing `bodySize`. */
export function contentHeader(channel: number, bodySize: number, properties: BasicProperties = {}): Buffer {
  return frame(FRAME_HEADER, channel, headerPayload(bodySize, properties));
}

/** The frames of a whole message: `method`, its content header and the body cut at frameMax − 8. */
export function contentFrames(
  channel: number,
  method: Buffer,
  body: Buffer,
  frameMax: number,
  properties: BasicProperties = {},
): Buffer[] {
  const out = [frame(FRAME_METHOD, channel, method), contentHeader(channel, body.length, properties)];
  const max = frameMax - 8;
  for (let off = 0; off < body.length; off += max) {
    out.push(frame(FRAME_BODY, channel, body.subarray(off, Math.min(body.length, off + max))));
  }
  return out;
}

/** A content-carrying method with its header and body frames, as one buffer. */
export function contentBytes<N extends 'basic.deliver' | 'basic.get-ok' | 'basic.return' | 'basic.publish'>(
  frameMax: number,
  channel: number,
  name: N,
  args: MethodInputByName[N],
  properties: BasicProperties,
  body: Buffer,
): Buffer {
  return Buffer.concat(contentFrames(channel, methodPayload(name, args), body, frameMax, properties));
}

/** A field table's bytes (length prefix included), for hand-made malformed tables. */
export function tableBytes(table: FieldTable): Buffer {
  const w = new Writer(256);
  w.table(table);
  return Buffer.from(w.buf.subarray(0, w.pos));
}

// ------------------------------------------------------------------------------------- decoding

/** One frame received from the client, decoded as far as the codec goes. */
export interface ReceivedFrame {
  type: number;
  channel: number;
  /** The frame payload. */
  payload: Buffer;
  /** For a method frame whose method is known. */
  method?: AMQPMethod;
  /** For a method frame that failed to decode. */
  methodError?: Error;
  /** For a content header frame. */
  header?: { classId: number; bodySize: number; properties: BasicProperties };
}

/** Decodes a frame's payload; what does not decode is left as bytes (and `methodError`), never thrown. */
export function decodeFrame(type: number, channel: number, payload: Buffer): ReceivedFrame {
  const frame: ReceivedFrame = { type, channel, payload };
  if (type === FRAME_METHOD) {
    try {
      const m = decodeMethod(new Reader(payload, 0, payload.length));
      if (m !== undefined) frame.method = m;
    } catch (err) {
      frame.methodError = err instanceof Error ? err : new Error(String(err));
    }
  } else if (type === FRAME_HEADER) {
    try {
      const { bodySize, properties, decodeError } = decodeContentHeader(new Reader(payload, 0, payload.length));
      if (decodeError === undefined) frame.header = { classId: BASIC_CLASS_ID, bodySize, properties };
    } catch {
      // left undecoded; the script sees the raw payload
    }
  }
  return frame;
}

export function describeFrame(f: ReceivedFrame): string {
  switch (f.type) {
    case FRAME_METHOD:
      return f.method
        ? `${f.method.name} on channel ${f.channel}`
        : `undecodable method frame on channel ${f.channel} (${f.methodError?.message ?? 'unknown method id'})`;
    case FRAME_HEADER:
      return `content header (body ${f.header?.bodySize ?? '?'} B) on channel ${f.channel}`;
    case FRAME_BODY:
      return `body frame of ${f.payload.length} B on channel ${f.channel}`;
    case FRAME_HEARTBEAT:
      return 'heartbeat';
    default:
      return `frame of type ${f.type} on channel ${f.channel}`;
  }
}

// -------------------------------------------------------------------------------------- answers

/** Capabilities RabbitMQ 3.10 announces in connection.start. */
export const RABBITMQ_CAPABILITIES: FieldTable = {
  publisher_confirms: true,
  exchange_exchange_bindings: true,
  'basic.nack': true,
  consumer_cancel_notify: true,
  'connection.blocked': true,
  consumer_priorities: true,
  authentication_failure_close: true,
  per_consumer_qos: true,
  direct_reply_to: true,
};

/** Server properties like RabbitMQ 3.10's. */
export function rabbitServerProperties(): FieldTable {
  return {
    capabilities: { ...RABBITMQ_CAPABILITIES },
    cluster_name: 'rabbit@fake-server',
    copyright: 'Copyright (c) 2007-2022 VMware, Inc. or its affiliates.',
    information: 'Licensed under the MPL 2.0. Website: https://rabbitmq.com',
    platform: 'Erlang/OTP 24.3.4',
    product: 'RabbitMQ',
    version: '3.10.0',
  };
}

/** A method to send back: its name and arguments. */
export type Reply = { [N in MethodName]: [N, MethodInputByName[N]] }[MethodName];

/** The method frame of a reply. */
export function replyFrame(channel: number, [name, args]: Reply): Buffer {
  // `Reply` pairs each name with its own arguments; the cast only forgets that pairing.
  return methodFrame(channel, name as MethodName, args as MethodInputByName[MethodName]);
}

/**
 * What an ordinary broker answers to a method on an open channel: channel.open/close,
 * confirm.select, basic.qos, queue.declare (server-named as amq.gen-fake), basic.consume (tagged by
 * `consumerTag` when the client asks for none), basic.cancel (unless nowait), basic.recover and
 * basic.get (always empty). Undefined for anything else (connection methods included: each fake
 * broker plays the handshake its own way).
 */
export function ordinaryReply(m: AMQPMethod, consumerTag: () => string): Reply | undefined {
  switch (m.name) {
    case 'channel.open':
      return ['channel.open-ok', {}];
    case 'channel.close':
      return ['channel.close-ok', {}];
    case 'confirm.select':
      return ['confirm.select-ok', {}];
    case 'basic.qos':
      return ['basic.qos-ok', {}];
    case 'queue.declare':
      return ['queue.declare-ok', { queue: m.args.queue || 'amq.gen-fake', messageCount: 0, consumerCount: 0 }];
    case 'basic.consume':
      return ['basic.consume-ok', { consumerTag: m.args.consumerTag || consumerTag() }];
    case 'basic.cancel':
      return m.args.nowait ? undefined : ['basic.cancel-ok', { consumerTag: m.args.consumerTag }];
    case 'basic.recover':
      return ['basic.recover-ok', {}];
    case 'basic.get':
      return ['basic.get-empty', {}];
    default:
      return undefined;
  }
}
