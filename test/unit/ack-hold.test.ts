/**
 * Held acks (`basicQos` with a window of 8 or more): in-order acks wait past flushes until they
 * cover a quarter of the window, until none has come for 1 ms, or 10 ms at most, then leave as one
 * basic.ack(multiple); a nack
 * writes the held run first; a host that cannot write (closing) never holds; `holdUpTo(0)` (what
 * `coalesceAcks: false` sets) writes at the next flush.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Acknowledger } from '../../src/channel/acknowledger.js';
import { settlement } from '../../src/channel/message.js';
import { ClosedError } from '../../src/errors.js';
import { EncoderHost } from '../support/channel-host.js';

const ACK = settlement('ack', false, false);

function acksOf(host: EncoderHost): string[] {
  return host.methods().map((m) => {
    const a = m.args as { deliveryTag: number; multiple: boolean; requeue?: boolean };
    return `${m.name} ${a.deliveryTag}${a.multiple ? ' multiple' : ''}`;
  });
}

function setup(prefetch: number): { host: EncoderHost; acks: Acknowledger } {
  const host = new EncoderHost();
  const acks = new Acknowledger(host, 1, () => true);
  acks.holdUpTo(prefetch);
  return { host, acks };
}

function deliverAndAck(acks: Acknowledger, from: number, to: number): void {
  for (let tag = from; tag <= to; tag++) {
    acks.delivered(tag, false);
    acks.settle(tag, ACK);
  }
}

test('a run shorter than a quarter of the window is held past a flush, then leaves whole', () => {
  const { host, acks } = setup(100);
  deliverAndAck(acks, 1, 10);
  assert.deepEqual(acksOf(host), [], 'held: 10 < 25');
  deliverAndAck(acks, 11, 25);
  assert.deepEqual(acksOf(host), ['basic.ack 25 multiple'], 'a quarter of the window: one frame for 25');
  acks.flushRun();
});

test('a held run leaves after 1 ms when no more acks come', async () => {
  const { host, acks } = setup(100);
  deliverAndAck(acks, 1, 3);
  assert.deepEqual(acksOf(host), []);
  await sleep(20);
  assert.deepEqual(acksOf(host), ['basic.ack 3 multiple']);
});

test('a run that keeps growing is held past 1 ms, and leaves within 10 ms even so', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const { host, acks } = setup(10_000);
  const written: { at: number; acks: string[] }[] = [];
  // An ack every 0.5 ms for 40 ms, and a flush after each, as after every socket read: never a
  // 1 ms pause, never a quarter of the window.
  for (let step = 1; step <= 80; step++) {
    deliverAndAck(acks, step, step);
    const out = acksOf(host);
    if (out.length > 0) written.push({ at: step / 2, acks: out });
    t.mock.timers.tick(0.5);
  }
  const at = written.map((w) => w.at);
  assert.equal(written.length, 3, `one write per 10 ms, at ${at.join(', ')} ms`);
  assert.ok(
    at.every((ms, i) => ms - (at[i - 1] ?? 0) >= 10 && ms - (at[i - 1] ?? 0) <= 11),
    `10 ms apart: ${at.join(', ')}`,
  );
  // Then the acks pause: the rest leaves a millisecond or so later, as one frame.
  t.mock.timers.tick(2);
  assert.deepEqual(acksOf(host), ['basic.ack 80 multiple']);
});

test('a nack writes the held run first, so the wire order is the order given', () => {
  const { host, acks } = setup(100);
  deliverAndAck(acks, 1, 4);
  assert.deepEqual(acksOf(host), []);
  acks.delivered(5, false);
  acks.settle(5, settlement('nack', false, true));
  assert.deepEqual(acksOf(host), ['basic.ack 4 multiple', 'basic.nack 5']);
});

test('nothing is held when the host cannot write any more, or with holdUpTo(0) or a window under 8', () => {
  const closing = setup(100);
  closing.host.unusable = new ClosedError('closing');
  deliverAndAck(closing.acks, 1, 2);
  assert.deepEqual(acksOf(closing.host), ['basic.ack 2 multiple']);
  for (const prefetch of [0, 7]) {
    const { host, acks } = setup(prefetch);
    deliverAndAck(acks, 1, 2);
    assert.deepEqual(acksOf(host), ['basic.ack 2 multiple'], `prefetch ${prefetch}`);
  }
});
