/**
 * Fuzzes the frame reader and the connection/channel state machine of a real `Connection` over an
 * in-memory socket: after the handshake, a consumer on channel 1, confirm mode with mandatory publishes
 * in flight on channel 2 and a spare channel 3, the broker side sends a random prefix of valid traffic
 * (deliveries split over body frames, confirms, returns, flow, blocked, cancel, heartbeats) and then one
 * fault — random bytes, mutated frames, truncated frames, a wrong frame-end, frames for channels never
 * opened, methods out of order, content headers and bodies without a method, bodies longer than
 * announced, field tables with unknown type tags or lengths past the end, frame sizes up to 2^32 − 1 —
 * all cut into random socket chunks. Also the handshake itself is fuzzed.
 *
 * Every case must end as the spec says: a `FrameError` with the prescribed reply code, sent to the peer
 * in connection.close (and nothing after it); or, for harmless input, a connection that still works.
 * A message whose properties cannot be decoded (a bad header table) is no connection error: it is
 * handed to its consumer with `decodeError` set, and the connection goes on.
 * Never an uncaught exception, an unhandled rejection, a promise left pending, a hang, or a read buffer
 * beyond frame-max.
 *
 *   npm run fuzz                                  1,000,000 frames
 *   WARREN_FUZZ_FRAMES=50000 node --import tsx --test test/fuzz/connection.test.ts
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import fc from 'fast-check';
import { Connection } from '../../src/connect.js';
import {
  type AMQPError,
  ConnectionClosedByServer,
  ConnectionError,
  FrameError,
  SocketError,
} from '../../src/errors.js';
import { FRAME_METHOD } from '../../src/protocol/generated/constants.js';
import {
  buildFault,
  CONSUMER_TAG,
  EXCHANGE,
  type Event,
  eventArb,
  eventFrames,
  type Fault,
  faultArb,
  PUBLISHED,
  ROUTING_KEY,
  SPEC_CODES,
} from './cases.js';
import { MemoryBroker } from './memory-broker.js';
import { cut, describe, runBatches, settings, Watch } from './run.js';
import { within } from '../support/wait.js';
import { frame, methodPayload } from '../support/frames.js';

/** Frames in CI: about 10 s of CPU. */
const CI_FRAMES = 100_000;
const s = settings(CI_FRAMES, 60);
/** A hung case fails after this long (generous: the machine is shared). */
const CASE_TIMEOUT_MS = 10_000;

let framesFed = 0;
/** How often each fault kind ran, and how each run ended: for the report and the coverage check. */
const faultsRun = new Map<string, number>();
const endings = new Map<string, number>();
const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
const FAULT_KINDS: readonly Fault['kind'][] = [
  'none',
  'badFrameEnd',
  'unknownType',
  'oversize',
  'heartbeatChannel',
  'heartbeatPayload',
  'headerWithoutMethod',
  'bodyWithoutHeader',
  'methodDuringContent',
  'bodyTooLong',
  'headerWrongClass',
  'contentOnZero',
  'unopenedChannel',
  'connectionMethodOnChannel',
  'unknownMethod',
  'unsolicited',
  'getOkWithoutGet',
  'truncatedArgs',
  'trailingGarbage',
  'badTable',
  'badStartTable',
  'truncatedFrame',
  'randomBytes',
  'mutated',
];

/** Remembers whether a promise settled, without leaving a rejection unhandled. */
function track<T>(promise: Promise<T>, into: { settled: boolean }[]): void {
  const state = { settled: false };
  into.push(state);
  promise.then(
    () => {
      state.settled = true;
    },
    () => {
      state.settled = true;
    },
  );
}

interface Case {
  frameMax: number;
  events: Event[];
  fault: Fault;
  cuts: number[];
}

const caseArb: fc.Arbitrary<Case> = fc.constantFrom(4096, 8192, 131072).chain((frameMax) =>
  fc.record({
    frameMax: fc.constant(frameMax),
    // Short prefixes for many faults per second, long ones for many frames per handshake.
    events: fc.oneof(
      fc.array(eventArb(frameMax), { maxLength: 8 }),
      fc.array(eventArb(frameMax), { maxLength: 150, size: 'max' }),
    ),
    fault: faultArb(frameMax),
    cuts: fc.array(fc.nat(), { maxLength: 24 }),
  }),
);

