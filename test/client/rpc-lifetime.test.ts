/**
 * RPC over direct reply-to, the RPC server, and the client's lifetime rules: refused credentials are
 * fatal (an 'error' event and rejected waiters) unless `retryRefused`, bad options throw at once, and
 * the backoff policy's bounds.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  AbortError,
  AuthenticationError,
  Backoff,
  ClosedError,
  createClient,
  InvalidArgumentError,
  MessageReturned,
  TimeoutError,
} from '../../src/index.js';
import { fileFixture } from '../support/client.js';
import { waitFor, nextEvent } from '../support/wait.js';

const { clients, resources } = fileFixture();

describe('rpc', () => {
  test('rpc() gets the reply of rpcServer(); concurrent calls are matched by correlation id', async () => {
    const client = clients.make({ name: 'rpc' });
    const queue = resources.queue('rpc');
    await client.declareQueue(queue);
    const server = client.rpcServer(
      queue,
      async (req) => {
        const [a, b] = req.json<[number, number]>();
        return { body: JSON.stringify(a + b), properties: { contentType: 'application/json' } };
      },
      { concurrency: 8 },
    );
    await server.ready();
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, i) => client.rpc(queue, JSON.stringify([i, 1000]), { timeout: 5000 })),
    );
    assert.deepEqual(
      replies.map((r) => r.json<number>()),
      Array.from({ length: 50 }, (_, i) => i + 1000),
    );
    assert.equal(replies[0]!.properties.contentType, 'application/json');
    await server.cancel();
  });

  test('rpc() rejects with TimeoutError, MessageReturned (no such queue) and AbortError', async () => {
    const client = clients.make({ name: 'rpc-fail' });
    const silent = resources.queue('silent');
    await client.declareQueue(silent);
    const started = Date.now();
    await assert.rejects(client.rpc(silent, 'anyone?', { timeout: 200 }), TimeoutError);
    assert.ok(Date.now() - started >= 190);
    await assert.rejects(client.rpc(resources.queue('absent'), 'x', { timeout: 5000 }), MessageReturned);
    const controller = new AbortController();
    const call = client.rpc(silent, 'x', { signal: controller.signal });
    controller.abort();
    await assert.rejects(call, AbortError);
  });

  test('a throwing RPC handler does not requeue the request by default, and the caller times out', async () => {
    const client = clients.make({ name: 'rpc-throw' });
    const queue = resources.queue('rpc-throw');
    await client.declareQueue(queue);
    let calls = 0;
    const server = client.rpcServer(queue, () => {
      calls++;
      throw new Error('bad request');
    });
    server.on('handlerError', () => {});
    await server.ready();
    await assert.rejects(client.rpc(queue, 'x', { timeout: 300 }), TimeoutError);
    assert.equal(calls, 1);
    await server.cancel();
  });
});

describe('client lifetime', () => {
  test("refused credentials are fatal: 'error' event, ready() and waiting work reject, then ClosedError", async () => {
    const client = createClient('amqp://guest:wrong-password@127.0.0.1:5672', { name: 'bad-auth' });
    const failed = nextEvent<[Error]>(client, 'error');
    const pub = client.publisher();
    const waiting = pub.publish('', 'q', 'x');
    const declaring = client.declareQueue('q');
    const [err] = await failed;
    assert.ok(err instanceof AuthenticationError);
    assert.doesNotMatch(err.message, /wrong-password/);
    await assert.rejects(waiting, AuthenticationError);
    await assert.rejects(declaring, AuthenticationError);
    await assert.rejects(client.ready(), AuthenticationError);
    await assert.rejects(client.declareQueue('q'), ClosedError);
    assert.ok(client.isClosed);
    await client.close();
  });

  test('with retryRefused, refused credentials are retried with backoff', async () => {
    const client = clients.make({
      urls: ['amqp://guest:wrong-password@127.0.0.1:5672'],
      retryRefused: true,
      backoff: { initialDelay: 20, maxDelay: 50 },
    });
    let failures = 0;
    client.on('connectFailed', (err) => {
      assert.ok(err instanceof AuthenticationError);
      failures++;
    });
    client.on('error', () => assert.fail('not fatal with retryRefused'));
    await waitFor(() => failures >= 3, { what: 'three attempts' });
    assert.ok(!client.isClosed);
    await client.close();
  });

  test('malformed URLs and options throw InvalidArgumentError at once', () => {
    assert.throws(() => createClient('http://nope'), InvalidArgumentError);
    assert.throws(() => createClient({ urls: ['amqp://h'], connectionAttempts: 0 }), InvalidArgumentError);
    assert.throws(() => createClient({ backoff: { factor: 0.5 } }), InvalidArgumentError);
  });

  test('backoff: full jitter below an exponentially growing ceiling, or spaced between half of it and all', () => {
    const b = new Backoff({ initialDelay: 100, maxDelay: 1000, factor: 2 });
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 50].map((r) => b.ceiling(r)),
      [0, 100, 200, 400, 800, 1000, 1000],
    );
    b.random = () => 0.999999;
    assert.equal(b.delay(3), 400);
    b.random = () => 0;
    assert.equal(b.delay(3), 0);
    // Spaced: never below half the ceiling, never above it.
    assert.equal(b.spacedDelay(3), 200);
    b.random = () => 0.999999;
    assert.equal(b.spacedDelay(3), 400);
    assert.equal(b.spacedDelay(50), 1000);
    assert.equal(b.spacedDelay(0), 0);
  });
});
