/** The confirm tracker on its own: which publishes each ack/nack settles, how, and in which order. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfirmTracker, type PendingConfirm } from '../../src/channel/confirms.js';
import { ClosedError, MessageReturned, PublishNacked } from '../../src/errors.js';

function tracked(tracker: ConfirmTracker, n: number, log: string[], mandatory = false): PendingConfirm[] {
  const out: PendingConfirm[] = [];
  for (let i = 0; i < n; i++) {
    const tag = out.length + tracker.size + 1;
    const p: PendingConfirm = {
      resolve: () => log.push(`ok ${tag}`),
      reject: (e) => log.push(`${e.constructor.name} ${tag}`),
      mandatory,
      exchange: 'x',
      routingKey: 'k',
      returned: undefined,
      settled: false,
    };
    out.push(p);
  }
  for (const p of out) tracker.add(p);
  return out;
}

test('delivery tags are handed out from 1 in publish order', () => {
  const t = new ConfirmTracker();
  const ps = tracked(new ConfirmTracker(), 3, []);
  assert.deepEqual(
    ps.map((p) => t.add(p)),
    [1, 2, 3],
  );
  assert.equal(t.size, 3);
});

test('a multiple ack settles every publish up to its tag, oldest first, and no later one', () => {
  const t = new ConfirmTracker();
  const log: string[] = [];
  tracked(t, 5, log);
  t.confirm(3, true, true);
  assert.deepEqual(log, ['ok 1', 'ok 2', 'ok 3']);
  assert.equal(t.size, 2);
});

test('acks out of order settle only their own publish; a later multiple skips the settled ones', () => {
  const t = new ConfirmTracker();
  const log: string[] = [];
  tracked(t, 4, log);
  t.confirm(3, false, true);
  t.confirm(1, false, true);
  assert.deepEqual(log, ['ok 3', 'ok 1']);
  t.confirm(4, true, false);
  assert.deepEqual(log, ['ok 3', 'ok 1', 'PublishNacked 2', 'PublishNacked 4']);
  assert.equal(t.size, 0);
});

test('a nack rejects with PublishNacked; repeated and unknown tags are ignored', () => {
  const t = new ConfirmTracker();
  const errors: unknown[] = [];
  const p: PendingConfirm = {
    resolve: () => errors.push('resolved'),
    reject: (e) => errors.push(e),
    mandatory: false,
    exchange: '',
    routingKey: 'q',
    returned: undefined,
    settled: false,
  };
  t.add(p);
  t.confirm(1, false, false);
  t.confirm(1, false, true);
  t.confirm(99, true, true);
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof PublishNacked);
});

test('a return marks the oldest matching mandatory publish, whose ack then rejects with the return', () => {
  const t = new ConfirmTracker();
  const log: string[] = [];
  tracked(t, 1, log, false);
  tracked(t, 2, log, true);
  const returned = new MessageReturned({
    replyCode: 312,
    replyText: 'NO_ROUTE',
    exchange: 'x',
    routingKey: 'k',
    body: Buffer.alloc(0),
    properties: {},
  });
  assert.equal(t.markReturned(returned), true);
  t.confirm(3, true, true);
  assert.deepEqual(log, ['ok 1', 'MessageReturned 2', 'ok 3']);
  const other = new MessageReturned({ ...returned.returned, routingKey: 'elsewhere' });
  assert.equal(t.markReturned(other), false, 'nothing left to match');
});

test('failAll rejects what is pending, calls lost instead when given, and leaves settled ones alone', () => {
  const t = new ConfirmTracker();
  const log: string[] = [];
  const ps = tracked(t, 3, log);
  ps[2]!.lost = (e) => log.push(`lost ${e.message}`);
  t.confirm(1, false, true);
  t.failAll(new ClosedError('gone'));
  assert.deepEqual(log, ['ok 1', 'ClosedError 2', 'lost gone']);
  assert.equal(t.size, 0);
  t.confirm(3, true, true);
  assert.equal(log.length, 3, 'a confirm after failAll settles nothing');
});

test('many confirms in order keep size right across compaction', () => {
  const t = new ConfirmTracker();
  const log: string[] = [];
  tracked(t, 3000, log);
  for (let tag = 1; tag <= 2500; tag++) t.confirm(tag, false, true);
  assert.equal(t.size, 500);
  t.confirm(3000, true, true);
  assert.equal(log.length, 3000);
  assert.equal(log[2999], 'ok 3000');
});
