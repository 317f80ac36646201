/**
 * Reply codes by name from the spec, the hard/soft classification, and the typed `replyCode` of
 * the errors: literal unions that still compare with plain numbers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type AnyReplyCode,
  ConnectionClosedByServer,
  FrameError,
  type HardReplyCode,
  isHardError,
  isSoftError,
  REPLY_CODES,
  type ReplyCode,
} from '../../src/index.js';

test('REPLY_CODES names every reply code of the spec', () => {
  assert.equal(REPLY_CODES.NOT_FOUND, 404);
  assert.equal(REPLY_CODES.CONNECTION_FORCED, 320);
  assert.equal(REPLY_CODES.UNEXPECTED_FRAME, 505);
  assert.equal(Object.keys(REPLY_CODES).length, 19);
});

test('hard and soft errors: the spec classes, every code in exactly one (200 in neither)', () => {
  for (const code of [320, 402, 501, 502, 503, 504, 505, 506, 530, 540, 541]) assert.ok(isHardError(code), `${code}`);
  for (const code of [311, 312, 313, 403, 404, 405, 406]) assert.ok(isSoftError(code), `${code}`);
  for (const code of Object.values(REPLY_CODES)) assert.ok(!(isHardError(code) && isSoftError(code)), `${code}`);
  assert.ok(!isHardError(200) && !isSoftError(200));
  assert.ok(!isHardError(999) && !isSoftError(999), 'a code outside the spec is neither');
});

test('a server close is recoverable for 320, 506 and 541 only', () => {
  const close = (replyCode: number) =>
    new ConnectionClosedByServer({ replyCode, replyText: 'x', classId: 0, methodId: 0 }).recoverable;
  assert.deepEqual(Object.values(REPLY_CODES).filter(close), [
    REPLY_CODES.CONNECTION_FORCED,
    REPLY_CODES.RESOURCE_ERROR,
    REPLY_CODES.INTERNAL_ERROR,
  ]);
  assert.equal(close(999), false);
});

test('typed reply codes still compare with numbers and accept what a broker sends', () => {
  const frame = new FrameError('bad');
  const hard: HardReplyCode = frame.replyCode; // a FrameError always carries a hard code
  assert.equal(hard, 501);
  const fromBroker = new ConnectionClosedByServer({ replyCode: 599, replyText: 'odd', classId: 0, methodId: 0 });
  const any: AnyReplyCode = fromBroker.replyCode;
  const asNumber: number = any;
  assert.equal(asNumber === 599, true);
  const known: ReplyCode = 404;
  assert.equal(known === REPLY_CODES.NOT_FOUND, true);
});
