/** The call queue on its own: one call in flight, the rest sent in order as replies arrive. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { armDeadline, CallQueue, type PendingCall, type PendingCallOf } from '../../src/channel/call-queue.js';
import { type AMQPError, InvalidArgumentError, TimeoutError } from '../../src/errors.js';
import { METHOD_IDS, type MethodByName, type SyncMethodName } from '../../src/protocol/generated/methods.js';

const OK = {
  id: METHOD_IDS['queue.purge-ok'],
  name: 'queue.purge-ok',
  args: { messageCount: 7 },
} as MethodByName['queue.purge-ok'];

function call<N extends SyncMethodName>(name: N, log: string[], replies = [METHOD_IDS['queue.purge-ok']]) {
  const c: PendingCallOf<N> = {
    name,
    args: {} as never,
    replies,
    resolve: (r) => log.push(`resolved ${name} ${r === null ? 'null' : (r as { name: string }).name}`),
    reject: (e: AMQPError) => log.push(`rejected ${name} ${e.constructor.name}`),
  };
  return c;
}

/** A queue whose calls go to `sendCall`; nothing here has a deadline to abandon. */
function queue(sendCall: (c: PendingCall) => void = () => {}): CallQueue {
  return new CallQueue({ sendCall, abandonCall: () => {} });
}

test('only the head is sent; each answer resolves it and sends the next', () => {
  const sent: string[] = [];
  const log: string[] = [];
  const q = queue((c) => sent.push(c.name));
  q.push(call('queue.purge', log));
  q.push(call('queue.delete', log));
  assert.deepEqual(sent, ['queue.purge'], 'the second waits');
  assert.equal(q.answer(OK.id, OK), true);
  assert.deepEqual(log, ['resolved queue.purge queue.purge-ok']);
  assert.deepEqual(sent, ['queue.purge', 'queue.delete']);
});

test('a method that does not answer the head is refused and changes nothing', () => {
  const log: string[] = [];
  const q = queue();
  const head = call('queue.purge', log);
  q.push(head);
  assert.equal(q.answer(METHOD_IDS['queue.declare-ok'], OK), false);
  assert.equal(q.head, head);
  assert.deepEqual(log, []);
  assert.equal(queue().answer(OK.id, OK), false, 'nothing in flight');
});

test('a call whose send throws is rejected with InvalidArgumentError and the next one goes out', () => {
  const sent: string[] = [];
  const log: string[] = [];
  const q = queue((c) => {
    if (c.name === 'queue.purge') throw new RangeError('bad');
    sent.push(c.name);
  });
  q.push(call('basic.qos', log));
  q.push(call('queue.purge', log));
  q.push(call('queue.delete', log));
  q.answer(OK.id, OK);
  assert.deepEqual(log, ['resolved basic.qos queue.purge-ok', 'rejected queue.purge InvalidArgumentError']);
  assert.deepEqual(sent, ['basic.qos', 'queue.delete']);
});

test('removeWaiting takes out a waiting call but never the one in flight; drain hands back the rest in order', () => {
  const log: string[] = [];
  const q = queue();
  const a = call('queue.purge', log);
  const b = call('queue.delete', log);
  const c = call('queue.bind', log);
  q.push(a);
  q.push(b);
  q.push(c);
  assert.equal(q.removeWaiting(a), false);
  assert.equal(q.removeWaiting(b), true);
  assert.equal(q.removeWaiting(b), false);
  assert.deepEqual(
    q.drain().map((x) => x.name),
    ['queue.purge', 'queue.bind'],
  );
  assert.equal(q.head, undefined);
});

test('armDeadline: the timer abandons the call with TimeoutError; a reply in time clears it', async () => {
  const log: string[] = [];
  const abandoned: string[] = [];
  const late = call('queue.purge', log);
  armDeadline(late, { timeout: 5, signal: undefined, channelId: 3 }, (c, e) => {
    abandoned.push(`${c.name} ${e instanceof TimeoutError} ${/channel 3/.test(e.message)}`);
  });
  const prompt = call('queue.delete', log);
  armDeadline(prompt, { timeout: 5, signal: undefined, channelId: 3 }, () => abandoned.push('prompt'));
  prompt.resolve(OK as never);
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(abandoned, ['queue.purge true true']);
  assert.deepEqual(log, ['resolved queue.delete queue.purge-ok']);
});

test('armDeadline: an abort abandons with AbortError; after settling, the signal has no listener left', () => {
  const ac = new AbortController();
  const seen: string[] = [];
  const c = call('queue.purge', []);
  armDeadline(c, { timeout: 0, signal: ac.signal, channelId: 1 }, (_c, e) => seen.push(e.constructor.name));
  ac.abort();
  assert.deepEqual(seen, ['AbortError']);
  const ac2 = new AbortController();
  const d = call('queue.purge', []);
  armDeadline(d, { timeout: 0, signal: ac2.signal, channelId: 1 }, () => seen.push('late'));
  d.reject(new InvalidArgumentError('x'));
  ac2.abort();
  assert.deepEqual(seen, ['AbortError'], 'a settled call is not abandoned');
});
