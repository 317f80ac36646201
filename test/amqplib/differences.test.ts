/**
 * The documented differences of warren/amqplib from amqplib (docs/migrating-from-amqplib.md), on the
 * broker: where amqplib closes the connection or crashes, warren/amqplib reports and keeps going.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import amqp, { type ChannelModel } from '../../src/amqplib/index.js';
import { AMQP_URL, uniqueName } from '../support/broker.js';

describe('warren/amqplib differences from amqplib', () => {
  const models: ChannelModel[] = [];
  const open = async () => {
    const m = await amqp.connect(AMQP_URL);
    models.push(m);
    return m;
  };
  after(async () => {
    for (const m of models) await m.close().catch(() => {});
  });

  test("a channel error nobody listens for on the channel goes to the model's 'error'; the connection stays open", async () => {
    const conn = await open();
    const modelErrors: Error[] = [];
    conn.on('error', (e: Error) => modelErrors.push(e));
    const ch = await conn.createChannel();
    await assert.rejects(ch.checkQueue(uniqueName('missing')));
    await sleep(20);
    assert.equal(modelErrors.length, 1);
    assert.equal((modelErrors[0] as Error & { code: number }).code, 404);
    const other = await conn.createChannel();
    assert.match((await other.assertQueue('', { exclusive: true })).queue, /^amq\.gen-/);
  });

  test("with no 'error' listener anywhere, a channel error is a warning, not a crash", async () => {
    const conn = await open();
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      const ch = await conn.createChannel();
      await assert.rejects(ch.checkQueue(uniqueName('missing')));
      await sleep(50);
      assert.ok(
        warnings.some((w) => w.includes('NOT_FOUND')),
        warnings.join('\n'),
      );
    } finally {
      process.off('warning', onWarning);
    }
  });

  test("a throwing consumer callback goes to 'handler-error' and delivery goes on", async () => {
    const conn = await open();
    const ch = await conn.createChannel();
    const q = (await ch.assertQueue('', { exclusive: true })).queue;
    const handlerErrors: [unknown, string][] = [];
    ch.on('handler-error', (err: unknown, event: string) => handlerErrors.push([err, event]));
    const seen: string[] = [];
    await ch.consume(
      q,
      (m) => {
        if (m === null) return;
        seen.push(m.content.toString());
        if (seen.length === 1) throw new Error('handler bug');
      },
      { noAck: true },
    );
    ch.sendToQueue(q, Buffer.from('a'));
    ch.sendToQueue(q, Buffer.from('b'));
    for (let i = 0; i < 100 && (seen.length < 2 || handlerErrors.length < 1); i++) await sleep(10);
    assert.deepEqual(seen, ['a', 'b']);
    assert.equal(handlerErrors.length, 1);
    assert.equal((handlerErrors[0]![0] as Error).message, 'handler bug');
    assert.equal(handlerErrors[0]![1], 'delivery');
  });

  test("amqplib 2's recovery option is refused with a pointer to recover", async () => {
    await assert.rejects(
      amqp.connect(AMQP_URL, { recovery: true } as never),
      (err) => err instanceof TypeError && /recover: true/.test(err.message),
    );
  });

  test('a publish warren cannot encode is a warning and is not sent', async () => {
    const conn = await open();
    const ch = await conn.createChannel();
    const q = (await ch.assertQueue('', { exclusive: true })).queue;
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      ch.sendToQueue(q, Buffer.from('x'), { priority: 300 });
      await sleep(50);
      assert.ok(
        warnings.some((w) => w.includes('publish not sent')),
        warnings.join('\n'),
      );
      assert.equal(await ch.get(q), false);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
