/**
 * What the connection fuzzer feeds a live connection: a prefix of valid broker traffic (deliveries
 * split over body frames, confirms, returns, flow, blocked, cancels, heartbeats) followed by one fault,
 * each fault paired with the outcome the AMQP 0-9-1 spec prescribes for it.
 *
 * @module
 */
import fc from 'fast-check';
import {
  FRAME_BODY,
  FRAME_END,
  FRAME_HEADER,
  FRAME_HEARTBEAT,
  FRAME_METHOD,
} from '../../src/protocol/generated/constants.js';
import { METHOD_NAMES, type MethodInputByName, type MethodName } from '../../src/protocol/generated/methods.js';
import type { BasicProperties } from '../../src/protocol/generated/properties.js';
import type { FieldTable } from '../../src/protocol/field-values.js';
import { MAX_HEADER_FRAME_SIZE as MAX_HEADER_FRAME } from '../../src/protocol/frame-decoder.js';
import { contentFrames, frame, headerPayload, methodFrame, methodPayload, tableBytes } from '../support/frames.js';

/** The channels the fuzzed connection has open when the injected traffic starts. */
export const CONSUMER_CHANNEL = 1;
export const CONFIRM_CHANNEL = 2;
/** A spare channel the broker may close in the valid prefix. */
export const SPARE_CHANNEL = 3;
/** Highest channel id in use: frames for ids above it are for channels never opened. */
export const LAST_CHANNEL = 3;
export const CONSUMER_TAG = 'ctag-fuzz';
/** Mandatory publishes waiting for confirms on CONFIRM_CHANNEL when the injected traffic starts. */
export const PUBLISHED = 4;
export const EXCHANGE = 'fx';
export const ROUTING_KEY = 'rk';

/** The spec's connection-exception codes a malformed input may end in. */
export const SPEC_CODES: readonly number[] = [501, 502, 503, 504, 505];

/**
 * What must happen:
 * - `codes`: the client closes the connection with a FrameError carrying one of these reply codes
 *   and sends connection.close with that code;
 * - `open`: the connection stays open and usable;
 * - `any`: a FrameError with a spec code, a connection.close obeyed, the end of the stream if the
 *   bytes stop mid-frame, or still open and usable (random bytes and mutations may be harmless).
 */
export type Expect = { kind: 'codes'; codes: readonly number[] } | { kind: 'open' } | { kind: 'any' };

/** Bytes for the connection, frame by frame. */
export interface Built {
  frames: Buffer[];
  expect: Expect;
  /** The stream stops mid-frame on purpose; the broker then ends the socket. */
  truncated: boolean;
  /** What the fault was, for failure messages. */
  label: string;
  /**
   * Messages the consumer must receive with `decodeError` set (their properties cannot be decoded
   * but their framing is intact): the connection goes on.
   */
  decodeErrors?: number;
}

// ------------------------------------------------------------------------------- valid traffic

export type Event =
  | { kind: 'heartbeat' }
  | { kind: 'blocked'; reason: string }
  | { kind: 'unblocked' }
  | { kind: 'deliver'; channel: number; ours: boolean; bodySize: number; fill: number; properties: BasicProperties }
  | { kind: 'confirm'; ack: boolean; tag: number; multiple: boolean }
  | { kind: 'flow'; channel: number; active: boolean }
  | { kind: 'return'; bodySize: number; fill: number }
  | { kind: 'cancel' }
  | { kind: 'closeSpare' };

const shortText = fc.string({ maxLength: 12 });

const fieldTableArb: fc.Arbitrary<FieldTable> = fc.dictionary(
  fc.string({ minLength: 1, maxLength: 8 }),
  fc.oneof(
    fc.integer(),
    fc.boolean(),
    fc.string({ maxLength: 16 }),
    fc.constant(null),
    fc.array(fc.integer(), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 2 }),
  ),
  { maxKeys: 4 },
);

const propertiesArb: fc.Arbitrary<BasicProperties> = fc.record(
  {
    contentType: shortText,
    headers: fieldTableArb,
    deliveryMode: fc.constantFrom(1, 2),
    priority: fc.integer({ min: 0, max: 9 }),
    correlationId: shortText,
    messageId: shortText,
    timestamp: fc.integer({ min: 0, max: 4_000_000_000 }).map((s) => new Date(s * 1000)),
  },
  { requiredKeys: [] },
);

