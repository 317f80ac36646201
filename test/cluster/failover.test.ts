/**
 * A real 3-node RabbitMQ cluster on this machine (test/support/broker-nodes.ts: own node names, ports,
 * data and log dirs; the joiners find node 1 through peer discovery, or join_cluster), started once for
 * this file and stopped afterwards, with quorum queues:
 *
 * - failover with zero loss: 20,000 confirmed messages are published and consumed through the robust
 *   client configured with all three URLs while the node it is connected to is stopped and later started
 *   again; every id arrives at least once, every publish resolves, and the client reconnects to another
 *   node within its backoff bounds (the client reconnects within milliseconds, while the quorum queue
 *   still elects its new leader: the broker nacks what reaches it meanwhile, and the publisher sends
 *   those again, spaced by its backoff, see `nackRetries`);
 * - a consumer on a quorum queue keeps receiving, on the same connection, after the queue's leader node
 *   is stopped.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type AMQPError, type Client, type Connection, connect, createClient } from '../../src/index.js';
import { type Cluster, startCluster, stopAllExtraNodes } from '../support/broker-nodes.js';
import { waitFor } from '../support/wait.js';

const TOTAL = Number(process.env.WARREN_FAILOVER_MESSAGES ?? 20_000);
const BACKOFF = { initialDelay: 100, maxDelay: 1000 };
/** What a reconnect may take beyond the backoff: connect, handshake, topology replay on a busy machine. */
const RECONNECT_SLACK_MS = 10_000;
const QUORUM = { 'x-queue-type': 'quorum' };
const PACE_BATCH = 50;
const PACE_MS = 100;

let cluster: Cluster;
const clients: Client[] = [];
const connections: Connection[] = [];
/** Nodes a test stopped; a failed test's nodes are started again so the next test has a whole cluster. */
const stopped = new Set<number>();

afterEach(async () => {
  for (const i of stopped) await cluster.startNode(i);
  stopped.clear();
});

before(async () => {
  await stopAllExtraNodes();
  cluster = await startCluster({ size: 3 });
});

after(async () => {
  await Promise.allSettled(clients.map((c) => c.close({ timeout: 2000 })));
  await Promise.allSettled(connections.map((c) => c.close()));
  await cluster?.stop();
});

/** Index of the cluster node a (redacted) URL points at. */
function nodeOf(url: string): number {
  const port = Number(/:(\d+)(?:\/|$)/.exec(url)?.[1]);
  const i = cluster.nodes.findIndex((n) => n.port === port);
  assert.ok(i >= 0, `no cluster node for ${url}`);
  return i;
}

test('a quorum queue declared on one node is a quorum queue with three members on every node', async () => {
  const conn = await connect(cluster.urls[0]!);
  connections.push(conn);
  const ch = await conn.openChannel();
  await ch.queueDeclare('warren-qq-members', { durable: true, arguments: QUORUM });
  const out = await cluster.ctl(2, 'list_queues', 'name', 'type', 'members', '--formatter', 'json');
  const row = (JSON.parse(out) as { name: string; type: string; members: string[] }[]).find(
    (q) => q.name === 'warren-qq-members',
  );
  assert.equal(row?.type, 'quorum');
  assert.deepEqual([...(row?.members ?? [])].sort(), cluster.nodes.map((n) => n.name).sort());
  await ch.queueDelete('warren-qq-members');
  await conn.close();
});

