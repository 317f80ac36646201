/**
 * What the broker sees of a warren connection (rabbitmqctl list_connections): client properties,
 * negotiated tune values and heartbeat, the SASL mechanism; and a close forced by
 * `rabbitmqctl close_connection`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ClosedError, type Connection, ConnectionClosedByServer, connect } from '../../src/index.js';
import {
  AMQP_URL,
  type BrokerConnection,
  connectionPid,
  deferred,
  findConnection,
  listConnections,
  rabbitmqctl,
  rejection,
  uniqueName,
} from '../support/broker.js';
import { within } from '../support/wait.js';

describe('what the broker sees', () => {
  const tuned = uniqueName('tuned');
  const amqplain = uniqueName('amqplain');
  const hb0 = uniqueName('hb0');
  const big = uniqueName('big');
  const conns: Connection[] = [];
  let rows: BrokerConnection[] = [];

  before(async () => {
    conns.push(
      await connect(`${AMQP_URL}?frame_max=4096&channel_max=3&heartbeat=7`, { name: tuned }),
      await connect(AMQP_URL, { name: amqplain, mechanism: 'AMQPLAIN', clientProperties: { team: 'storage' } }),
      await connect(`${AMQP_URL}?heartbeat=0`, { name: hb0 }),
      await connect(`${AMQP_URL}?frame_max=10000000&channel_max=0&heartbeat=600`, { name: big }),
    );
    rows = await listConnections();
  });

  after(async () => {
    await Promise.all(conns.map((c) => c.close()));
  });

  test('client properties: product, version, platform, capabilities, connection_name', () => {
    const row = findConnection(rows, tuned);
    const props = row.clientProperties;
    assert.equal(props.product, 'warren');
    assert.equal(typeof props.version, 'string');
    assert.match(String(props.platform), /^Node\.js v\d+/);
    assert.deepEqual(props.capabilities, {
      publisher_confirms: true,
      exchange_exchange_bindings: true,
      'basic.nack': true,
      consumer_cancel_notify: true,
      'connection.blocked': true,
      authentication_failure_close: true,
      per_consumer_qos: true,
      direct_reply_to: true,
    });
    assert.equal(props.connection_name, tuned);
    assert.equal(row.user, 'guest');
    assert.equal(row.vhost, '/');
    assert.equal(row.authMechanism, 'PLAIN');
  });

  test('extra client properties are merged in', () => {
    const props = findConnection(rows, amqplain).clientProperties;
    assert.equal(props.team, 'storage');
    assert.equal(props.product, 'warren');
  });

  test('AMQPLAIN authenticates', () => {
    assert.equal(findConnection(rows, amqplain).authMechanism, 'AMQPLAIN');
    assert.equal(conns[1]!.isOpen, true);
  });

  test('tune: frame_max=4096, channel_max=3, heartbeat=7 from the URL on both sides', () => {
    const row = findConnection(rows, tuned);
    const conn = conns[0]!;
    assert.equal(conn.frameMax, 4096);
    assert.equal(conn.channelMax, 3);
    assert.equal(conn.heartbeat, 7);
    assert.equal(row.frameMax, 4096);
    assert.equal(row.channelMax, 3);
    assert.equal(row.timeout, 7);
  });

  test('tune: asking more than the broker allows gets the broker limits; channel_max=0 means the broker one', () => {
    const row = findConnection(rows, big);
    const conn = conns[3]!;
    const serverFrameMax = findConnection(rows, amqplain).frameMax; // warren's default 131072 is RabbitMQ's too
    assert.equal(conn.frameMax, serverFrameMax);
    assert.equal(row.frameMax, conn.frameMax);
    assert.equal(conn.channelMax, 2047);
    assert.equal(row.channelMax, 2047);
    assert.equal(conn.heartbeat, 60);
    assert.equal(row.timeout, 60);
  });

  test('heartbeat=0 means no preference: the broker value is taken, as the option documents', () => {
    const row = findConnection(rows, hb0);
    assert.equal(conns[2]!.heartbeat, 60);
    assert.equal(row.timeout, 60);
  });
});

describe('closed by the broker', () => {
  test('rabbitmqctl close_connection: close event and closed promise give ConnectionClosedByServer 320', async () => {
    const name = uniqueName('forced');
    const conn = await connect(AMQP_URL, { name });
    try {
      const closeEvent = deferred<unknown>();
      conn.on('close', (err) => closeEvent.resolve(err));
      const ch = await conn.openChannel();
      const { queue } = await ch.queueDeclare('', { exclusive: true });
      const consumer = await ch.basicConsume(queue, {}, () => {});
      const channelClose = deferred<unknown>();
      ch.on('close', (err) => channelClose.resolve(err));
      const pid = await connectionPid(name);
      // Keep calls queued on the channel the whole time, so the close finds some pending: several loops
      // so that at any moment one call is in flight and others wait behind it.
      let calls = 0;
      const loops = Array.from({ length: 4 }, async () => {
        for (;;) {
          await ch.queueDeclare(queue, { passive: true });
          calls++;
        }
      });
      const ended = Promise.allSettled(loops);
      await rabbitmqctl('close_connection', pid, 'warren integration test');

      const err = await within(closeEvent.promise, 5000, 'the close event');
      assert.ok(err instanceof ConnectionClosedByServer, String(err));
      assert.equal(err.replyCode, 320);
      assert.match(err.replyText, /warren integration test/);
      assert.equal(err.recoverable, true);
      assert.equal(await conn.closed, err);
      assert.equal(conn.isOpen, false);

      const reasons = (await ended).map((r) => (r.status === 'rejected' ? r.reason : undefined));
      assert.ok(calls > 0);
      // A call that was pending gets the close error itself; a loop whose call had just completed in the
      // same read as the close gets ClosedError caused by it on its next call.
      for (const reason of reasons) {
        const ok = reason === err || (reason instanceof ClosedError && reason.cause === err);
        assert.ok(ok, `a loop ended with ${String(reason)}`);
      }
      assert.ok(
        reasons.some((r) => r instanceof ConnectionClosedByServer),
        'no call was pending when the close arrived',
      );
      assert.equal(await within(channelClose.promise, 1000, 'the channel close event'), err);
      assert.equal(ch.isOpen, false);
      const cancelled = await within(consumer.cancelled, 1000, 'the consumer to stop');
      assert.equal(cancelled.serverCancelled, false);
      assert.equal(cancelled.error, err);

      const later = await rejection(ch.queueDeclare(queue, { passive: true }));
      assert.ok(later instanceof ClosedError, String(later));
      assert.equal(later.cause, err);
      const publish = await rejection(ch.basicPublish('', queue, Buffer.from('x')));
      assert.ok(publish instanceof ClosedError, String(publish));
      const open = await rejection(conn.openChannel());
      assert.ok(open instanceof ClosedError, String(open));
    } finally {
      await conn.close(); // a no-op when the broker closed it
    }
  });
});