export function eventArb(frameMax: number): fc.Arbitrary<Event> {
  const bodySize = fc.oneof(
    { arbitrary: fc.integer({ min: 0, max: 64 }), weight: 12 },
    { arbitrary: fc.integer({ min: 0, max: 3 * frameMax }), weight: 1 },
  );
  return fc.oneof(
    { arbitrary: fc.constant<Event>({ kind: 'heartbeat' }), weight: 2 },
    { arbitrary: shortText.map((reason): Event => ({ kind: 'blocked', reason })), weight: 1 },
    { arbitrary: fc.constant<Event>({ kind: 'unblocked' }), weight: 1 },
    {
      arbitrary: fc.record({
        kind: fc.constant('deliver' as const),
        channel: fc.constantFrom(CONSUMER_CHANNEL, CONSUMER_CHANNEL, CONFIRM_CHANNEL),
        ours: fc.boolean(),
        bodySize,
        fill: fc.integer({ min: 0, max: 255 }),
        properties: propertiesArb,
      }),
      weight: 8,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('confirm' as const),
        ack: fc.boolean(),
        tag: fc.integer({ min: 0, max: PUBLISHED + 2 }),
        multiple: fc.boolean(),
      }),
      weight: 3,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('flow' as const),
        channel: fc.constantFrom(CONSUMER_CHANNEL, CONFIRM_CHANNEL),
        active: fc.boolean(),
      }),
      weight: 1,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('return' as const),
        bodySize,
        fill: fc.integer({ min: 0, max: 255 }),
      }),
      weight: 1,
    },
    { arbitrary: fc.constant<Event>({ kind: 'cancel' }), weight: 1 },
    { arbitrary: fc.constant<Event>({ kind: 'closeSpare' }), weight: 1 },
  );
}

/** Turns events into frames; delivery tags count up as a broker's would. */
export function eventFrames(events: readonly Event[], frameMax: number): Buffer[] {
  const out: Buffer[] = [];
  let deliveryTag = 0;
  for (const e of events) {
    switch (e.kind) {
      case 'heartbeat':
        out.push(frame(FRAME_HEARTBEAT, 0, Buffer.alloc(0)));
        break;
      case 'blocked':
        out.push(methodFrame(0, 'connection.blocked', { reason: e.reason }));
        break;
      case 'unblocked':
        out.push(methodFrame(0, 'connection.unblocked', {}));
        break;
      case 'deliver': {
        deliveryTag++;
        const method = methodPayload('basic.deliver', {
          consumerTag: e.ours ? CONSUMER_TAG : 'someone-else',
          deliveryTag,
          redelivered: (e.fill & 1) === 1,
          exchange: EXCHANGE,
          routingKey: ROUTING_KEY,
        });
        out.push(...contentFrames(e.channel, method, Buffer.alloc(e.bodySize, e.fill), frameMax, e.properties));
        break;
      }
      case 'confirm':
        out.push(
          e.ack
            ? methodFrame(CONFIRM_CHANNEL, 'basic.ack', { deliveryTag: e.tag, multiple: e.multiple })
            : methodFrame(CONFIRM_CHANNEL, 'basic.nack', { deliveryTag: e.tag, multiple: e.multiple, requeue: false }),
        );
        break;
      case 'flow':
        out.push(methodFrame(e.channel, 'channel.flow', { active: e.active }));
        break;
      case 'return': {
        const method = methodPayload('basic.return', {
          replyCode: 312,
          replyText: 'NO_ROUTE',
          exchange: EXCHANGE,
          routingKey: ROUTING_KEY,
        });
        out.push(...contentFrames(CONFIRM_CHANNEL, method, Buffer.alloc(e.bodySize, e.fill), frameMax));
        break;
      }
      case 'cancel':
        out.push(methodFrame(CONSUMER_CHANNEL, 'basic.cancel', { consumerTag: CONSUMER_TAG, nowait: false }));
        break;
      case 'closeSpare':
        out.push(
          methodFrame(SPARE_CHANNEL, 'channel.close', {
            replyCode: 406,
            replyText: 'PRECONDITION_FAILED',
            classId: 50,
            methodId: 10,
          }),
        );
        break;
    }
  }
  return out;
}

// ------------------------------------------------------------------------------- method pools

type AnyMethod = { [N in MethodName]: { name: N; args: MethodInputByName[N] } }[MethodName];
const m = <N extends MethodName>(name: N, args: MethodInputByName[N]): AnyMethod => ({ name, args }) as AnyMethod;