test(`failover: ${TOTAL} confirmed messages through a node stop and restart, none lost`, {
  timeout: 300_000,
}, async (t) => {
  const queue = 'warren-failover';
  const client = createClient({ urls: cluster.urls, name: 'warren-failover', heartbeat: 5, backoff: BACKOFF });
  clients.push(client);
  const connects: { node: number; at: number }[] = [];
  const disconnects: { error: AMQPError; at: number }[] = [];
  client.on('connect', ({ url }) => connects.push({ node: nodeOf(url), at: Date.now() }));
  client.on('disconnect', (error) => disconnects.push({ error, at: Date.now() }));
  const fatal: AMQPError[] = [];
  client.on('error', (error) => fatal.push(error));

  await client.declareQueue(queue, { durable: true, arguments: QUORUM });
  const seen = new Set<number>();
  let deliveries = 0;
  const sub = client.consume(
    queue,
    (msg) => {
      deliveries++;
      seen.add(Number(msg.properties.messageId));
    },
    { prefetch: 200, concurrency: 20 },
  );
  // With this test's short backoff the default 8 retries span only 2–5 s; a busy machine's
  // quorum-queue election has taken longer (the publishes then rejected with PublishNacked).
  const pub = client.publisher({ confirm: true, maxUnconfirmed: 500, nackRetries: 20 });
  let confirmed = 0;
  const failures: unknown[] = [];
  const failedAt: { id: number; at: number }[] = [];
  const state = () =>
    `confirmed ${confirmed}, consumed ${seen.size}, publisher unconfirmed ${pub.unconfirmedCount} pending ${pub.pendingCount}, ` +
    `connects to nodes ${connects.map((c) => c.node + 1).join(',')}, ` +
    `disconnects: ${disconnects.map((d) => d.error.message).join(' | ') || 'none'}, failures ${failures.length}${failures.length > 0 ? ` (first: ${String(failures[0])})` : ''}`;
  const publishes: Promise<void>[] = [];
  // Paced (about 500 a second) so that traffic flows before, during and after the stop and the restart.
  const pacing = (async () => {
    for (let i = 0; i < TOTAL; i++) {
      publishes.push(
        pub
          .publish('', queue, Buffer.from(`message ${i}`), { messageId: String(i), deliveryMode: 2 })
          .then(() => {
            confirmed++;
          })
          .catch((err: unknown) => {
            failures.push(err);
            failedAt.push({ id: i, at: Date.now() });
          }),
      );
      if (i % PACE_BATCH === PACE_BATCH - 1) await sleep(PACE_MS);
    }
  })();

  // Stop the node the client is on a fifth of the way in, start it again at two fifths.
  await waitFor(() => confirmed >= TOTAL / 5, {
    timeout: 120_000,
    interval: 50,
    what: 'a fifth of the publishes confirmed',
    state,
  });
  const victim = connects.at(-1)!.node;
  const stoppedAt = Date.now();
  const connectsBefore = connects.length;
  await cluster.stopNode(victim);
  stopped.add(victim);
  t.diagnostic(`stopped node ${victim + 1} at ${confirmed} confirmed, ${seen.size} consumed`);
  await waitFor(() => connects.length > connectsBefore, {
    timeout: 60_000,
    interval: 50,
    what: 'a reconnect to another node',
    state,
  });
  const moved = connects[connectsBefore]!;
  assert.notEqual(moved.node, victim, 'reconnected to the stopped node');
  const lost = disconnects.find((d) => d.at >= stoppedAt);
  assert.ok(lost, 'no disconnect event');
  const gap = moved.at - lost.at;
  t.diagnostic(`disconnect (${lost.error.code}) → connect to node ${moved.node + 1}: ${gap} ms`);
  assert.ok(gap <= BACKOFF.maxDelay + RECONNECT_SLACK_MS, `reconnect took ${gap} ms`);

  await waitFor(() => confirmed >= (2 * TOTAL) / 5, {
    timeout: 120_000,
    interval: 50,
    what: 'more publishes confirmed on the new node',
    state,
  });
  await cluster.startNode(victim);
  stopped.delete(victim);
  t.diagnostic(`node ${victim + 1} back at ${confirmed} confirmed, ${seen.size} consumed`);

  await pacing;
  if (failedAt.length > 0) {
    t.diagnostic(
      `${failedAt.length} publishes failed: ids ${failedAt[0]!.id}..${failedAt.at(-1)!.id}, ` +
        `+${failedAt[0]!.at - stoppedAt}..+${failedAt.at(-1)!.at - stoppedAt} ms after the stop`,
    );
  }
  await Promise.race([
    Promise.all(publishes),
    sleep(180_000, undefined, { ref: false }).then(() => {
      throw new Error(`only ${confirmed} of ${TOTAL} publishes settled; ${state()}`);
    }),
  ]);
  assert.deepEqual(failures, [], 'every publish resolves');
  assert.equal(confirmed, TOTAL);
  await waitFor(() => seen.size === TOTAL, {
    timeout: 120_000,
    interval: 50,
    what: `all ${TOTAL} ids consumed`,
    state,
  });
  const missing = Array.from({ length: TOTAL }, (_, i) => i).filter((i) => !seen.has(i));
  assert.deepEqual(missing, []);
  t.diagnostic(
    `${TOTAL} ids, ${deliveries} deliveries (${deliveries - TOTAL} redelivered or republished), ` +
      `${disconnects.length} disconnects, connects to nodes ${connects.map((c) => c.node + 1).join(',')}`,
  );
  for (const d of disconnects) t.diagnostic(`disconnect at +${d.at - stoppedAt} ms: ${d.error.message}`);
  assert.deepEqual(fatal, []);
  await sub.cancel();
  await client.deleteQueue(queue);
  await client.close();
});

