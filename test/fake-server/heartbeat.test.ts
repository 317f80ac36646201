/**
 * Heartbeats with a 1-second interval: a silent server is declared dead after two intervals and
 * everything pending is rejected; a server that keeps sending heartbeats keeps an idle connection
 * up, and warren sends its own heartbeats while it has nothing else to write.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { HeartbeatTimeout } from '../../src/index.js';
import { FRAME_HEARTBEAT } from '../../src/protocol/generated/constants.js';
import { assertInstance, countEvents, fakeTest, observe, open, serve, assertRejectWithCause } from './helpers.js';
import { sleep, within } from '../support/wait.js';
import { playBroker } from '../support/fake-server.js';

// The three scenarios mostly wait, so they run side by side.
describe('heartbeats', { concurrency: true }, () => {
  fakeTest(
    'a server that goes silent is declared dead (HeartbeatTimeout) within 2–3 s; pending calls reject',
    async () => {
      let silentAt = 0;
      const server = await serve(async (s) => {
        const hs = await s.handshake({ heartbeat: 1 });
        assert.equal(hs.tuneOk.heartbeat, 1);
        await s.acceptChannel();
        await s.recvMethod('confirm.select');
        s.send(1, 'confirm.select-ok', {});
        await s.recvMethod('queue.declare');
        await s.recvContent('basic.publish');
        silentAt = Date.now();
        s.silence(); // reads nothing, sends nothing; the paused socket never sees warren's FIN
      });
      const conn = await open(server, { heartbeat: 60 });
      assert.equal(conn.heartbeat, 1);
      const closes = countEvents(conn, 'close');
      const ch = await conn.openChannel();
      await ch.confirmSelect();
      const declare = observe(ch.queueDeclare('q'));
      const publish = observe(ch.basicPublish('ex', 'rk', Buffer.from('x')));

      const reason = await within(conn.closed, 5000, 'conn.closed');
      const elapsed = Date.now() - silentAt;
      const hb = assertInstance(reason, HeartbeatTimeout);
      assert.match(hb.message, /heartbeat/i);
      assert.equal(hb.recoverable, true);
      assert.ok(elapsed >= 1500 && elapsed <= 3500, `declared dead ${elapsed} ms after the server went silent`);

      await assertRejectWithCause(
        [
          ['queueDeclare', declare],
          ['the confirm-mode publish', publish],
        ],
        hb,
        'HeartbeatTimeout',
      );
      await server.done();
      await sleep(20);
      assert.equal(closes.count, 1);
      assert.equal(ch.isOpen, false);
    },
  );

  fakeTest(
    'with heartbeats flowing, an idle connection stays up for 3 s and warren sends heartbeats of its own',
    async () => {
      let clientHeartbeats = -1;
      let otherFrames = -1;
      const server = await serve(async (s) => {
        await s.handshake({ heartbeat: 1 });
        const start = s.received.length;
        // The server speaks every 500 ms, as a live broker with a 1 s heartbeat would.
        for (let i = 0; i < 6; i++) {
          s.sendHeartbeat();
          await sleep(500);
        }
        const idle = s.received.slice(start);
        clientHeartbeats = idle.filter((f) => f.type === FRAME_HEARTBEAT && f.channel === 0).length;
        otherFrames = idle.length - clientHeartbeats;
        await playBroker(s);
      });
      const conn = await open(server, { heartbeat: 30 });
      assert.equal(conn.heartbeat, 1);
      const closes = countEvents(conn, 'close');
      await sleep(3100);
      assert.ok(conn.isOpen, 'the connection is still open');
      assert.equal(closes.count, 0);
      const ch = await conn.openChannel();
      assert.equal((await ch.queueDeclare('still-works')).queue, 'still-works');
      await conn.close();
      await server.done();
      assert.equal(otherFrames, 0, 'only heartbeats were sent while idle');
      // One every half interval when nothing else was written: about 6 in 3 s; allow for a loaded machine.
      assert.ok(clientHeartbeats >= 3 && clientHeartbeats <= 8, `warren sent ${clientHeartbeats} heartbeats in 3 s`);
    },
  );

  fakeTest('an idle connection whose server sends nothing but reads fine is also declared dead', async () => {
    // The server still reads (it sees warren's heartbeats) but never writes: only reads count as life.
    let heard = 0;
    const server = await serve(async (s) => {
      await s.handshake({ heartbeat: 1 });
      const start = s.received.length;
      await within(s.closed, 5000, 'warren closing the socket');
      heard = s.received.slice(start).filter((f) => f.type === FRAME_HEARTBEAT).length;
    });
    const conn = await open(server, { heartbeat: 10 });
    const started = Date.now();
    const reason = await within(conn.closed, 5000, 'conn.closed');
    const elapsed = Date.now() - started;
    assertInstance(reason, HeartbeatTimeout);
    assert.ok(elapsed >= 1500 && elapsed <= 3500, `declared dead after ${elapsed} ms`);
    await server.done();
    assert.ok(heard >= 2, `the server heard ${heard} heartbeats before warren gave up`);
  });
});