/**
 * Methods that a client never expects unless it asked for them (replies to calls it did not make,
 * methods only a client sends, handshake methods after the handshake). On an open channel with no
 * call in flight, or on channel 0 after the handshake, each is an unexpected frame (505).
 */
export const UNSOLICITED_ON_CHANNEL: readonly AnyMethod[] = [
  m('channel.open-ok', {}),
  // (channel.close-ok is not here: a broker answers a channel.close that crossed its own with close-ok,
  // which may reach a later channel with the same id, so a stray one is ignored.)
  m('channel.flow-ok', { active: true }),
  m('access.request-ok', {}),
  m('exchange.declare-ok', {}),
  m('exchange.delete-ok', {}),
  m('exchange.bind-ok', {}),
  m('exchange.unbind-ok', {}),
  m('queue.declare-ok', { queue: 'q', messageCount: 0, consumerCount: 0 }),
  m('queue.bind-ok', {}),
  m('queue.purge-ok', { messageCount: 3 }),
  m('queue.delete-ok', { messageCount: 3 }),
  m('queue.unbind-ok', {}),
  m('basic.qos-ok', {}),
  m('basic.consume-ok', { consumerTag: 'stray' }),
  m('basic.cancel-ok', { consumerTag: CONSUMER_TAG }),
  m('basic.get-empty', {}),
  m('basic.recover-ok', {}),
  m('tx.select-ok', {}),
  m('tx.commit-ok', {}),
  m('tx.rollback-ok', {}),
  m('confirm.select-ok', {}),
  m('channel.open', {}),
  m('queue.declare', { queue: 'q' }),
  m('basic.get', { queue: 'q' }),
  m('basic.reject', { deliveryTag: 1, requeue: true }),
  m('basic.recover-async', { requeue: true }),
  m('basic.qos', { prefetchCount: 1, prefetchSize: 0, global: false }),
];

export const UNSOLICITED_ON_ZERO: readonly AnyMethod[] = [
  m('connection.start', { serverProperties: {}, mechanisms: 'PLAIN', locales: 'en_US' }),
  m('connection.secure', { challenge: Buffer.from('x') }),
  m('connection.tune', { channelMax: 0, frameMax: 0, heartbeat: 0 }),
  m('connection.open-ok', {}),
  m('connection.close-ok', {}),
  m('connection.update-secret-ok', {}),
  m('connection.start-ok', { clientProperties: {}, mechanism: 'PLAIN', response: 'x', locale: 'en_US' }),
  m('connection.open', { virtualHost: '/' }),
  m('channel.open-ok', {}),
  m('basic.qos-ok', {}),
];

/** Methods of the connection class, which belong on channel 0 only (503 elsewhere). */
export const CONNECTION_CLASS: readonly AnyMethod[] = [
  m('connection.blocked', { reason: 'low on memory' }),
  m('connection.unblocked', {}),
  m('connection.close', { replyCode: 320, replyText: 'CONNECTION_FORCED', classId: 0, methodId: 0 }),
  m('connection.start', { serverProperties: {} }),
  m('connection.tune', {}),
];

/** Methods a broker legitimately sends, for truncation and trailing-garbage faults. */
export const WELL_FORMED: readonly AnyMethod[] = [
  ...UNSOLICITED_ON_CHANNEL,
  ...UNSOLICITED_ON_ZERO,
  ...CONNECTION_CLASS,
  m('basic.deliver', { consumerTag: CONSUMER_TAG, deliveryTag: 7, exchange: EXCHANGE, routingKey: ROUTING_KEY }),
  m('basic.ack', { deliveryTag: 1, multiple: false }),
  m('basic.nack', { deliveryTag: 1, multiple: true, requeue: false }),
  m('basic.cancel', { consumerTag: CONSUMER_TAG }),
  m('channel.flow', { active: false }),
  m('channel.close', { replyCode: 404, replyText: 'NOT_FOUND', classId: 50, methodId: 10 }),
  m('basic.return', { replyCode: 312, exchange: EXCHANGE, routingKey: ROUTING_KEY }),
  m('basic.get-ok', { deliveryTag: 1, exchange: EXCHANGE, routingKey: ROUTING_KEY, messageCount: 0 }),
];

function encode(method: AnyMethod): Buffer {
  return methodPayload(method.name, method.args as never);
}

const KNOWN_IDS = new Set(METHOD_NAMES.keys());

