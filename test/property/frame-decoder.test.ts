/**
 * The incremental frame reader: any chunking of a byte stream yields the same frames, frames wholly
 * inside a chunk are handed on without copying, and bad input (unknown type, oversize, bad
 * frame-end, random bytes) ends in a FrameError and nothing else.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FrameError } from '../../src/errors.js';
import { FRAME_OVERHEAD, FrameDecoder, MAX_HEADER_FRAME_SIZE } from '../../src/protocol/frame-decoder.js';
import { FRAME_END } from '../../src/protocol/generated/constants.js';
import { runs } from '../support/spec.js';

const FRAME_TYPES = [1, 2, 3, 8] as const;

interface Frame {
  type: number;
  channel: number;
  payload: Buffer;
}
interface Seen extends Frame {
  buf: Buffer;
  start: number;
  end: number;
}

const frameArb: fc.Arbitrary<Frame> = fc.record({
  type: fc.constantFrom(...FRAME_TYPES),
  channel: fc.oneof(fc.constantFrom(0, 1, 65535), fc.integer({ min: 0, max: 65535 })),
  payload: fc
    .oneof(
      { arbitrary: fc.constant(new Uint8Array(0)), weight: 2 },
      { arbitrary: fc.uint8Array({ maxLength: 16 }), weight: 4 },
      { arbitrary: fc.uint8Array({ maxLength: 4096 }), weight: 1 },
    )
    .map((u) => Buffer.from(u)),
});
const framesArb = fc.array(frameArb, { maxLength: 20 });

function serialize(frames: readonly Frame[]): Buffer {
  return Buffer.concat(
    frames.map((f) => {
      const head = Buffer.alloc(7);
      head[0] = f.type;
      head.writeUInt16BE(f.channel, 1);
      head.writeUInt32BE(f.payload.length, 3);
      return Buffer.concat([head, f.payload, Buffer.from([FRAME_END])]);
    }),
  );
}

/** Cuts `bytes` at the given points (taken modulo its length, duplicates give empty chunks). */
function chunk(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const points = cuts.map((c) => (bytes.length === 0 ? 0 : c % (bytes.length + 1))).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}
const singleBytes = (bytes: Buffer): Buffer[] =>
  Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));

function collector(maxFrameSize = 131072): { decoder: FrameDecoder; seen: Seen[] } {
  const seen: Seen[] = [];
  const decoder = new FrameDecoder(maxFrameSize, (type, channel, buf, start, end) => {
    seen.push({ type, channel, payload: Buffer.from(buf.subarray(start, end)), buf, start, end });
  });
  return { decoder, seen };
}

const plain = (frames: readonly Frame[]) =>
  frames.map((f) => ({ type: f.type, channel: f.channel, payload: f.payload }));

const frameError = (code: number) => (err: unknown) => err instanceof FrameError && err.replyCode === code;

/** Pushes untrusted chunks; returns the frames seen, and whether a FrameError ended the stream. */
function feedUntrusted(chunks: readonly Buffer[], maxFrameSize: number): { seen: Seen[]; failed: boolean } {
  const { decoder, seen } = collector(maxFrameSize);
  try {
    for (const c of chunks) decoder.push(c);
    return { seen, failed: false };
  } catch (err) {
    if (err instanceof FrameError && (err.replyCode === 501 || err.replyCode === 502)) return { seen, failed: true };
    throw err;
  }
}

// ----------------------------------------------------------------------------------------- tests
test('frames survive any chunking: one chunk, 1-byte chunks and random cuts', () => {
  fc.assert(
    fc.property(framesArb, fc.array(fc.nat(), { maxLength: 40 }), (frames, cuts) => {
      const bytes = serialize(frames);
      for (const chunks of [[bytes], singleBytes(bytes), chunk(bytes, cuts)]) {
        const { decoder, seen } = collector();
        for (const c of chunks) decoder.push(c);
        assert.deepEqual(plain(seen), plain(frames));
        assert.equal(decoder.buffered, 0, 'bytes left over after whole frames');
      }
    }),
    runs(300),
  );
});