test('a consumer on a quorum queue keeps receiving on the same connection after the leader node stops', {
  timeout: 180_000,
}, async (t) => {
  const queue = 'warren-qq-leader';
  const setup = await connect(cluster.urls[0]!);
  connections.push(setup);
  const setupCh = await setup.openChannel();
  await setupCh.queueDeclare(queue, { durable: true, arguments: QUORUM });
  await setup.close();

  const rows = JSON.parse(await cluster.ctl(0, 'list_queues', 'name', 'leader', '--formatter', 'json')) as {
    name: string;
    leader: string;
  }[];
  const leaderName = rows.find((r) => r.name === queue)?.leader;
  const leader = cluster.nodes.findIndex((n) => n.name === leaderName);
  assert.ok(leader >= 0, `no leader found for ${queue}: ${JSON.stringify(rows)}`);
  const [consumerNode, publisherNode] = [0, 1, 2].filter((i) => i !== leader) as [number, number];
  t.diagnostic(`leader on node ${leader + 1}; consumer on node ${consumerNode + 1}, publisher on ${publisherNode + 1}`);

  const consumerConn = await connect(cluster.urls[consumerNode]!, { heartbeat: 5 });
  connections.push(consumerConn);
  let consumerClosed: AMQPError | undefined;
  consumerConn.on('close', (err) => {
    consumerClosed = err;
  });
  const ch = await consumerConn.openChannel();
  await ch.basicQos(50);
  const received = new Set<number>();
  await ch.basicConsume(queue, {}, (msg) => {
    received.add(Number(msg.body.toString()));
    msg.ack();
  });

  const publisherConn = await connect(cluster.urls[publisherNode]!, { heartbeat: 5 });
  connections.push(publisherConn);
  const pubCh = await publisherConn.openChannel();
  await pubCh.confirmSelect();
  const confirmed: number[] = [];
  let next = 0;
  let publishing = true;
  // One message every 20 ms, retried while the queue has no leader (a nack or a timeout during the election).
  const publisher = (async () => {
    while (publishing && next < 5000) {
      const id = next++;
      for (let attempt = 0; attempt < 100; attempt++) {
        try {
          await pubCh.basicPublish('', queue, Buffer.from(String(id)), { deliveryMode: 2 });
          confirmed.push(id);
          break;
        } catch {
          await sleep(100);
        }
      }
      await sleep(20);
    }
  })();

  await waitFor(() => received.size >= 50, { timeout: 30_000, interval: 50, what: 'deliveries before the stop' });
  await cluster.stopNode(leader);
  stopped.add(leader);
  const idAtStop = next;
  t.diagnostic(`stopped the leader at id ${idAtStop}, ${received.size} received`);
  await waitFor(() => [...received].some((id) => id >= idAtStop + 50), {
    timeout: 60_000,
    interval: 50,
    what: 'deliveries of messages published after the stop',
  });
  publishing = false;
  await publisher;
  await waitFor(() => confirmed.every((id) => received.has(id)), {
    timeout: 60_000,
    interval: 50,
    what: 'every confirmed message',
  });
  assert.equal(consumerClosed, undefined, 'the consumer connection stayed open');
  assert.equal(ch.isOpen, true, 'the consumer channel stayed open');
  const newLeader = (
    JSON.parse(await cluster.ctl(consumerNode, 'list_queues', 'name', 'leader', '--formatter', 'json')) as {
      name: string;
      leader: string;
    }[]
  ).find((r) => r.name === queue)?.leader;
  t.diagnostic(`new leader ${newLeader}; ${confirmed.length} confirmed, ${received.size} received`);
  assert.notEqual(newLeader, leaderName);
  await cluster.startNode(leader);
  stopped.delete(leader);
  await pubCh.queueDelete(queue);
  await consumerConn.close();
  await publisherConn.close();
});