// ------------------------------------------------------------------------------- faults

export type Fault =
  | { kind: 'none' }
  | { kind: 'badFrameEnd'; event: Event; end: number }
  | { kind: 'unknownType'; type: number; channel: number; payload: Uint8Array }
  | { kind: 'oversize'; type: number; channel: number; size: number; tail: Uint8Array }
  | { kind: 'heartbeatChannel'; channel: number }
  | { kind: 'heartbeatPayload'; payload: Uint8Array }
  | { kind: 'headerWithoutMethod'; channel: number; bodySize: number }
  | { kind: 'bodyWithoutHeader'; channel: number; afterMethod: boolean; size: number }
  | { kind: 'methodDuringContent'; channel: number; beforeHeader: boolean; method: number }
  | { kind: 'bodyTooLong'; channel: number; bodySize: number; extra: number; split: boolean }
  | { kind: 'headerWrongClass'; channel: number; classId: number }
  | { kind: 'contentOnZero'; type: number; payload: Uint8Array }
  | { kind: 'unopenedChannel'; channel: number; what: 'method' | 'header' | 'body' }
  | { kind: 'connectionMethodOnChannel'; channel: number; method: number }
  | { kind: 'unknownMethod'; channel: number; classId: number; methodId: number; args: Uint8Array }
  | { kind: 'unsolicited'; onZero: boolean; channel: number; method: number }
  | { kind: 'getOkWithoutGet'; bodySize: number }
  | { kind: 'truncatedArgs'; channel: number; method: number; keep: number }
  | { kind: 'trailingGarbage'; channel: number; method: number; garbage: Uint8Array }
  | { kind: 'badTable'; how: 'tag' | 'length' | 'inner' | 'shortstr'; tag: number; over: number }
  | { kind: 'badStartTable'; over: number }
  | { kind: 'truncatedFrame'; event: Event; keep: number }
  | { kind: 'randomBytes'; bytes: Uint8Array }
  | { kind: 'mutated'; event: Event; edits: { at: number; value: number }[] };

const VALID_TYPES = new Set([FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT]);
const openChannel = fc.constantFrom(CONSUMER_CHANNEL, CONFIRM_CHANNEL);