test('a frame wholly inside one chunk is handed on as that chunk (zero copy); a split one is copied', () => {
  fc.assert(
    fc.property(framesArb, fc.array(fc.nat(), { maxLength: 40 }), (frames, cuts) => {
      const bytes = serialize(frames);
      const chunks = chunk(bytes, cuts);
      const { decoder, seen } = collector();
      for (const c of chunks) decoder.push(c);
      // Where each chunk starts in the stream.
      const chunkStarts: number[] = [];
      let at = 0;
      for (const c of chunks) {
        chunkStarts.push(at);
        at += c.length;
      }
      let frameStart = 0;
      frames.forEach((f, i) => {
        const frameLast = frameStart + 7 + f.payload.length; // index of the frame-end octet
        const s = seen[i]!;
        const home = chunks.findIndex(
          (c, k) => c.length > 0 && chunkStarts[k]! <= frameStart && frameLast < chunkStarts[k]! + c.length,
        );
        if (home >= 0) {
          assert.equal(s.buf, chunks[home], `frame ${i} was copied although it lies inside chunk ${home}`);
          assert.equal(s.start, frameStart - chunkStarts[home]! + 7);
        } else {
          assert.ok(!chunks.includes(s.buf), `frame ${i} spans chunks but was not reassembled`);
          assert.equal(s.buf.length, f.payload.length + FRAME_OVERHEAD, 'reassembly buffer sized to the frame');
        }
        assert.equal(s.end - s.start, f.payload.length);
        frameStart = frameLast + 1;
      });
    }),
    runs(300),
  );
});

test('buffered counts exactly the bytes of the incomplete frame', () => {
  fc.assert(
    fc.property(
      framesArb.filter((f) => f.length > 0),
      fc.nat(),
      fc.array(fc.nat(), { maxLength: 10 }),
      (frames, cut, cuts) => {
        const bytes = serialize(frames);
        const prefix = bytes.subarray(0, cut % (bytes.length + 1));
        const { decoder, seen } = collector();
        for (const c of chunk(prefix, cuts)) decoder.push(c);
        const complete = serialize(frames.slice(0, seen.length)).length;
        assert.equal(decoder.buffered, prefix.length - complete);
        // the next frame is not complete yet
        const next = frames[seen.length];
        if (next !== undefined) assert.ok(prefix.length - complete < next.payload.length + FRAME_OVERHEAD);
      },
    ),
    runs(300),
  );
});

test('an oversize frame is rejected from its 7-byte header, before its payload arrives', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 4096, max: 1 << 20 }),
      fc.integer({ min: 1, max: 2 ** 31 }),
      fc.constantFrom(...FRAME_TYPES),
      framesArb,
      fc.boolean(),
      (max, excess, type, before, bytewise) => {
        // A content header (type 2) may exceed frame-max, up to its own bound.
        const limit = type === 2 ? Math.max(max, MAX_HEADER_FRAME_SIZE) : max;
        const size = Math.min(limit - FRAME_OVERHEAD + excess, 0xffffffff);
        const head = Buffer.alloc(7);
        head[0] = type;
        head.writeUInt16BE(1, 1);
        head.writeUInt32BE(size, 3);
        const valid = before.filter((f) => f.payload.length + FRAME_OVERHEAD <= max);
        const { decoder, seen } = collector(max);
        for (const c of [serialize(valid)]) decoder.push(c);
        const pieces = bytewise ? singleBytes(head) : [head];
        for (let i = 0; i < pieces.length - 1; i++) decoder.push(pieces[i]!); // incomplete header: no verdict yet
        assert.throws(() => decoder.push(pieces[pieces.length - 1]!), frameError(501));
        assert.equal(seen.length, valid.length, 'frames before the oversize one were delivered');
      },
    ),
    runs(300),
  );
});

test('a content header frame above frame-max is accepted up to MAX_HEADER_FRAME_SIZE; method and body frames are not', () => {
  // pika never splits a content header (none can be split) and RabbitMQ forwards it as it is.
  const max = 4096;
  for (const size of [max - FRAME_OVERHEAD + 1, 200_000, MAX_HEADER_FRAME_SIZE - FRAME_OVERHEAD]) {
    const header: Frame = { type: 2, channel: 1, payload: Buffer.alloc(size, 7) };
    for (const chunks of [[serialize([header])], chunk(serialize([header]), [3, 5000, 100_000])]) {
      const { decoder, seen } = collector(max);
      for (const c of chunks) decoder.push(c);
      assert.equal(seen.length, 1, `header frame of ${size} bytes delivered`);
      assert.ok(decoder.buffered === 0);
    }
  }
  const over = Buffer.alloc(7);
  over[0] = 2;
  over.writeUInt32BE(MAX_HEADER_FRAME_SIZE - FRAME_OVERHEAD + 1, 3);
  assert.throws(() => collector(max).decoder.push(over), frameError(501), 'one byte over the header bound');
  for (const type of [1, 3]) {
    const head = Buffer.alloc(7);
    head[0] = type;
    head.writeUInt32BE(max - FRAME_OVERHEAD + 1, 3);
    assert.throws(() => collector(max).decoder.push(head), frameError(501), `type ${type} over frame-max`);
  }
});

