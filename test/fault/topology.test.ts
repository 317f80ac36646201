/**
 * Topology recovery after `rabbitmqctl close_connection` (connection.close 320): exchanges, queues
 * (including a server-named one, which comes back under a new name), queue and exchange bindings and
 * consumers all work again, and a second client's consumer sees that messages still route.
 *
 * To make the replay do real work, the test deletes the exchanges and the shared queue from outside
 * while the client is kept from reconnecting (its proxy refuses), as a broker restart without
 * durable entities would.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type AMQPError, ConnectionClosedByServer } from '../../src/index.js';
import { connectionPid, rabbitmqctl, uniqueName, withChannel } from '../support/broker.js';
import { fileFixture } from '../support/client.js';
import type { TcpProxy } from '../support/tcp-proxy.js';
import { waitFor, nextEvent } from '../support/wait.js';

const { clients, resources, brokerProxy } = fileFixture();
let proxy: TcpProxy | undefined;

test('queues, exchanges, bindings (incl. a server-named queue) and consumers work again after the broker kills the connection', {
  timeout: 40_000,
}, async () => {
  proxy = await brokerProxy();
  const name = uniqueName('topology-client');
  const client = clients.make({ urls: [proxy.url()], name, backoff: { initialDelay: 20, maxDelay: 100 } });
  const observer = clients.make({ name: `${name}-observer`, backoff: { initialDelay: 20, maxDelay: 100 } });
  const recoveryErrors: unknown[] = [];
  client.on('recoveryError', (err, entity) => recoveryErrors.push([err, entity]));

  const topic = resources.exchange('topic');
  const fanout = resources.exchange('fanout');
  const shared = resources.queue('shared');
  const viaExchange = resources.queue('via-exchange');
  await client.declareExchange(topic, 'topic');
  await client.declareExchange(fanout, 'fanout');
  await client.declareQueue(shared);
  const { queue: serverNamed } = await client.declareQueue('', { exclusive: true });
  await client.declareQueue(viaExchange, { exclusive: true });
  await client.bindQueue(shared, topic, 'a.*');
  await client.bindQueue(serverNamed, topic, 'b.*');
  await client.bindExchange(fanout, topic, 'c.#');
  await client.bindQueue(viaExchange, fanout);
  // A binding made and removed again must not come back.
  await client.bindQueue(shared, topic, 'removed.*');
  await client.unbindQueue(shared, topic, 'removed.*');
  assert.deepEqual(client.recordedTopology, { exchanges: 2, queues: 3, bindings: 4 });

  const got = { serverNamed: [] as string[], viaExchange: [] as string[], shared: [] as string[] };
  client.consume(serverNamed, (m) => {
    got.serverNamed.push(m.body.toString());
  });
  client.consume(viaExchange, (m) => {
    got.viaExchange.push(m.body.toString());
  });
  // The second consumer: another client, reading the queue the first one binds.
  const watcher = observer.consume(
    shared,
    (m) => {
      got.shared.push(m.body.toString());
    },
    { resubscribeOnCancel: true },
  );
  await watcher.ready();
  const pub = client.publisher();
  const publishAll = async (tag: string) => {
    await pub.publish(topic, 'a.1', `${tag}-a`);
    await pub.publish(topic, 'b.1', `${tag}-b`);
    await pub.publish(topic, 'c.1', `${tag}-c`);
    await pub.publish(topic, 'removed.1', `${tag}-removed`);
    await pub.publish('', serverNamed, `${tag}-direct`); // default exchange, the name declareQueue returned
  };
  await publishAll('before');
  await waitFor(() => got.shared.length + got.serverNamed.length + got.viaExchange.length === 4, { what: 'before' });

  // Kill the connection from the broker; keep the client away while its topology is deleted.
  await proxy.refuse(true, 'unlisten');
  const disconnected = nextEvent<[AMQPError]>(client, 'disconnect', 15_000);
  await rabbitmqctl('close_connection', await connectionPid(name), 'test: killed by the broker');
  const [err] = await disconnected;
  assert.ok(err instanceof ConnectionClosedByServer && err.replyCode === 320, `a forced close, got ${err}`);
  await withChannel(async (ch) => {
    await ch.exchangeDelete(topic);
    await ch.exchangeDelete(fanout);
    await ch.queueDelete(shared);
    const gone = await ch.queueDeclare(serverNamed, { passive: true }).then(
      () => false,
      () => true,
    );
    assert.ok(gone, 'the exclusive server-named queue went with its connection');
  });
  const reconnected = nextEvent(client, 'connect', 15_000);
  await proxy.refuse(false);
  await reconnected;
  await watcher.ready(AbortSignal.timeout(10_000));

  await publishAll('after');
  await waitFor(() => got.shared.length + got.serverNamed.length + got.viaExchange.length === 8, { what: 'after' });
  assert.deepEqual(got, {
    shared: ['before-a', 'after-a'],
    serverNamed: ['before-b', 'before-direct', 'after-b', 'after-direct'],
    viaExchange: ['before-c', 'after-c'],
  });
  assert.deepEqual(recoveryErrors, []);
  assert.deepEqual(client.recordedTopology, { exchanges: 2, queues: 3, bindings: 4 });
});
