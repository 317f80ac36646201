/**
 * The stream cursor's resume rules without a broker: the resume point is the lowest offset not yet
 * handled; redeliveries of offsets handled or still running are skipped; buffered deliveries of a
 * lost channel come again.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StreamCursor } from '../../src/client/stream-cursor.js';

test('first subscribe uses the initial offset; later ones the offset after the last handled', () => {
  const c = new StreamCursor('first');
  assert.equal(c.startOffset(), 'first');
  for (const o of [0, 1, 2]) {
    assert.equal(c.delivered(o), true);
    c.running(o);
    c.handled(o);
  }
  assert.equal(c.startOffset(), 3);
  assert.equal(c.delivered(2), false, 'a redelivery of a handled offset is skipped');
  assert.equal(c.delivered(3), true);
});

test('out-of-order completion: resume at the lowest unfinished, skip what finished above it', () => {
  const c = new StreamCursor('next');
  for (const o of [10, 11, 12, 13]) assert.equal(c.delivered(o), true);
  c.running(10);
  c.running(11);
  c.handled(11); // 10 still running, 12 and 13 buffered
  c.channelLost(); // 12, 13 never ran
  assert.equal(c.startOffset(), 10);
  assert.equal(c.delivered(10), false, '10 is still running: its handler finishes it');
  assert.equal(c.delivered(11), false, '11 was handled');
  assert.equal(c.delivered(12), true, '12 never ran: handled now');
  c.running(12);
  c.handled(10);
  c.handled(12);
  assert.equal(c.startOffset(), 13);
});

test('a channel lost with only buffered deliveries resumes at the first of them', () => {
  const c = new StreamCursor(0);
  for (const o of [0, 1]) {
    c.delivered(o);
    c.running(o);
    c.handled(o);
  }
  c.delivered(2);
  c.delivered(3);
  c.channelLost();
  assert.equal(c.startOffset(), 2);
  assert.equal(c.delivered(1), false);
  assert.equal(c.delivered(2), true);
});

test('many handled offsets above a slow one are all remembered until it finishes', () => {
  const c = new StreamCursor('first');
  c.delivered(0);
  c.running(0); // slow
  for (let o = 1; o <= 3000; o++) {
    c.delivered(o);
    c.running(o);
    c.handled(o);
  }
  assert.equal(c.startOffset(), 0);
  for (let o = 1; o <= 3000; o++) assert.equal(c.delivered(o), false, `offset ${o}`);
  c.handled(0);
  assert.equal(c.startOffset(), 3001);
});