export function faultArb(frameMax: number): fc.Arbitrary<Fault> {
  const event = eventArb(frameMax);
  const bytes = (max: number) => fc.uint8Array({ maxLength: max });
  return fc.oneof(
    { arbitrary: fc.constant<Fault>({ kind: 'none' }), weight: 2 },
    {
      arbitrary: fc.record({
        kind: fc.constant('badFrameEnd' as const),
        event,
        end: fc.integer({ min: 0, max: 255 }).filter((b) => b !== FRAME_END),
      }),
      weight: 2,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('unknownType' as const),
        type: fc.integer({ min: 0, max: 255 }).filter((t) => !VALID_TYPES.has(t)),
        channel: fc.integer({ min: 0, max: 65535 }),
        payload: bytes(16),
      }),
      weight: 2,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('oversize' as const),
        type: fc.constantFrom(FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT),
        channel: fc.constantFrom(0, CONSUMER_CHANNEL, CONFIRM_CHANNEL),
        size: fc.oneof(
          fc.constantFrom(0xffffffff, 0xfffffff8, 0x80000000, frameMax - 7, frameMax, MAX_HEADER_FRAME - 7),
          fc.integer({ min: frameMax - 7, max: 0xffffffff }),
        ),
        tail: bytes(64),
      }),
      weight: 3,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('heartbeatChannel' as const),
        channel: fc.integer({ min: 1, max: 65535 }),
      }),
      weight: 1,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('heartbeatPayload' as const),
        payload: fc.uint8Array({ minLength: 1, maxLength: 8 }),
      }),
      weight: 1,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('headerWithoutMethod' as const),
        channel: openChannel,
        bodySize: fc.integer({ min: 0, max: 100 }),
      }),
      weight: 2,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('bodyWithoutHeader' as const),
        channel: openChannel,
        afterMethod: fc.boolean(),
        size: fc.integer({ min: 0, max: 100 }),
      }),
      weight: 2,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('methodDuringContent' as const),
        channel: openChannel,
        beforeHeader: fc.boolean(),
        method: fc.nat(),
      }),
      weight: 2,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('bodyTooLong' as const),
        channel: openChannel,
        bodySize: fc.integer({ min: 0, max: 2 * frameMax }),
        extra: fc.integer({ min: 1, max: 64 }),
        split: fc.boolean(),
      }),
      weight: 2,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('headerWrongClass' as const),
        channel: openChannel,
        classId: fc.integer({ min: 0, max: 65535 }).filter((c) => c !== 60),
      }),
      weight: 1,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('contentOnZero' as const),
        type: fc.constantFrom(FRAME_HEADER, FRAME_BODY),
        payload: bytes(32),
      }),
      weight: 1,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('unopenedChannel' as const),
        channel: fc.integer({ min: LAST_CHANNEL + 1, max: 65535 }),
        what: fc.constantFrom('method' as const, 'header' as const, 'body' as const),
      }),
      weight: 2,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('connectionMethodOnChannel' as const),
        channel: fc.integer({ min: 1, max: 65535 }),
        method: fc.nat(),
      }),
      weight: 1,
    },
    {
      arbitrary: fc
        .record({
          kind: fc.constant('unknownMethod' as const),
          channel: fc.constantFrom(0, CONSUMER_CHANNEL, CONFIRM_CHANNEL),
          classId: fc.oneof(fc.constantFrom(10, 20, 40, 50, 60, 85, 90), fc.integer({ min: 0, max: 65535 })),
          methodId: fc.integer({ min: 0, max: 65535 }),
          args: bytes(16),
        })
        .filter((f) => !KNOWN_IDS.has(f.classId * 65536 + f.methodId)),
      weight: 2,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('unsolicited' as const),
        onZero: fc.boolean(),
        channel: openChannel,
        method: fc.nat(),
      }),
      weight: 4,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('getOkWithoutGet' as const),
        bodySize: fc.integer({ min: 0, max: 32 }),
      }),
      weight: 1,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('truncatedArgs' as const),
        channel: fc.constantFrom(0, CONSUMER_CHANNEL, CONFIRM_CHANNEL),
        method: fc.nat(),
        keep: fc.nat(),
      }),
      weight: 3,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('trailingGarbage' as const),
        channel: fc.constantFrom(0, CONSUMER_CHANNEL, CONFIRM_CHANNEL),
        method: fc.nat(),
        garbage: fc.uint8Array({ minLength: 1, maxLength: 16 }),
      }),
      weight: 2,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('badTable' as const),
        how: fc.constantFrom('tag' as const, 'length' as const, 'inner' as const, 'shortstr' as const),
        tag: fc.integer({ min: 0, max: 255 }).filter((t) => !'tbBsuIilfdDSxATFV'.includes(String.fromCharCode(t))),
        // At least 4: a shorter inner string would still end inside the 3 spare bytes of the table.
        over: fc.integer({ min: 4, max: 0xffff }),
      }),
      weight: 3,
    },
    {
      arbitrary: fc.record({ kind: fc.constant('badStartTable' as const), over: fc.integer({ min: 1, max: 1000 }) }),
      weight: 1,
    },
    {
      arbitrary: fc.record({ kind: fc.constant('truncatedFrame' as const), event, keep: fc.nat() }),
      weight: 2,
    },
    { arbitrary: fc.record({ kind: fc.constant('randomBytes' as const), bytes: bytes(256) }), weight: 3 },
    {
      arbitrary: fc.record({
        kind: fc.constant('mutated' as const),
        event,
        edits: fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), {
          minLength: 1,
          maxLength: 4,
        }),
      }),
      weight: 4,
    },
  );
}

const pick = <T>(list: readonly T[], n: number): T => list[n % list.length]!;
const codes = (...c: number[]): Expect => ({ kind: 'codes', codes: c });
const buf = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

function deliverMethod(deliveryTag = 999): Buffer {
  return methodPayload('basic.deliver', {
    consumerTag: CONSUMER_TAG,
    deliveryTag,
    exchange: EXCHANGE,
    routingKey: ROUTING_KEY,
  });
}

