/**
 * Connections against the real broker: the ways to connect, refused handshakes, channel-id limits,
 * closing with work in flight, and update-secret. (What the broker lists about us and forced closes are
 * in broker-view.test.ts; percent-encoded credentials in credentials.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  AbortError,
  AuthenticationError,
  ChannelError,
  ClosedError,
  connect,
  HandshakeError,
  SocketError,
  TimeoutError,
} from '../../src/index.js';
import { AMQP_URL, deferred, errorText, rejection, uniqueName, withChannel } from '../support/broker.js';
import { within } from '../support/wait.js';

const base = new URL(AMQP_URL);
const HOST = base.hostname;
const PORT = Number(base.port || 5672);

describe('connect', () => {
  test('by URL: the handshake completes and close() ends it cleanly', async () => {
    const conn = await connect(AMQP_URL);
    assert.equal(conn.isOpen, true);
    assert.equal(conn.serverProperties.product, 'RabbitMQ');
    assert.equal(typeof conn.serverProperties.version, 'string');
    const closeEvent = deferred<unknown>();
    conn.on('close', (err) => closeEvent.resolve(err));
    await withChannel(async (ch) => {
      const { queue } = await ch.queueDeclare('', { exclusive: true });
      assert.match(queue, /^amq\.gen-/);
    }, conn);
    await conn.close();
    assert.equal(conn.isOpen, false);
    assert.equal(await conn.closed, undefined);
    assert.equal(await closeEvent.promise, undefined);
    await conn.close(); // idempotent
    const err = await rejection(conn.openChannel());
    assert.ok(err instanceof ClosedError, String(err));
  });

  test('by options object', async () => {
    const conn = await connect({
      host: HOST,
      port: PORT,
      username: decodeURIComponent(base.username || 'guest'),
      password: decodeURIComponent(base.password || 'guest'),
      vhost: '/',
      heartbeat: 11,
    });
    try {
      assert.equal(conn.isOpen, true);
      assert.equal(conn.heartbeat, 11);
      assert.deepEqual(conn.endpoint, { host: HOST, port: PORT, vhost: '/' });
    } finally {
      await conn.close();
    }
  });

  test('by array of URLs: a refused one is skipped, the next one is used', async () => {
    const conn = await connect([`amqp://guest:guest@127.0.0.1:1`, AMQP_URL]);
    try {
      assert.equal(conn.isOpen, true);
      assert.equal(conn.endpoint.port, PORT);
    } finally {
      await conn.close();
    }
  });

  test('by array of URLs: when all fail, the last error is thrown and no password leaks', async () => {
    const secret = 'Arr4ySecretPw';
    const err = await rejection(connect([`amqp://u:${secret}@127.0.0.1:1`, `amqp://u:${secret}@127.0.0.1:2`]));
    assert.ok(err instanceof SocketError, String(err));
    assert.match(err.message, /127\.0\.0\.1:2/);
    assert.ok(!errorText(err).includes(secret));
  });

  test('a refused port is a SocketError naming the address, without the password', async () => {
    const secret = 'R3fusedSecretPw';
    const err = await rejection(connect(`amqp://guest:${secret}@127.0.0.1:1`));
    assert.ok(err instanceof SocketError, String(err));
    assert.equal(err.recoverable, true);
    assert.match(err.message, /127\.0\.0\.1:1/);
    assert.ok(!errorText(err).includes(secret));
  });

  test('an aborted signal rejects with AbortError', async () => {
    const err = await rejection(connect(AMQP_URL, { signal: AbortSignal.abort() }));
    assert.ok(err instanceof AbortError, String(err));
  });

  test('connection_timeout=1 cannot be met: TimeoutError', async () => {
    const err = await rejection(connect(`${AMQP_URL}?connection_timeout=1`));
    assert.ok(err instanceof TimeoutError, String(err));
  });
});

describe('channel ids under channel_max=3', () => {
  test('a 4th channel rejects with ChannelError; closed ids are reused', async () => {
    const conn = await connect(`${AMQP_URL}?channel_max=3`);
    try {
      const chs = [await conn.openChannel(), await conn.openChannel(), await conn.openChannel()];
      assert.deepEqual(
        chs.map((c) => c.id),
        [1, 2, 3],
      );
      const err = await rejection(conn.openChannel());
      assert.ok(err instanceof ChannelError, String(err));
      assert.match(err.message, /3/);
      await chs[1]!.close();
      const again = await conn.openChannel();
      assert.equal(again.id, 2);
      // The reused id really works on the broker.
      const { queue } = await again.queueDeclare('', { exclusive: true });
      assert.match(queue, /^amq\.gen-/);
      assert.equal(conn.isOpen, true);
    } finally {
      await conn.close();
    }
  });
});

describe('refused handshakes', () => {
  test('a wrong password is AuthenticationError and the password appears nowhere', async () => {
    const secret = `Wr0ngPassw0rd-${process.pid}`;
    const err = await rejection(connect(`amqp://guest:${encodeURIComponent(secret)}@${HOST}:${PORT}`));
    assert.ok(err instanceof AuthenticationError, String(err));
    assert.ok(err instanceof HandshakeError);
    assert.equal(err.recoverable, false);
    assert.match(err.message, /guest/);
    assert.ok(!errorText(err).includes(secret), errorText(err));
    assert.ok(!JSON.stringify(err).includes(secret));
  });

  test('a wrong password with AMQPLAIN is AuthenticationError too', async () => {
    const secret = `Wr0ngAmqplain-${process.pid}`;
    const err = await rejection(
      connect({ host: HOST, port: PORT, username: 'guest', password: secret, mechanism: 'AMQPLAIN' }),
    );
    assert.ok(err instanceof AuthenticationError, String(err));
    assert.ok(!errorText(err).includes(secret));
  });

  test('an unknown vhost is HandshakeError (not AuthenticationError) naming the vhost', async () => {
    const vhost = uniqueName('no-such-vhost');
    const err = await rejection(connect(`${AMQP_URL}/${encodeURIComponent(vhost)}`));
    assert.ok(err instanceof HandshakeError, String(err));
    assert.ok(!(err instanceof AuthenticationError));
    assert.ok(err.message.includes(vhost), err.message);
  });
});

describe('closing with work in flight', () => {
  test('close() settles every pending call, publish and consumer; concurrent close() calls all resolve', async () => {
    const conn = await connect(AMQP_URL);
    const ch = await conn.openChannel();
    await ch.confirmSelect();
    const { queue } = await ch.queueDeclare('', { exclusive: true });
    const consumer = await ch.basicConsume(queue, { noAck: true }, () => {});
    const publishes = Array.from({ length: 500 }, (_, i) => ch.basicPublish('', queue, Buffer.from(`m${i}`)));
    const calls = Array.from({ length: 20 }, () => ch.queueDeclare(queue, { passive: true }));
    await Promise.all([conn.close(), conn.close(), conn.close()]);
    const settled = await within(Promise.allSettled([...publishes, ...calls]), 2000, 'everything to settle');
    for (const r of settled) {
      if (r.status === 'rejected') assert.ok(r.reason instanceof ClosedError, String(r.reason));
    }
    const info = await within(consumer.cancelled, 1000, 'the consumer to stop');
    assert.equal(info.serverCancelled, false);
    assert.equal(ch.isOpen, false);
    const err = await rejection(conn.openChannel());
    assert.ok(err instanceof ClosedError);
  });
});

describe('update-secret', () => {
  test('on a PLAIN connection RabbitMQ 3.10 answers update-secret-ok and the connection goes on', async () => {
    const conn = await connect(AMQP_URL);
    try {
      await conn.updateSecret('guest', 'integration test');
      await conn.updateSecret(Buffer.from('guest'), 'integration test, bytes');
      assert.equal(conn.isOpen, true);
      await withChannel(async (ch) => {
        await ch.queueDeclare('', { exclusive: true });
      }, conn);
    } finally {
      await conn.close();
    }
  });

  test('the internal auth backend does not check the new secret: a wrong one is accepted too', async () => {
    // Documents what RabbitMQ 3.10 does: rabbit_auth_backend_internal:update_state/2 accepts anything.
    const conn = await connect(AMQP_URL);
    try {
      await conn.updateSecret('not-the-password', 'integration test');
      assert.equal(conn.isOpen, true);
      await withChannel(async (ch) => {
        await ch.queueDeclare('', { exclusive: true });
      }, conn);
    } finally {
      await conn.close();
    }
  });

  test('after close, updateSecret throws ClosedError', async () => {
    const conn = await connect(AMQP_URL);
    await conn.close();
    const err = await rejection(conn.updateSecret('guest'));
    assert.ok(err instanceof ClosedError, String(err));
  });
});