test('frame-max is inclusive of the 8 bytes of overhead', () => {
  for (const max of [4096, 131072]) {
    const fits: Frame = { type: 3, channel: 1, payload: Buffer.alloc(max - FRAME_OVERHEAD, 1) };
    for (const chunks of [[serialize([fits])], chunk(serialize([fits]), [3, 100])]) {
      const { decoder, seen } = collector(max);
      for (const c of chunks) decoder.push(c);
      assert.equal(seen.length, 1);
    }
    const over = serialize([{ type: 3, channel: 1, payload: Buffer.alloc(max - FRAME_OVERHEAD + 1) }]);
    assert.throws(() => collector(max).decoder.push(over), frameError(501));
    assert.throws(() => collector(max).decoder.push(over.subarray(0, 7)), frameError(501));
  }
});

test('an unknown frame type is rejected with FrameError 501 as soon as its header is complete', () => {
  const known = new Set<number>(FRAME_TYPES);
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 255 }).filter((t) => !known.has(t)),
      framesArb,
      fc.array(fc.nat(), { maxLength: 10 }),
      (type, before, cuts) => {
        const head = Buffer.from([type, 0, 1, 0, 0, 0, 0]);
        const { decoder, seen } = collector();
        decoder.push(serialize(before));
        const pieces = chunk(head, cuts).filter((c) => c.length > 0);
        for (let i = 0; i < pieces.length - 1; i++) decoder.push(pieces[i]!);
        assert.throws(() => decoder.push(pieces[pieces.length - 1]!), frameError(501));
        assert.equal(seen.length, before.length);
      },
    ),
    runs(300),
  );
});

test('a bad frame-end octet is rejected with FrameError 501, after the frames before it', () => {
  fc.assert(
    fc.property(
      framesArb.filter((f) => f.length > 0),
      fc.nat(),
      fc.integer({ min: 0, max: 255 }).filter((b) => b !== FRAME_END),
      fc.array(fc.nat(), { maxLength: 40 }),
      fc.constantFrom('one', 'bytes', 'random'),
      (frames, which, badEnd, cuts, how) => {
        const k = which % frames.length;
        const bytes = serialize(frames);
        const endAt = serialize(frames.slice(0, k + 1)).length - 1;
        bytes[endAt] = badEnd;
        const chunks = how === 'one' ? [bytes] : how === 'bytes' ? singleBytes(bytes) : chunk(bytes, cuts);
        const { decoder, seen } = collector();
        assert.throws(() => {
          for (const c of chunks) decoder.push(c);
        }, frameError(501));
        assert.deepEqual(plain(seen), plain(frames.slice(0, k)));
      },
    ),
    runs(300),
  );
});

test('random bytes yield frames or a FrameError, never another exception', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(), { maxLength: 10 }), (raw, cuts) => {
      feedUntrusted(chunk(Buffer.from(raw), cuts), 4096);
    }),
    runs(2000),
  );
});

test('corrupted frame streams yield a prefix of the frames, then possibly a FrameError', () => {
  fc.assert(
    fc.property(
      framesArb.filter((f) => f.length > 0),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      (frames, edits, cuts) => {
        const bytes = serialize(frames);
        for (const [at, v] of edits) bytes[at % bytes.length] = v;
        const firstEdit = Math.min(...edits.map(([at]) => at % bytes.length));
        const { seen } = feedUntrusted(chunk(bytes, cuts), 131072);
        // Frames that end before the first corrupted byte must come out unchanged.
        let end = 0;
        let intact = 0;
        for (const f of frames) {
          end += f.payload.length + FRAME_OVERHEAD;
          if (end > firstEdit) break;
          intact++;
        }
        assert.ok(seen.length >= intact, `only ${seen.length} of ${intact} intact frames delivered`);
        assert.deepEqual(plain(seen.slice(0, intact)), plain(frames.slice(0, intact)));
      },
    ),
    runs(1000),
  );
});

test('empty chunks are harmless at any point', () => {
  const frames: Frame[] = [
    { type: 1, channel: 1, payload: Buffer.from([1, 2, 3]) },
    { type: 8, channel: 0, payload: Buffer.alloc(0) },
  ];
  const bytes = serialize(frames);
  const empty = Buffer.alloc(0);
  const chunks = singleBytes(bytes).flatMap((c) => [empty, c, empty]);
  const { decoder, seen } = collector();
  for (const c of chunks) decoder.push(c);
  assert.deepEqual(plain(seen), frames);
});
