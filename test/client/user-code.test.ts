/**
 * User code can never break the client (guarantee 2): listeners of the robust client, its
 * subscriptions and publishers, and of the low-level connection, channel and consumer, and the
 * `debug` frame printer, may throw (or reject). The client reconnects, publishes resolve, handlers
 * go on, `close()` resolves; each throw is reported exactly once as a `UserCodeError` process
 * warning; nothing becomes an unhandled rejection or an uncaught exception.
 */
import assert from 'node:assert/strict';
import { afterEach, before, beforeEach, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AuthenticationError,
  ChannelClosedByServer,
  MessageReturned,
  USER_CODE_ERROR_CODE,
  UserCodeError,
} from '../../src/index.js';
import { AMQP_URL, openConnection, rejection, withChannel } from '../support/broker.js';
import { fileFixture } from '../support/client.js';
import { startFakeServer } from '../support/fake-server.js';
import type { TcpProxy } from '../support/tcp-proxy.js';
import { waitFor, within } from '../support/wait.js';

const backoff = { initialDelay: 10, maxDelay: 50 };
const { clients, resources, brokerProxy } = fileFixture();
let proxy: TcpProxy;

/** What the process saw during one test. */
let warnings: Error[] = [];
let crashes: unknown[] = [];
const onWarning = (w: Error): void => {
  if (w.name === 'UserCodeError') warnings.push(w);
};
const onCrash = (err: unknown): void => {
  crashes.push(err);
};

before(async () => {
  proxy = await brokerProxy();
});
beforeEach(() => {
  warnings = [];
  crashes = [];
  process.on('warning', onWarning);
  process.on('unhandledRejection', onCrash);
  process.on('uncaughtException', onCrash);
});
afterEach(() => {
  process.off('warning', onWarning);
  process.off('unhandledRejection', onCrash);
  process.off('uncaughtException', onCrash);
});

/** Messages ready in `queue`, on a connection of its own. */
function readyCount(queue: string): Promise<number> {
  return withChannel(async (ch) => (await ch.queueDeclare(queue, { passive: true })).messageCount);
}

/** A listener that throws a fresh error each call, remembered in `thrown`. */
function thrower(thrown: Error[], what: string): () => never {
  return () => {
    const error = new Error(`listener bug in ${what}`);
    thrown.push(error);
    throw error;
  };
}

/** Each error in `thrown` was reported once, as a UserCodeError warning with it as the cause; nothing crashed. */
async function assertReportedOnce(thrown: unknown[]): Promise<void> {
  await sleep(20); // warnings are emitted on the next tick
  assert.ok(thrown.length > 0, 'the throwing listeners ran');
  for (const error of thrown) {
    const reports = warnings.filter((w) => w.cause === error);
    assert.equal(reports.length, 1, `reported ${reports.length} times: ${String(error)}`);
    const report = reports[0]!;
    assert.ok(report instanceof UserCodeError);
    assert.equal((report as UserCodeError).code, USER_CODE_ERROR_CODE);
    assert.match(report.message, /threw \(warren contained it and carried on\)/);
  }
  assert.equal(warnings.length, thrown.length, `extra reports: ${warnings.map((w) => w.message).join('; ')}`);
  assert.deepEqual(crashes, [], 'an unhandled rejection or uncaught exception');
}

test('throwing connect, disconnect and close listeners: the client reconnects, publishes resolve, close() resolves', {
  timeout: 30_000,
}, async () => {
  const queue = resources.queue('user-code-reconnect');
  const client = clients.make({ urls: [proxy.url()], backoff });
  const thrown: Error[] = [];
  client.on('connect', thrower(thrown, 'connect'));
  client.on('disconnect', thrower(thrown, 'disconnect'));
  client.on('close', thrower(thrown, 'close'));
  // Listeners after a throwing one still run.
  let connects = 0;
  let disconnects = 0;
  let closes = 0;
  client.on('connect', () => connects++);
  client.on('disconnect', () => disconnects++);
  client.on('close', () => closes++);
  await client.declareQueue(queue);
  const pub = client.publisher();
  await within(pub.publish('', queue, Buffer.from('one')), 5000, 'the first publish');
  assert.equal(connects, 1);

  proxy.cutAll();
  await waitFor(() => connects === 2, { what: 'a reconnect after the throwing disconnect listener', timeout: 10_000 });
  assert.equal(disconnects, 1);
  await within(pub.publish('', queue, Buffer.from('two')), 5000, 'a publish after the reconnect');
  proxy.cutAll();
  await waitFor(() => connects === 3, { what: 'a second reconnect', timeout: 10_000 });
  await within(pub.publish('', queue, Buffer.from('three')), 5000, 'a publish after the second reconnect');

  await within(client.close({ timeout: 2000 }), 5000, 'close()');
  assert.equal(closes, 1);
  assert.equal(await readyCount(queue), 3);
  assert.equal(thrown.length, 3 + 2 + 1);
  await assertReportedOnce(thrown);
});

