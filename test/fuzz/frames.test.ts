/**
 * Fuzzes the frame reader on its own, at volume: streams of frames of every type with one fault —
 * a wrong frame-end, an unknown type, a size up to 2^32 − 1, random bytes, a truncated tail — cut into
 * random chunks. The reader must hand on exactly the frames before the fault, then throw a FrameError
 * 501 and nothing else (a content header above frame-max but within MAX_HEADER_FRAME_SIZE is no fault:
 * the reader waits for the rest of it); hold no more than one frame-max of bytes; and never allocate for a size it
 * refuses.
 *
 *   WARREN_FUZZ_FRAMES=1000000 node --import tsx --test test/fuzz/frames.test.ts
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FrameError } from '../../src/errors.js';
import { FrameDecoder, MAX_HEADER_FRAME_SIZE } from '../../src/protocol/frame-decoder.js';
import { FRAME_END } from '../../src/protocol/generated/constants.js';
import { cut, runBatches, settings, Watch } from './run.js';
import { frame } from '../support/frames.js';

const s = settings(200_000, 30);
let framesFed = 0;

interface Spec {
  type: number;
  channel: number;
  size: number;
  fill: number;
}

type Fault =
  | { kind: 'none' }
  | { kind: 'badEnd'; end: number }
  | { kind: 'badType'; type: number }
  | { kind: 'oversize'; size: number; type: number }
  | { kind: 'random'; bytes: Uint8Array }
  | { kind: 'truncated'; keep: number };

interface Stream {
  maxFrameSize: number;
  frames: Spec[];
  fault: Fault;
  cuts: number[];
}

const streamArb: fc.Arbitrary<Stream> = fc.constantFrom(4096, 8192, 131072, 1 << 20).chain((maxFrameSize) =>
  fc.record({
    maxFrameSize: fc.constant(maxFrameSize),
    frames: fc.array(
      fc.record({
        type: fc.constantFrom(1, 2, 3, 8),
        channel: fc.integer({ min: 0, max: 65535 }),
        size: fc.oneof(
          { arbitrary: fc.integer({ min: 0, max: 32 }), weight: 40 },
          { arbitrary: fc.integer({ min: 0, max: maxFrameSize - 8 }), weight: 1 },
        ),
        fill: fc.integer({ min: 0, max: 255 }),
      }),
      { maxLength: 400, size: 'max' },
    ),
    fault: fc.oneof(
      fc.constant<Fault>({ kind: 'none' }),
      fc.record({
        kind: fc.constant('badEnd' as const),
        end: fc.integer({ min: 0, max: 255 }).filter((b) => b !== FRAME_END),
      }),
      fc.record({
        kind: fc.constant('badType' as const),
        type: fc.integer({ min: 0, max: 255 }).filter((t) => ![1, 2, 3, 8].includes(t)),
      }),
      fc.record({
        kind: fc.constant('oversize' as const),
        size: fc.oneof(
          fc.constantFrom(0xffffffff, 0xfffffff7, maxFrameSize - 7, MAX_HEADER_FRAME_SIZE - 7),
          fc.integer({ min: maxFrameSize - 7, max: 0xffffffff }),
        ),
        type: fc.constantFrom(1, 2, 3, 8),
      }),
      fc.record({ kind: fc.constant('random' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
      fc.record({ kind: fc.constant('truncated' as const), keep: fc.nat() }),
    ),
    cuts: fc.array(fc.nat(), { maxLength: 64 }),
  }),
);

function build(spec: Spec): Buffer {
  return frame(spec.type, spec.channel, Buffer.alloc(spec.size, spec.fill));
}

function faultBytes(f: Fault): Buffer {
  switch (f.kind) {
    case 'none':
      return Buffer.alloc(0);
    case 'badEnd':
      return frame(1, 1, Buffer.from([0, 60, 0, 80]), f.end);
    case 'badType':
      return frame(f.type, 0, Buffer.alloc(3));
    case 'oversize': {
      const head = Buffer.alloc(7 + 16);
      head[0] = f.type;
      head.writeUInt32BE(f.size, 3);
      return head;
    }
    case 'random':
      return Buffer.from(f.bytes);
    case 'truncated':
      return Buffer.alloc(0);
  }
}

async function check(st: Stream): Promise<void> {
  const seen: { type: number; channel: number; size: number; fill: number | undefined }[] = [];
  let maxBuffered = 0;
  const decoder = new FrameDecoder(st.maxFrameSize, (type, channel, buf, start, end) => {
    seen.push({ type, channel, size: end - start, fill: end > start ? buf[start] : undefined });
  });
  const valid = st.frames.map(build);
  let stream = Buffer.concat([...valid, faultBytes(st.fault)]);
  let expectedFrames = st.frames.length;
  if (st.fault.kind === 'truncated' && stream.length > 0) {
    stream = stream.subarray(0, st.fault.keep % stream.length);
    let whole = 0;
    let at = 0;
    while (whole < valid.length && at + valid[whole]!.length <= stream.length) at += valid[whole++]!.length;
    expectedFrames = whole;
  }
  framesFed += st.frames.length + (st.fault.kind === 'none' || st.fault.kind === 'truncated' ? 0 : 1);
  const arrayBuffersBefore = process.memoryUsage().arrayBuffers;
  let error: unknown;
  try {
    for (const chunk of cut(stream, st.cuts)) {
      decoder.push(chunk);
      maxBuffered = Math.max(maxBuffered, decoder.buffered);
    }
  } catch (err) {
    error = err;
  }
  assert.ok(maxBuffered <= st.maxFrameSize, `the reader held ${maxBuffered} bytes, frame-max is ${st.maxFrameSize}`);
  const grew = process.memoryUsage().arrayBuffers - arrayBuffersBefore;
  assert.ok(grew < 64 * st.maxFrameSize + (64 << 20), `buffers grew by ${grew} bytes`);
  const prefix = seen.slice(0, expectedFrames);
  assert.deepEqual(
    prefix.map((f) => [f.type, f.channel, f.size, f.fill]),
    st.frames.slice(0, prefix.length).map((f) => [f.type, f.channel, f.size, f.size > 0 ? f.fill : undefined]),
    'the frames before the fault come out intact',
  );
  switch (st.fault.kind) {
    case 'none':
    case 'truncated':
      assert.equal(error, undefined);
      assert.equal(seen.length, expectedFrames);
      assert.equal(decoder.buffered, stream.length - valid.slice(0, expectedFrames).reduce((n, b) => n + b.length, 0));
      break;
    case 'random':
      // Random bytes may happen to form frames; if the reader complains, it is with a FrameError 501.
      assert.ok(error === undefined || (error instanceof FrameError && error.replyCode === 501), String(error));
      assert.ok(seen.length >= expectedFrames);
      break;
    case 'oversize':
      if (st.fault.type === 2 && st.fault.size + 8 <= Math.max(st.maxFrameSize, MAX_HEADER_FRAME_SIZE)) {
        // A content header may exceed frame-max up to its own bound: its first bytes wait for the rest.
        assert.equal(error, undefined, `content header of ${st.fault.size} bytes refused`);
        assert.equal(seen.length, expectedFrames);
        assert.equal(decoder.buffered, 7 + 16);
        break;
      }
      assert.ok(error instanceof FrameError, `expected FrameError, got ${String(error)}`);
      assert.equal(error.replyCode, 501);
      assert.equal(seen.length, expectedFrames, 'nothing after the fault');
      break;
    default:
      assert.ok(error instanceof FrameError, `expected FrameError, got ${String(error)}`);
      assert.equal(error.replyCode, 501);
      assert.equal(seen.length, expectedFrames, 'nothing after the fault');
  }
}

test(`frame reader fuzz: ${s.frames} frames (seed ${s.seed})`, { timeout: s.timeLimitMs + 60_000 }, async (t) => {
  const watch = new Watch();
  watch.start();
  try {
    const r = await runBatches(
      s,
      streamArb,
      check,
      () => framesFed,
      100,
      (line) => t.diagnostic(line),
    );
    t.diagnostic(
      `${r.frames} frames in ${r.cases} streams, ${r.ms} ms; heap after first/last batch ${r.heapFirstMiB}/${r.heapLastMiB} MiB`,
    );
    console.log(`fuzz frames: ${JSON.stringify({ seed: s.seed, ...r })}`);
    assert.deepEqual(watch.problems, []);
    if (s.path === undefined) {
      assert.ok(r.frames >= Math.min(s.frames, 50_000), `only ${r.frames} frames ran before the time limit`);
      assert.ok(r.heapLastMiB - r.heapFirstMiB < 64, `heap grew from ${r.heapFirstMiB} to ${r.heapLastMiB} MiB`);
    }
  } finally {
    watch.stop();
  }
});
