/**
 * amqp-connection-manager, unmodified, on top of warren/amqplib: its `require('amqplib')` is
 * resolved to warren's entry point, and its own reconnect logic (new connection, new channel, setup
 * run again, queued publishes sent) works across a cut connection against the real broker.
 */
import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import Module, { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as Amqplib from 'amqplib';
import { connect as warrenConnect } from '../../src/index.js';
import { AMQP_URL, rabbitmqctl, uniqueName } from '../support/broker.js';
import { startProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { nextEvent } from '../support/wait.js';

const require = createRequire(import.meta.url);
const warrenEntry = fileURLToPath(new URL('../../src/amqplib/index.ts', import.meta.url));

/** Module._resolveFilename, which node's types leave out. */
const loader = Module as unknown as {
  _resolveFilename(request: string, parent: { filename?: string } | undefined, ...rest: unknown[]): string;
};
const resolveFilename = loader._resolveFilename;
const redirected: string[] = [];

interface Manager extends EventEmitter {
  createChannel(options: { json?: boolean; setup?: (ch: Amqplib.ConfirmChannel) => Promise<unknown> }): Wrapper;
  close(): Promise<void>;
}
interface Wrapper extends EventEmitter {
  waitForConnect(): Promise<void>;
  sendToQueue(queue: string, content: Buffer, options?: Amqplib.Options.Publish): Promise<boolean>;
  close(): Promise<void>;
}

describe('amqp-connection-manager on warren/amqplib', () => {
  let proxy: TcpProxy;
  let amqpcm: { connect(urls: string[], options: Record<string, unknown>): Manager };

  before(async () => {
    loader._resolveFilename = function (request, parent, ...rest) {
      if (request === 'amqplib' && parent?.filename?.includes('amqp-connection-manager')) {
        redirected.push(parent.filename);
        return warrenEntry;
      }
      return resolveFilename.call(this, request, parent, ...rest);
    };
    amqpcm = require('amqp-connection-manager');
    const u = new URL(AMQP_URL);
    proxy = await startProxy({ target: { host: u.hostname, port: Number(u.port || 5672) } });
  });

  after(async () => {
    loader._resolveFilename = resolveFilename;
    await proxy.close();
  });

  test("its require('amqplib') gets warren/amqplib, and amqplib itself is never loaded", () => {
    assert.ok(
      redirected.some((f) => f.includes('AmqpConnectionManager')),
      redirected.join(', '),
    );
    assert.ok(!Object.keys(require.cache).some((k) => /node_modules[\\/]amqplib[\\/]/.test(k)));
  });

  test('publishes and consumes, reconnects after a cut, runs setup again and sends what was queued', async () => {
    const queue = uniqueName('acm');
    const connectionName = uniqueName('acm-conn');
    const manager = amqpcm.connect([proxy.url()], {
      reconnectTimeInSeconds: 0.05,
      heartbeatIntervalInSeconds: 5,
      connectionOptions: { clientProperties: { connection_name: connectionName } },
    });
    const events: string[] = [];
    manager.on('connect', () => events.push('connect'));
    manager.on('disconnect', () => events.push('disconnect'));
    const got: string[] = [];
    let setups = 0;
    const wrapper = manager.createChannel({
      json: false,
      setup: async (ch) => {
        setups++;
        await ch.assertQueue(queue, { durable: false });
        await ch.prefetch(10);
        await ch.consume(queue, (m) => {
          if (m === null) return;
          got.push(m.content.toString());
          ch.ack(m);
        });
      },
    });
    try {
      await wrapper.waitForConnect();
      // The broker sees warren's client, not amqplib's.
      const listed = await rabbitmqctl('list_connections', 'client_properties', '--no-table-headers', '-q');
      const line = listed.split('\n').find((l) => l.includes(connectionName)) ?? '';
      assert.match(line, /\{"product","warren"\}/);

      assert.equal(await wrapper.sendToQueue(queue, Buffer.from('one')), true);
      for (let i = 0; i < 200 && got.length < 1; i++) await sleep(10);
      assert.deepEqual(got, ['one']);
      await sleep(300); // let the ack of 'one' pass the proxy, or the cut gets it redelivered (at least once)

      const reconnected = nextEvent(manager, 'connect');
      proxy.cutAll();
      // Sent while down: amqp-connection-manager holds it and publishes it on the new channel.
      const during = wrapper.sendToQueue(queue, Buffer.from('during'));
      await reconnected;
      assert.equal(await during, true);
      assert.equal(await wrapper.sendToQueue(queue, Buffer.from('after')), true);
      for (let i = 0; i < 300 && got.length < 3; i++) await sleep(10);
      assert.deepEqual(got, ['one', 'during', 'after']);
      assert.equal(setups, 2, 'setup ran again on the new channel');
      assert.deepEqual(events, ['connect', 'disconnect', 'connect']);
    } finally {
      await wrapper.close().catch(() => {});
      await manager.close();
      const conn = await warrenConnect(AMQP_URL);
      const ch = await conn.openChannel();
      await ch.queueDelete(queue);
      await conn.close();
    }
  });
});