test('a throwing async disconnect listener is contained too (no unhandled rejection)', {
  timeout: 20_000,
}, async () => {
  const client = clients.make({ urls: [proxy.url()], backoff });
  const thrown: Error[] = [];
  client.on('disconnect', async () => {
    const error = new Error('async listener bug');
    thrown.push(error);
    throw error;
  });
  let connects = 0;
  client.on('connect', () => connects++);
  await within(client.ready(), 5000, 'connected');
  proxy.cutAll();
  await waitFor(() => connects === 2, { what: 'a reconnect', timeout: 10_000 });
  await within(client.close({ timeout: 2000 }), 5000, 'close()');
  await assertReportedOnce(thrown);
});

test('throwing connectFailed and error listeners: the refusal still rejects, close is still emitted, close() resolves', {
  timeout: 20_000,
}, async () => {
  const client = clients.make({ urls: [AMQP_URL.replace('guest:guest@', 'guest:not-the-password@')], backoff });
  const thrown: Error[] = [];
  client.on('connectFailed', thrower(thrown, 'connectFailed'));
  client.on('error', thrower(thrown, 'error'));
  let closed = false;
  client.on('close', () => {
    closed = true;
  });
  const err = await rejection(within(client.ready(), 10_000, 'the refusal'));
  assert.ok(err instanceof AuthenticationError, String(err));
  await waitFor(() => closed, { what: "the 'close' event", timeout: 2000 });
  await within(client.close({ timeout: 1000 }), 3000, 'close()');
  assert.equal(thrown.length, 2);
  await assertReportedOnce(thrown);
});

test('a throwing handlerError listener does not stall the subscription', { timeout: 20_000 }, async () => {
  const queue = resources.queue('user-code-handler-error');
  const client = clients.make({ urls: [AMQP_URL], backoff });
  await client.declareQueue(queue);
  const handled: string[] = [];
  const sub = client.consume(
    queue,
    (msg) => {
      const text = msg.body.toString();
      handled.push(text);
      if (text.startsWith('bad')) throw new Error(`handler refuses ${text}`);
    },
    { requeueOnError: false, concurrency: 1, prefetch: 1 },
  );
  const thrown: Error[] = [];
  const handlerErrors: unknown[] = [];
  sub.on('handlerError', thrower(thrown, 'handlerError'));
  sub.on('handlerError', (error) => handlerErrors.push(error));
  await sub.ready();
  const pub = client.publisher();
  for (const text of ['bad-1', 'good-1', 'bad-2', 'good-2', 'good-3']) await pub.publish('', queue, Buffer.from(text));
  await waitFor(() => handled.length === 5, { what: 'every message handled', timeout: 10_000 });
  assert.deepEqual(handled, ['bad-1', 'good-1', 'bad-2', 'good-2', 'good-3']);
  assert.equal(handlerErrors.length, 2, 'the later handlerError listener ran each time');
  await within(client.close({ timeout: 2000 }), 5000, 'close()');
  assert.equal(await readyCount(queue), 0);
  await assertReportedOnce(thrown);
});

test("a throwing publisher 'return' listener: the publish rejects with MessageReturned, the connection lives on", {
  timeout: 20_000,
}, async () => {
  const queue = resources.queue('user-code-return');
  const client = clients.make({ urls: [AMQP_URL], backoff });
  let disconnects = 0;
  client.on('disconnect', () => disconnects++);
  await client.declareQueue(queue);
  const pub = client.publisher();
  const thrown: Error[] = [];
  pub.on('return', thrower(thrown, 'return'));
  const err = await rejection(
    within(pub.publish('', `${queue}-nowhere`, Buffer.from('lost'), {}, { mandatory: true }), 5000, 'the return'),
  );
  assert.ok(err instanceof MessageReturned, String(err));
  await within(pub.publish('', queue, Buffer.from('after')), 5000, 'a publish after the return');
  assert.equal(disconnects, 0, 'the connection was not killed');
  await within(client.close({ timeout: 2000 }), 5000, 'close()');
  assert.equal(await readyCount(queue), 1);
  await assertReportedOnce(thrown);
});

test("low level: a throwing channel 'close' listener does not kill the connection", { timeout: 20_000 }, async () => {
  const conn = await openConnection();
  try {
    const thrown: Error[] = [];
    conn.on('close', thrower(thrown, 'connection close'));
    const ch = await conn.openChannel();
    ch.on('close', thrower(thrown, 'channel close'));
    const err = await rejection(ch.queueDeclare(resources.queue('user-code-missing'), { passive: true }));
    assert.ok(err instanceof ChannelClosedByServer && err.replyCode === 404, String(err));
    const other = await within(conn.openChannel(), 5000, 'another channel');
    const queue = resources.queue('user-code-low');
    await other.queueDeclare(queue);
    assert.ok(conn.isOpen);
    await within(conn.close(), 5000, 'close()');
    assert.equal(thrown.length, 2);
    await assertReportedOnce(thrown);
  } finally {
    await conn.close();
  }
});