/** The frames of a fault and what they must lead to. */
export function buildFault(f: Fault, frameMax: number): Built {
  const one = (frames: Buffer[], expect: Expect, label: string = f.kind, decodeErrors?: number): Built => ({
    frames,
    expect,
    truncated: false,
    label,
    ...(decodeErrors === undefined ? {} : { decodeErrors }),
  });
  switch (f.kind) {
    case 'none':
      return one([], { kind: 'open' });
    case 'badFrameEnd': {
      const frames = eventFrames([f.event], frameMax);
      const last = Buffer.from(frames[frames.length - 1]!);
      last[last.length - 1] = f.end;
      frames[frames.length - 1] = last;
      return one(frames, codes(501));
    }
    case 'unknownType':
      return one([frame(f.type, f.channel, buf(f.payload))], codes(501));
    case 'oversize': {
      // Only the header and a few bytes are sent: the size alone must be refused, before any allocation.
      const head = Buffer.alloc(7);
      head[0] = f.type;
      head.writeUInt16BE(f.channel, 1);
      head.writeUInt32BE(f.size, 3);
      if (f.type === FRAME_HEADER && f.size + 8 <= Math.max(frameMax, MAX_HEADER_FRAME)) {
        // A content header may exceed frame-max (none can be split) up to a bound: no fault, the
        // client waits for the rest, and the stream ends mid-frame.
        return {
          frames: [Buffer.concat([head, buf(f.tail)])],
          expect: { kind: 'any' },
          truncated: true,
          label: `oversize content header ${f.size}`,
        };
      }
      return one([Buffer.concat([head, buf(f.tail)])], codes(501), `oversize ${f.size}`);
    }
    case 'heartbeatChannel':
      return one([frame(FRAME_HEARTBEAT, f.channel, Buffer.alloc(0))], codes(501));
    case 'heartbeatPayload':
      return one([frame(FRAME_HEARTBEAT, 0, buf(f.payload))], codes(501));
    case 'headerWithoutMethod':
      return one([frame(FRAME_HEADER, f.channel, headerPayload(f.bodySize))], codes(505));
    case 'bodyWithoutHeader': {
      const frames = f.afterMethod ? [frame(FRAME_METHOD, f.channel, deliverMethod())] : [];
      frames.push(frame(FRAME_BODY, f.channel, Buffer.alloc(f.size, 7)));
      return one(frames, codes(505));
    }
    case 'methodDuringContent': {
      const frames = [frame(FRAME_METHOD, f.channel, deliverMethod())];
      if (!f.beforeHeader) frames.push(frame(FRAME_HEADER, f.channel, headerPayload(10)));
      // Any method on the same channel interrupts the content.
      frames.push(frame(FRAME_METHOD, f.channel, encode(pick(WELL_FORMED.filter(onChannel), f.method))));
      return one(frames, codes(505));
    }
    case 'bodyTooLong': {
      const frames = [
        frame(FRAME_METHOD, f.channel, deliverMethod()),
        frame(FRAME_HEADER, f.channel, headerPayload(f.bodySize)),
      ];
      const body = Buffer.alloc(f.bodySize + f.extra, 1);
      const max = frameMax - 8;
      // One frame too long, or legal-sized frames whose sum exceeds the announced size.
      const step = f.split ? Math.max(1, Math.min(max, Math.ceil(body.length / 2))) : max;
      for (let off = 0; off < body.length; off += step) {
        frames.push(frame(FRAME_BODY, f.channel, body.subarray(off, Math.min(body.length, off + step))));
      }
      // A body of exactly 0 bytes is complete with the header; what follows is a body without a header.
      return one(frames, codes(505));
    }
    case 'headerWrongClass':
      return one(
        [
          frame(FRAME_METHOD, f.channel, deliverMethod()),
          frame(FRAME_HEADER, f.channel, headerPayload(4, {}, f.classId)),
        ],
        codes(505),
      );
    case 'contentOnZero':
      return one([frame(f.type, 0, buf(f.payload))], codes(505));
    case 'unopenedChannel': {
      const payload =
        f.what === 'method' ? deliverMethod() : f.what === 'header' ? headerPayload(3) : Buffer.from([1, 2, 3]);
      const type = f.what === 'method' ? FRAME_METHOD : f.what === 'header' ? FRAME_HEADER : FRAME_BODY;
      return one([frame(type, f.channel, payload)], codes(504));
    }
    case 'connectionMethodOnChannel':
      return one([frame(FRAME_METHOD, f.channel, encode(pick(CONNECTION_CLASS, f.method)))], codes(503));
    case 'unknownMethod': {
      const payload = Buffer.alloc(4 + f.args.length);
      payload.writeUInt16BE(f.classId, 0);
      payload.writeUInt16BE(f.methodId, 2);
      Buffer.from(f.args).copy(payload, 4);
      return one([frame(FRAME_METHOD, f.channel, payload)], codes(503));
    }
    case 'unsolicited': {
      const method = f.onZero ? pick(UNSOLICITED_ON_ZERO, f.method) : pick(UNSOLICITED_ON_CHANNEL, f.method);
      return one(
        [frame(FRAME_METHOD, f.onZero ? 0 : f.channel, encode(method))],
        codes(505),
        `unsolicited ${method.name}`,
      );
    }
    case 'getOkWithoutGet': {
      const method = methodPayload('basic.get-ok', {
        deliveryTag: 1,
        exchange: EXCHANGE,
        routingKey: ROUTING_KEY,
        messageCount: 0,
      });
      return one(contentFrames(CONSUMER_CHANNEL, method, Buffer.alloc(f.bodySize), frameMax), codes(505));
    }
    case 'truncatedArgs': {
      const method = pick(WELL_FORMED, f.method);
      const payload = encode(method);
      const keep = f.keep % payload.length; // a strict prefix
      return one(
        [frame(FRAME_METHOD, f.channel, payload.subarray(0, keep))],
        codes(502),
        `${method.name} cut to ${keep}/${payload.length}`,
      );
    }
    case 'trailingGarbage': {
      const method = pick(WELL_FORMED, f.method);
      return one(
        [frame(FRAME_METHOD, f.channel, Buffer.concat([encode(method), buf(f.garbage)]))],
        codes(502),
        `${method.name} + ${f.garbage.length} B`,
      );
    }
    case 'badTable': {
      // A content header whose headers table is malformed. Its body size is read before the table,
      // so the message is assembled anyway: it alone carries the error, the connection goes on.
      const good = tableBytes({ a: 1, b: 'text' });
      let table: Buffer;
      if (f.how === 'tag') {
        // key 'k' with a type tag no AMQP table uses
        table = Buffer.concat([Buffer.from([0, 0, 0, 3, 1, 0x6b, f.tag])]);
      } else if (f.how === 'length') {
        table = Buffer.from(good);
        table.writeUInt32BE(good.length - 4 + f.over, 0); // longer than the frame
      } else if (f.how === 'inner') {
        // a long string inside the table that claims to run past the table's end
        table = Buffer.from([0, 0, 0, 10, 1, 0x6b, 0x53, 0, 0, 0, 0, 0, 0, 0]);
        table.writeUInt32BE(f.over, 7);
      } else {
        // a key whose short-string length runs past the table
        table = Buffer.from([0, 0, 0, 2, Math.min(255, 2 + f.over), 0x6b]);
      }
      const header = Buffer.alloc(14);
      header.writeUInt16BE(60, 0);
      header.writeUInt32BE(0, 4);
      header.writeUInt32BE(3, 8);
      header.writeUInt16BE(0x2000, 12); // headers present
      return one(
        [
          frame(FRAME_METHOD, CONSUMER_CHANNEL, deliverMethod()),
          frame(FRAME_HEADER, CONSUMER_CHANNEL, Buffer.concat([header, table])),
          frame(FRAME_BODY, CONSUMER_CHANNEL, Buffer.from('abc')),
        ],
        { kind: 'open' },
        `badTable ${f.how}`,
        1,
      );
    }
    case 'badStartTable': {
      // connection.start is out of order here, but its table is decoded (and rejected) first.
      const payload = encode(m('connection.start', { serverProperties: { product: 'x' } }));
      payload.writeUInt32BE(payload.readUInt32BE(6) + f.over, 6);
      return one([frame(FRAME_METHOD, 0, payload)], codes(502));
    }
    case 'truncatedFrame': {
      const frames = eventFrames([f.event], frameMax);
      const all = Buffer.concat(frames);
      const keep = f.keep % all.length;
      // Cut inside the last frame so the stream ends mid-frame.
      const lastStart = all.length - frames[frames.length - 1]!.length;
      const cut = lastStart + (keep % frames[frames.length - 1]!.length);
      return { frames: [all.subarray(0, cut)], expect: { kind: 'any' }, truncated: true, label: 'truncatedFrame' };
    }
    case 'randomBytes':
      return one([buf(f.bytes)], { kind: 'any' });
    case 'mutated': {
      const frames = eventFrames([f.event], frameMax);
      const all = Buffer.from(Buffer.concat(frames));
      for (const e of f.edits) all[e.at % all.length] = e.value;
      return one([all], { kind: 'any' }, `mutated ${f.event.kind}`);
    }
  }
}

function onChannel(method: AnyMethod): boolean {
  return !method.name.startsWith('connection.');
}
