/**
 * Proves test/support/broker-nodes.ts works on this machine; not part of `npm test` (its name does not end
 * in .test.ts) because it takes about a minute and only needs re-running when that module or the
 * RabbitMQ installation changes.
 *
 *   npx tsx test/support/broker-nodes.selftest.ts
 *
 * Cluster: a quorum queue declared on node 1 is visible from node 2, still serves messages from node 2
 * while node 1 is down, and node 1 rejoins after a restart. TLS: amqps works with the right CA, fails with
 * an unrelated one, EXTERNAL logs in with the client certificate, and a certificate from the unrelated CA
 * is refused by the server. Exits non-zero on the first failure; leaves no extra node running either way.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import * as amqp from 'amqplib';
import { runningExtraNodes, startCluster, startTlsNode, stopAllExtraNodes } from './broker-nodes.js';
import { within } from './wait.js';

const timings: [string, number][] = [];

async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const start = performance.now();
  const result = await fn();
  const ms = Math.round(performance.now() - start);
  timings.push([label, ms]);
  console.log(`  ${label}: ${ms} ms`);
  return result;
}

/** Resolves with the error a connection attempt fails with; throws if it succeeds. */
async function refused(what: string, attempt: () => Promise<amqp.ChannelModel>): Promise<Error> {
  let conn: amqp.ChannelModel;
  try {
    conn = await within(attempt(), 15_000, what);
    // A server that rejects a client certificate after a TLS 1.3 handshake surfaces on first use.
    await within(conn.createChannel(), 15_000, what);
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
  await conn.close().catch(() => {});
  throw new Error(`${what}: expected the connection to be refused, but it worked`);
}

async function clusterCheck(): Promise<void> {
  console.log('cluster:');
  const cluster = await timed('startCluster({ size: 3 })', () => startCluster({ size: 3 }));
  try {
    assert.equal(cluster.urls.length, 3);
    console.log(`  nodes: ${cluster.nodes.map((n) => `${n.name}=${n.port}`).join(' ')}`);
    const queue = 'warren-selftest-qq';

    const conn1 = await amqp.connect(cluster.urls[0]!);
    const ch1 = await conn1.createConfirmChannel();
    await ch1.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    for (const body of ['one', 'two']) ch1.sendToQueue(queue, Buffer.from(body), { persistent: true });
    await ch1.waitForConfirms();
    await conn1.close();

    const conn2 = await amqp.connect(cluster.urls[1]!);
    const ch2 = await conn2.createChannel();
    const seen = await ch2.checkQueue(queue);
    assert.equal(seen.messageCount, 2, 'node 2 sees both messages');

    await timed('stopNode(0)', () => cluster.stopNode(0));
    // If node 1 led the queue, the other members need an election first: retry briefly.
    const got = await timed('first basic.get on node 2 after node 1 stopped', async () => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        try {
          const ch = await conn2.createChannel();
          const message = await ch.get(queue, { noAck: true });
          await ch.close();
          if (message) return message;
        } catch (error) {
          if (Date.now() > deadline) throw error;
        }
        if (Date.now() > deadline) throw new Error('node 2 never delivered from the queue');
        await sleep(200);
      }
    });
    assert.equal(got.content.toString(), 'one');
    await conn2.close();

    await timed('startNode(0)', () => cluster.startNode(0));
    const conn1b = await amqp.connect(cluster.urls[0]!);
    const ch1b = await conn1b.createChannel();
    assert.equal((await ch1b.checkQueue(queue)).messageCount, 1, 'restarted node 1 sees the remaining message');
    await conn1b.close();
    const status = await cluster.ctl(1, 'cluster_status', '--formatter', 'json');
    const running = (JSON.parse(status) as { running_nodes: string[] }).running_nodes;
    assert.deepEqual([...running].sort(), cluster.nodes.map((n) => n.name).sort(), 'all three nodes run again');
  } finally {
    await timed('cluster.stop()', () => cluster.stop());
  }
}

async function tlsCheck(): Promise<void> {
  console.log('tls:');
  const tls = await timed('startTlsNode()', () => startTlsNode());
  try {
    console.log(`  ports: plain ${tls.port}, tls ${tls.tlsPort}; certs in ${tls.dir}`);
    const plain = await amqp.connect(tls.url);
    await plain.close();

    const secure = await within(amqp.connect(tls.tlsUrl, { ca: [tls.ca] }), 15_000, 'amqps with the CA');
    await (await secure.createChannel()).close();
    await secure.close();

    const wrongCa = await refused('amqps with otherCa', () => amqp.connect(tls.tlsUrl, { ca: [tls.otherCa] }));
    console.log(`  otherCa refused: ${wrongCa.message}`);

    const external = { ca: [tls.ca], cert: tls.cert, key: tls.key, credentials: amqp.credentials.external() };
    const byCert = await within(amqp.connect(`amqps://localhost:${tls.tlsPort}`, external), 15_000, 'EXTERNAL');
    const ch = await byCert.createChannel();
    const { queue } = await ch.assertQueue('', { exclusive: true });
    assert.match(queue, /^amq\.gen-/);
    await byCert.close();
    console.log('  EXTERNAL with the client certificate: ok');

    const noCert = await refused('EXTERNAL without a certificate', () =>
      amqp.connect(`amqps://localhost:${tls.tlsPort}`, { ca: [tls.ca], credentials: amqp.credentials.external() }),
    );
    console.log(`  EXTERNAL without a certificate refused: ${noCert.message}`);

    const foreign = await refused('client certificate from otherCa', () =>
      amqp.connect(tls.tlsUrl, { ca: [tls.ca], cert: tls.otherCert, key: tls.otherKey }),
    );
    console.log(`  client certificate from otherCa refused: ${foreign.message}`);
  } finally {
    await timed('tls.stop()', () => tls.stop());
  }
}

async function main(): Promise<void> {
  const total = performance.now();
  const leftovers = await stopAllExtraNodes();
  if (leftovers.length) console.log(`killed leftover nodes: ${leftovers.join(', ')}`);
  let failure: unknown;
  try {
    await clusterCheck();
    await tlsCheck();
  } catch (error) {
    failure = error;
  }
  const remaining = runningExtraNodes();
  if (remaining.length) {
    await stopAllExtraNodes();
    failure ??= new Error(`extra nodes still running after stop(): ${remaining.join(', ')}`);
  }
  if (failure !== undefined) throw failure;
  console.log(`selftest passed in ${Math.round(performance.now() - total)} ms`);
  for (const [label, ms] of timings) console.log(`  ${label.padEnd(50)} ${String(ms).padStart(6)} ms`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});
