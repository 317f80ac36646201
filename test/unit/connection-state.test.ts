/**
 * The connection's one state type: the moves it allows, what users see of it, and the typed
 * fact (the frame type found) the "not an AMQP 0-9-1 server" diagnosis is made from.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canMove, type ConnectionState, isHandshaking, publicState } from '../../src/connection/connection-state.js';
import { FrameError } from '../../src/errors.js';
import { FrameDecoder } from '../../src/protocol/frame-decoder.js';
import { PROTOCOL_HEADER } from '../../src/protocol/generated/constants.js';

const HANDSHAKE: ConnectionState[] = ['awaiting-start', 'authenticating', 'tuning', 'opening-vhost'];

test('the handshake moves forward one step at a time, and any state but closed can die', () => {
  const order: ConnectionState[] = [...HANDSHAKE, 'open', 'closing', 'closed'];
  for (let i = 0; i + 1 < order.length; i++)
    assert.ok(canMove(order[i]!, order[i + 1]!), `${order[i]} → ${order[i + 1]}`);
  for (const s of order.slice(0, -1)) assert.ok(canMove(s, 'closed'), `${s} → closed`);
  assert.ok(!canMove('awaiting-start', 'open'), 'no skipping the handshake');
  assert.ok(!canMove('open', 'authenticating'), 'no going back');
  for (const s of order) assert.ok(!canMove('closed', s), `closed is final (${s})`);
});

test('users see the handshake steps as one "opening" state', () => {
  for (const s of HANDSHAKE) {
    assert.ok(isHandshaking(s));
    assert.equal(publicState(s), 'opening');
  }
  for (const s of ['open', 'closing', 'closed'] as const) {
    assert.ok(!isHandshaking(s));
    assert.equal(publicState(s), s);
  }
});

test('a protocol header where a frame was expected is a FrameError that says which frame type it found', () => {
  const decoder = new FrameDecoder(131072, () => assert.fail('no frame expected'));
  assert.throws(
    () => decoder.push(Buffer.from('AMQP\x00\x01\x00\x00', 'latin1')),
    (err: unknown) => err instanceof FrameError && err.replyCode === 501 && err.frameType === PROTOCOL_HEADER[0],
  );
});
