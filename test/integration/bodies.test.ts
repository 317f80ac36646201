/**
 * Message bodies of every size that matters for framing arrive byte-identical through the real
 * broker: empty, one byte, exactly one full body frame (frame-max − 8), one byte more (two frames),
 * around the encoder's copy/no-copy threshold, and 16 MiB; between connections with frame_max 4096 and
 * the default 131072, in both directions, through a consumer and through basic.get.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { type Connection, connect, type Message } from '../../src/index.js';
import { LARGE_BODY } from '../../src/protocol/frame-encoder.js';
import { AMQP_URL, consumeN, Resources } from '../support/broker.js';

const res = new Resources();
let small: Connection; // frame_max=4096
let large: Connection; // default frame_max

before(async () => {
  [small, large] = await Promise.all([connect(`${AMQP_URL}?frame_max=4096`), connect(AMQP_URL)]);
  assert.equal(small.frameMax, 4096);
  assert.equal(large.frameMax, 131072);
});

after(async () => {
  await Promise.all([small.close(), large.close()]);
  await res.cleanup();
});

const MiB = 1024 * 1024;

function sizesFor(frameMax: number): number[] {
  const payload = frameMax - 8;
  return [
    0,
    1,
    payload - 1,
    payload,
    payload + 1,
    2 * payload,
    2 * payload + 1,
    LARGE_BODY - 1,
    LARGE_BODY,
    LARGE_BODY + 1,
    16 * MiB,
  ];
}

/** Publishes one random body per size on `from` (confirmed), receives them on `to`, compares bytes. */
async function roundTrip(from: Connection, to: Connection, sizes: number[], via: 'consume' | 'get'): Promise<void> {
  const q = res.queue();
  const pub = await from.openChannel();
  const sub = await to.openChannel();
  try {
    await pub.queueDeclare(q);
    await pub.confirmSelect();
    const bodies = sizes.map((n) => randomBytes(n));
    await Promise.all(bodies.map((b, i) => pub.basicPublish('', q, b, { messageId: String(i) })));
    let got: Message[];
    if (via === 'consume') {
      got = await consumeN(sub, q, bodies.length, 20_000);
    } else {
      got = [];
      for (let i = 0; i < bodies.length; i++) {
        const m = await sub.basicGet(q);
        assert.ok(m, `message ${i} missing`);
        m.ack();
        got.push(m);
      }
      assert.equal(await sub.basicGet(q), null);
    }
    assert.equal(got.length, bodies.length);
    for (let i = 0; i < bodies.length; i++) {
      const m = got[i]!;
      assert.equal(m.properties.messageId, String(i));
      assert.ok(Buffer.isBuffer(m.body));
      assert.equal(m.body.length, sizes[i], `size of body ${i}`);
      assert.ok(m.body.equals(bodies[i]!), `body ${i} of ${sizes[i]} bytes differs`);
    }
  } finally {
    await Promise.all([pub.close(), sub.close()]);
  }
}

describe('bodies arrive byte-identical', () => {
  test('frame_max 4096 → 4096, consumer', async () => {
    await roundTrip(small, small, sizesFor(4096), 'consume');
  });

  test('131072 → 131072, basic.get', async () => {
    await roundTrip(large, large, sizesFor(131072), 'get');
  });

  test('4096 → 131072, basic.get (sizes around both frame sizes)', async () => {
    await roundTrip(small, large, [...new Set([...sizesFor(4096), ...sizesFor(131072)])], 'get');
  });

  test('131072 → 4096, consumer (sizes around both frame sizes)', async () => {
    await roundTrip(large, small, [...new Set([...sizesFor(131072), ...sizesFor(4096)])], 'consume');
  });

  test('a body kept by the application stays intact while later messages arrive', async () => {
    // Bodies may be views of the socket's read buffers; later reads must not overwrite them.
    const q = res.queue();
    const ch = await large.openChannel();
    try {
      await ch.queueDeclare(q);
      await ch.confirmSelect();
      const bodies = Array.from({ length: 200 }, (_, i) => randomBytes(1 + ((i * 997) % 3000)));
      await Promise.all(bodies.map((b) => ch.basicPublish('', q, b)));
      const got = await consumeN(ch, q, bodies.length);
      await Promise.all(bodies.map((b) => ch.basicPublish('', q, Buffer.alloc(b.length, 0xee))));
      await consumeN(ch, q, bodies.length);
      for (let i = 0; i < bodies.length; i++) assert.ok(got[i]!.body.equals(bodies[i]!), `body ${i} changed`);
    } finally {
      await ch.close();
    }
  });
});