test("low level: a throwing consumer 'handlerError' listener does not kill the connection", {
  timeout: 20_000,
}, async () => {
  const queue = resources.queue('user-code-consumer');
  const conn = await openConnection();
  try {
    const ch = await conn.openChannel();
    await ch.queueDeclare(queue);
    const seen: string[] = [];
    const thrown: Error[] = [];
    const consumer = await ch.basicConsume(queue, { noAck: true }, (msg) => {
      seen.push(msg.body.toString());
      throw new Error('handler bug');
    });
    consumer.on('handlerError', thrower(thrown, 'handlerError'));
    await ch.basicPublish('', queue, Buffer.from('a'));
    await ch.basicPublish('', queue, Buffer.from('b'));
    await waitFor(() => seen.length === 2, { what: 'both deliveries', timeout: 5000 });
    await within(ch.queueDeclare(queue, { passive: true }), 5000, 'the channel still answers');
    assert.ok(conn.isOpen, 'the connection is open');
    assert.equal(thrown.length, 2);
    await assertReportedOnce(thrown);
  } finally {
    await conn.close();
  }
});

test('low level: a throwing debug printer does not break the handshake or the frames it traces', {
  timeout: 20_000,
}, async () => {
  let calls = 0;
  const conn = await within(
    openConnection({
      debug: () => {
        calls++;
        throw new Error(`logger bug ${calls}`);
      },
    }),
    5000,
    'a connection with a throwing debug printer',
  );
  try {
    await withChannel(async (ch) => {
      const queue = resources.queue('user-code-debug');
      await ch.queueDeclare(queue);
      await ch.basicPublish('', queue, Buffer.from('x'));
    }, conn);
    assert.ok(conn.isOpen);
    assert.ok(calls > 10, `the printer was called (${calls})`);
    await sleep(20);
    assert.equal(warnings.length, calls, 'each throw of the printer is reported once');
    assert.deepEqual(crashes, []);
  } finally {
    await conn.close();
  }
});

test("a handler that throws with nobody listening for 'handlerError' is reported once, through the same path", {
  timeout: 20_000,
}, async () => {
  const queue = resources.queue('user-code-unheard');
  const client = clients.make({ urls: [AMQP_URL], backoff });
  await client.declareQueue(queue);
  const thrown: Error[] = [];
  let handled = 0;
  const sub = client.consume(
    queue,
    () => {
      handled++;
      const error = new Error(`handler failure ${handled}`);
      thrown.push(error);
      throw error;
    },
    { requeueOnError: false },
  );
  await sub.ready();
  const pub = client.publisher();
  await pub.publish('', queue, Buffer.from('a'));
  await pub.publish('', queue, Buffer.from('b'));
  await waitFor(() => handled === 2, { what: 'both deliveries', timeout: 5000 });
  await within(client.close({ timeout: 2000 }), 5000, 'close()');
  // The first failure is reported; later ones are not (the subscription says so in the report).
  await assertReportedOnce(thrown.slice(0, 1));
  assert.match(warnings[0]!.message, /nobody listens for 'handlerError'/);
});

test('throwing blocked and unblocked listeners (client and connection): the connection lives on, state is updated', {
  timeout: 20_000,
}, async () => {
  const server = await startFakeServer(async (s) => {
    await s.handshake();
    await sleep(200); // the client has attached its listeners to the new connection
    s.send(0, 'connection.blocked', { reason: 'low on memory' });
    await sleep(100);
    s.send(0, 'connection.unblocked', {});
    await s.expectClose({ timeoutMs: 10_000 });
  });
  try {
    const client = clients.make({ urls: [server.url], backoff });
    const thrown: Error[] = [];
    const seen: string[] = [];
    let disconnects = 0;
    client.on('disconnect', () => disconnects++);
    client.on('blocked', thrower(thrown, 'blocked'));
    client.on('unblocked', thrower(thrown, 'unblocked'));
    client.on('blocked', (reason) => seen.push(`blocked ${reason}`));
    client.on('unblocked', () => seen.push('unblocked'));
    await waitFor(() => seen.length === 2, { what: 'blocked then unblocked', timeout: 5000 });
    assert.deepEqual(seen, ['blocked low on memory', 'unblocked']);
    assert.equal(client.isBlocked, false);
    assert.equal(client.isConnected, true);
    assert.equal(disconnects, 0, 'the connection was not killed');
    await within(client.close({ timeout: 2000 }), 5000, 'close()');
    await server.done();
    await assertReportedOnce(thrown);
  } finally {
    await server.close();
  }
});