function checkClosedAsPrescribed(
  reason: AMQPError | undefined,
  broker: MemoryBroker,
  allowed: readonly number[],
  label: string,
): void {
  assert.ok(reason instanceof FrameError, `${label}: expected a FrameError, got ${describe(reason)}`);
  assert.ok(
    allowed.includes(reason.replyCode),
    `${label}: reply code ${reason.replyCode} (${reason.message}) is not one of ${allowed.join('/')}`,
  );
  assert.equal(
    broker.closeFromClient?.replyCode,
    reason.replyCode,
    `${label}: the peer must receive connection.close ${reason.replyCode}`,
  );
  assert.ok(broker.closeFromClient.replyText.length > 0, `${label}: close without a reply text`);
}

async function runCase(c: Case): Promise<void> {
  const broker = new MemoryBroker({ frameMax: c.frameMax, consumerTag: CONSUMER_TAG });
  const pending: { settled: boolean }[] = [];
  let conn: Connection | undefined;
  try {
    conn = await within(Connection.overStream(broker.clientEnd, { heartbeat: 0 }), CASE_TIMEOUT_MS, 'handshake');
    assert.equal(conn.frameMax, c.frameMax);
    const ch1 = await conn.openChannel();
    let decodeErrors = 0;
    await ch1.basicConsume('q', { consumerTag: CONSUMER_TAG }, (msg) => {
      if (msg.decodeError !== undefined) {
        assert.ok(msg.decodeError instanceof FrameError);
        assert.deepEqual(msg.properties, {});
        decodeErrors++;
      }
      msg.ack();
    });
    const ch2 = await conn.openChannel();
    await ch2.confirmSelect();
    for (let i = 0; i < PUBLISHED; i++) {
      track(ch2.basicPublish(EXCHANGE, ROUTING_KEY, Buffer.from([i]), {}, { mandatory: true }), pending);
    }
    await conn.openChannel();

    const built = buildFault(c.fault, c.frameMax);
    const frames = [...eventFrames(c.events, c.frameMax), ...built.frames];
    framesFed += frames.length + broker.framesSent;
    broker.inject(cut(Buffer.concat(frames), c.cuts));
    await tick();
    assert.equal(broker.clientEnd.readableLength, 0, 'the client left bytes unread');
    const buffered = conn.transport.decoder.buffered;
    assert.ok(buffered <= c.frameMax, `the reader holds ${buffered} bytes, more than frame-max ${c.frameMax}`);
    const label = `${built.label} after ${c.events.length} events`;
    bump(faultsRun, c.fault.kind);

    let ended = false;
    if (conn.isOpen && (built.truncated || buffered > 0)) {
      // The stream stops mid-frame: the end of the socket must end the connection.
      broker.end();
      ended = true;
    }
    const stillOpen = conn.isOpen && !ended;
    if (stillOpen) {
      // Harmless input: the connection must still work (its reply comes after everything injected).
      assert.notEqual(built.expect.kind, 'codes', `${label}: expected a FrameError, the connection is still open`);
      const probe = await within(conn.openChannel(), CASE_TIMEOUT_MS, `${label}: channel.open after the fuzz`);
      assert.ok(probe.isOpen);
      if (built.decodeErrors !== undefined) {
        // After a basic.cancel of the consumer, the message goes back to the broker instead.
        const cancelled = c.events.some((e) => e.kind === 'cancel');
        assert.equal(decodeErrors, cancelled ? 0 : built.decodeErrors, `${label}: messages handed on with decodeError`);
        assert.ok(ch1.isOpen, `${label}: the channel of the undecodable message stays open`);
      }
      await within(conn.close(), CASE_TIMEOUT_MS, `${label}: close`);
      assert.equal(conn.closeReason, undefined);
    } else {
      const reason = await within(conn.closed, CASE_TIMEOUT_MS, `${label}: the connection to close`);
      if (built.expect.kind === 'codes') {
        checkClosedAsPrescribed(reason, broker, built.expect.codes, label);
      } else if (built.expect.kind === 'open') {
        assert.fail(`${label}: expected the connection to stay open, it closed: ${describe(reason)}`);
      } else if (reason instanceof FrameError) {
        checkClosedAsPrescribed(reason, broker, SPEC_CODES, label);
      } else if (reason instanceof ConnectionClosedByServer) {
        // A mutation can make a valid connection.close: the client must have answered close-ok.
        assert.ok(broker.methods.some((m) => m.method.name === 'connection.close-ok'));
      } else {
        assert.ok(ended && reason instanceof SocketError, `${label}: unexpected end: ${describe(reason)}`);
      }
    }
    const reason = conn.closeReason;
    bump(
      endings,
      stillOpen ? 'still open' : reason instanceof FrameError ? `FrameError ${reason.replyCode}` : String(reason?.name),
    );
    assert.equal(broker.framesAfterClose, 0, `${label}: the client sent frames after connection.close`);
    assert.equal(broker.clientStreamError, undefined, `${label}: the client sent invalid bytes`);
    await tick();
    const hanging = pending.filter((p) => !p.settled).length;
    assert.equal(hanging, 0, `${label}: ${hanging} publish promises never settled`);
  } finally {
    broker.destroy();
    if (conn !== undefined) await within(conn.closed, CASE_TIMEOUT_MS, 'close after destroy');
  }
}

