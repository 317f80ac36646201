/**
 * client.stats() / client.health() and the `logger` option against the real broker: the snapshot
 * follows connects, cuts, publishes and subscriptions; the logger hears what nobody listens for,
 * instead of process warnings; a throwing logger is contained.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UserCodeError } from '../../src/index.js';
import { withChannel } from '../support/broker.js';
import { fileFixture } from '../support/client.js';
import { startProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait.js';

const { clients, resources } = fileFixture();

const fast = { backoff: { initialDelay: 20, maxDelay: 200 } };

function collectWarnings(): { warnings: Error[]; stop: () => void } {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  return { warnings, stop: () => process.off('warning', onWarning) };
}

class MemoryLogger {
  readonly lines: string[] = [];
  debug(m: string) {
    this.lines.push(`debug ${m}`);
  }
  info(m: string) {
    this.lines.push(`info ${m}`);
  }
  warn(m: string) {
    this.lines.push(`warn ${m}`);
  }
  error(m: string) {
    this.lines.push(`error ${m}`);
  }
}

describe('stats() and health()', () => {
  test('follow the client from connecting to connected, a cut, and close', async () => {
    const proxy = await startProxy({ target: { host: '127.0.0.1', port: 5672 } });
    try {
      await proxy.refuse(true, 'reset');
      const client = clients.make({ name: 'stats', urls: [proxy.url()], ...fast });
      assert.equal(client.stats().state, 'connecting');
      await waitFor(() => client.stats().connectFailures >= 1, { what: 'a failed attempt' });
      assert.equal(client.health().ok, false);
      assert.ok(client.stats().lastError !== undefined);
      await proxy.refuse(false);
      await client.ready();
      const queue = resources.queue('stats');
      await client.declareQueue(queue);
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const sub = client.consume(queue, () => gate, { prefetch: 7 });
      await sub.ready();
      await withChannel((ch) => ch.basicPublish('', queue, Buffer.from('x')));
      await waitFor(() => sub.runningCount === 1, { what: 'a running handler' });
      const stats = client.stats();
      assert.equal(stats.state, 'connected');
      assert.equal(stats.reconnects, 0);
      assert.ok(stats.connection);
      assert.equal(stats.connection.url, `amqp://guest:***@127.0.0.1:${proxy.port}`);
      assert.equal(stats.connection.port, proxy.port);
      assert.match(stats.connection.version ?? '', /^3\./);
      assert.ok(Date.now() - Date.parse(stats.connection.since) < 10_000);
      assert.deepEqual(stats.consumers, [
        { queue, active: true, consumerTag: sub.consumerTag, prefetch: 7, running: 1, buffered: 0 },
      ]);
      assert.ok(!JSON.stringify(stats).includes('guest:guest'), 'no password in the snapshot');
      assert.deepEqual(client.health(), { ok: true, state: 'connected', reasons: [] });

      const pub = client.publisher();
      await pub.publish('', queue, 'y');
      assert.deepEqual(client.stats().publishers, { count: 1, pending: 0, inFlight: 0 });

      release();
      proxy.cutAll();
      await waitFor(() => client.stats().state === 'reconnecting' || client.stats().reconnects === 1, {
        what: 'the cut seen',
      });
      await waitFor(() => client.stats().reconnects === 1 && client.health().ok, { what: 'reconnected and healthy' });
      assert.equal(client.stats().connection?.generation, 2);
      assert.ok(client.stats().lastError !== undefined);
      await client.close();
      assert.equal(client.stats().state, 'closed');
      assert.deepEqual(client.health(), { ok: false, state: 'closed', reasons: ['closed'] });
    } finally {
      await clients.closeAll();
      await proxy.close();
    }
  });

  test('a subscription that cannot subscribe makes the client unhealthy', async () => {
    const client = clients.make({ name: 'stats-404', ...fast });
    await client.ready();
    const missing = resources.queue('missing');
    const sub = client.consume(missing, () => {});
    sub.on('error', () => {});
    await new Promise((r) => setTimeout(r, 100));
    const health = client.health();
    assert.equal(health.ok, false);
    assert.deepEqual(health.reasons, [`not subscribed to '${missing}'`]);
    await sub.cancel();
    assert.equal(client.health().ok, true);
  });
});

describe('logger', () => {
  test('hears reconnects, handler errors and a broker cancel instead of process warnings', async () => {
    const proxy = await startProxy({ target: { host: '127.0.0.1', port: 5672 } });
    const { warnings, stop } = collectWarnings();
    try {
      const logger = new MemoryLogger();
      const client = clients.make({ name: 'logger', urls: [proxy.url()], logger, ...fast });
      const queue = resources.queue('logger');
      await client.declareQueue(queue);
      const sub = client.consume(
        queue,
        () => {
          throw new Error('boom');
        },
        { retry: false, requeueOnError: false },
      );
      await sub.ready();
      await withChannel((ch) => ch.basicPublish('', queue, Buffer.from('x')));
      await waitFor(() => logger.lines.some((l) => l.includes('boom')), { what: 'the handler error logged' });
      proxy.cutAll();
      await waitFor(() => logger.lines.some((l) => l.startsWith('info warren: connected to')), {
        what: 'the reconnect logged',
      });
      await sub.ready();
      await withChannel((ch) => ch.queueDelete(queue));
      await waitFor(() => logger.lines.some((l) => l.includes('cancel')), { what: 'the broker cancel logged' });
      assert.ok(
        logger.lines.some((l) => l.startsWith('warn warren: lost the connection')),
        logger.lines.join('\n'),
      );
      assert.ok(
        logger.lines.some((l) => /^error warren: the message handler .* threw.*Error: boom/.test(l)),
        logger.lines.join('\n'),
      );
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(warnings, [], 'nothing went to process warnings');
    } finally {
      stop();
      await clients.closeAll();
      await proxy.close();
    }
  });

  test('a logger that throws is contained: the client reconnects, one UserCodeError is reported', async () => {
    const proxy = await startProxy({ target: { host: '127.0.0.1', port: 5672 } });
    const { warnings, stop } = collectWarnings();
    try {
      const thrown = new Error('logger bug');
      const broken = {
        debug() {
          throw thrown;
        },
        info() {
          throw thrown;
        },
        warn() {
          throw thrown;
        },
        error() {
          throw thrown;
        },
      };
      const client = clients.make({ name: 'logger-throws', urls: [proxy.url()], logger: broken, ...fast });
      await client.ready();
      proxy.cutAll();
      await waitFor(() => client.stats().reconnects === 1 && client.isConnected, { what: 'the reconnect' });
      await waitFor(() => warnings.length > 0, { what: 'the report' });
      const reports = warnings.filter((w) => w instanceof UserCodeError);
      assert.equal(reports.length, 1, 'the same thrown error is reported once');
      assert.match((reports[0] as UserCodeError).source, /^logger\./);
    } finally {
      stop();
      await clients.closeAll();
      await proxy.close();
    }
  });

  test('without a logger, nothing new is printed: handler errors still go to one process warning', async () => {
    const { warnings, stop } = collectWarnings();
    try {
      const client = clients.make({ name: 'no-logger', ...fast });
      const queue = resources.queue('no-logger');
      await client.declareQueue(queue);
      const sub = client.consume(
        queue,
        () => {
          throw new Error('unheard');
        },
        { retry: false, requeueOnError: false },
      );
      await sub.ready();
      await withChannel((ch) => ch.basicPublish('', queue, Buffer.from('x')));
      await waitFor(() => warnings.length === 1, { what: 'the warning' });
      assert.ok(warnings[0] instanceof UserCodeError);
      await sub.cancel();
    } finally {
      stop();
    }
  });
});