// ------------------------------------------------------------------------------- handshake

type Step = 'start' | 'tune' | 'open-ok';
interface HandshakeCase {
  step: Step;
  how: 'random' | 'mutate' | 'truncate' | 'outOfOrder' | 'noMechanism';
  bytes: Uint8Array;
  edits: { at: number; value: number }[];
  cuts: number[];
}

const handshakeArb: fc.Arbitrary<HandshakeCase> = fc.record({
  step: fc.constantFrom('start' as const, 'tune' as const, 'open-ok' as const),
  how: fc.constantFrom(
    'random' as const,
    'mutate' as const,
    'truncate' as const,
    'outOfOrder' as const,
    'noMechanism' as const,
  ),
  bytes: fc.uint8Array({ maxLength: 64 }),
  edits: fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), {
    minLength: 1,
    maxLength: 3,
  }),
  cuts: fc.array(fc.nat(), { maxLength: 8 }),
});

function handshakeFrame(step: Step, mechanisms = 'PLAIN AMQPLAIN'): Buffer {
  if (step === 'start') {
    return frame(
      FRAME_METHOD,
      0,
      methodPayload('connection.start', { serverProperties: { product: 'fuzz' }, mechanisms, locales: 'en_US' }),
    );
  }
  if (step === 'tune') {
    return frame(FRAME_METHOD, 0, methodPayload('connection.tune', { channelMax: 16, frameMax: 4096, heartbeat: 0 }));
  }
  return frame(FRAME_METHOD, 0, methodPayload('connection.open-ok', {}));
}

const NEXT: Record<Step, Step> = { start: 'tune', tune: 'open-ok', 'open-ok': 'start' };

async function runHandshakeCase(h: HandshakeCase): Promise<void> {
  const steps: Step[] = ['start', 'tune', 'open-ok'];
  let faulty: Buffer;
  switch (h.how) {
    case 'random':
      faulty = Buffer.from(h.bytes);
      break;
    case 'mutate': {
      faulty = Buffer.from(handshakeFrame(h.step));
      for (const e of h.edits) faulty[e.at % faulty.length] = e.value;
      break;
    }
    case 'truncate': {
      const whole = handshakeFrame(h.step);
      faulty = whole.subarray(0, (h.edits[0]?.at ?? 0) % whole.length);
      break;
    }
    case 'outOfOrder':
      faulty = handshakeFrame(NEXT[h.step]);
      break;
    case 'noMechanism':
      faulty = handshakeFrame('start', 'SCRAM-SHA-256');
      break;
  }
  // The broker answers each client step (protocol header, start-ok, open) with the right frame until
  // the faulty step, then sends the fault and ends the stream: the attempt must fail promptly with a
  // typed error (or, after a harmless mutation, open and then see the stream end).
  const faultAt = h.how === 'noMechanism' ? 0 : steps.indexOf(h.step);
  let stepIndex = 0;
  let broker: MemoryBroker | undefined;
  const onClient = (what: 'header' | { method: { name: string } }) => {
    const trigger =
      what === 'header' || what.method.name === 'connection.start-ok' || what.method.name === 'connection.open';
    if (!trigger || broker === undefined) return;
    const i = stepIndex++;
    framesFed++;
    if (i < faultAt) {
      broker.inject([handshakeFrame(steps[i]!)]);
    } else if (i === faultAt) {
      broker.inject(cut(faulty, h.cuts));
      broker.end();
    }
  };
  broker = new MemoryBroker({ autoHandshake: false, onClient });
  try {
    const attempt = Connection.overStream(broker.clientEnd, { heartbeat: 0, connectionTimeout: CASE_TIMEOUT_MS });
    let conn: Connection | undefined;
    let error: unknown;
    try {
      conn = await within(attempt, CASE_TIMEOUT_MS + 1000, `handshake fault ${h.how} at ${h.step}`);
    } catch (err) {
      error = err;
    }
    if (conn !== undefined) {
      // A harmless mutation (e.g. of a server property): the connection works until the stream ends.
      await within(conn.closed, CASE_TIMEOUT_MS, 'close after the stream ended');
      return;
    }
    assert.ok(
      error instanceof ConnectionError,
      `handshake fault ${h.how} at ${h.step}: expected a ConnectionError, got ${describe(error)}`,
    );
    if (error instanceof FrameError) {
      assert.ok(SPEC_CODES.includes(error.replyCode), `reply code ${error.replyCode}`);
      assert.equal(broker.closeFromClient?.replyCode, error.replyCode, 'connection.close sent with the code');
    }
    assert.equal(broker.framesAfterClose, 0);
  } finally {
    broker.destroy();
  }
}

// ------------------------------------------------------------------------------- tests

test(`connection fuzz: ${s.frames} frames (seed ${s.seed})`, { timeout: s.timeLimitMs + 120_000 }, async (t) => {
  const watch = new Watch();
  watch.start();
  try {
    const r = await runBatches(
      s,
      caseArb,
      runCase,
      () => framesFed,
      100,
      (line) => t.diagnostic(line),
    );
    t.diagnostic(
      `${r.frames} frames in ${r.cases} cases, ${r.batches} batches, ${r.ms} ms; heap after first/last batch ${r.heapFirstMiB}/${r.heapLastMiB} MiB${r.stoppedByTime ? '; stopped by the time limit' : ''}`,
    );
    t.diagnostic(`endings: ${JSON.stringify(Object.fromEntries([...endings].sort()))}`);
    t.diagnostic(`faults: ${JSON.stringify(Object.fromEntries([...faultsRun].sort()))}`);
    console.log(`fuzz connection: ${JSON.stringify({ seed: s.seed, ...r })}`);
    assert.deepEqual(watch.problems, []);
    if (s.path === undefined) {
      const missing = FAULT_KINDS.filter((k) => !faultsRun.has(k));
      assert.deepEqual(missing, [], 'every kind of fault must have run');
      assert.ok(r.frames >= Math.min(s.frames, 20_000), `only ${r.frames} frames ran before the time limit`);
      assert.ok(r.heapLastMiB - r.heapFirstMiB < 64, `heap grew from ${r.heapFirstMiB} to ${r.heapLastMiB} MiB`);
    }
  } finally {
    watch.stop();
  }
});

test(`handshake fuzz (seed ${s.seed})`, async () => {
  const watch = new Watch();
  watch.start();
  try {
    await fc.assert(
      fc.asyncProperty(handshakeArb, runHandshakeCase),
      s.path === undefined ? { seed: s.seed, numRuns: 300 } : { seed: s.seed, path: s.path, numRuns: 1 },
    );
    assert.deepEqual(watch.problems, []);
  } finally {
    watch.stop();
  }
});
