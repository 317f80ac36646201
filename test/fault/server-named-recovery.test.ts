/**
 * A server-named queue strands no message after recovery: a non-exclusive, non-auto-delete queue
 * declared with `''` survives the connection, and after a cut the client keeps using it (bindings,
 * consumer) instead of declaring a second one beside it that would leave the first bound and
 * collecting copies nobody reads. An auto-delete one, which the broker deletes when its consumer
 * goes, is declared anew. Either way, after the cut every message is consumed and no queue the
 * client made (all queues bound to the test's exchange) holds anything or lacks a consumer.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { QueueDeclareOptions } from '../../src/index.js';
import { Resources, rabbitmqctlJson, withChannel } from '../support/broker.js';
import { Clients } from '../support/client.js';
import { startProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { waitFor, nextEvent } from '../support/wait.js';

const clients = new Clients();
const resources = new Resources();
const proxies: TcpProxy[] = [];
after(async () => {
  await clients.closeAll();
  for (const p of proxies) await p.close();
  await resources.cleanup();
});

interface QueueRow {
  name: string;
  messages: number;
  consumers: number;
}

/** The queues bound to `exchange`, with their message and consumer counts, as the broker sees them. */
async function queuesBoundTo(exchange: string): Promise<QueueRow[]> {
  const bindings = await rabbitmqctlJson<{ source_name: string; destination_name: string; destination_kind: string }[]>(
    'list_bindings',
    'source_name',
    'destination_name',
    'destination_kind',
  );
  const names = new Set(
    bindings.filter((b) => b.source_name === exchange && b.destination_kind === 'queue').map((b) => b.destination_name),
  );
  const queues = await rabbitmqctlJson<QueueRow[]>('list_queues', 'name', 'messages', 'consumers');
  return queues.filter((q) => names.has(q.name));
}

async function cutAcross(options: QueueDeclareOptions, publishWhileDown: boolean): Promise<void> {
  const proxy = await startProxy({ target: { host: '127.0.0.1', port: 5672 } });
  proxies.push(proxy);
  const client = clients.make({
    urls: [proxy.url()],
    name: 'server-named',
    backoff: { initialDelay: 10, maxDelay: 50 },
  });
  client.on('disconnect', () => {});
  const publisher = clients.make({ name: 'server-named-publisher' });
  const exchange = resources.exchange('server-named');
  await publisher.declareExchange(exchange, 'fanout');
  const { queue } = await client.declareQueue('', options);
  resources.trackQueue(queue);
  await client.bindQueue(queue, exchange);
  const seen = new Set<string>();
  const sub = client.consume(queue, (msg) => {
    seen.add(msg.body.toString());
  });
  await sub.ready();
  const pub = publisher.publisher();
  const send = async (from: number, to: number) => {
    for (let i = from; i < to; i++) await pub.publish(exchange, '', `m${i}`);
  };

  await send(0, 7);
  await waitFor(() => seen.size === 7, { what: 'the messages before the cut' });
  await proxy.refuse(true, 'unlisten');
  const down = nextEvent(client, 'disconnect');
  proxy.cutAll();
  await down;
  const total = publishWhileDown ? 20 : 14;
  if (publishWhileDown) {
    await sleep(100); // the broker has seen the consumer go
    await send(7, 13);
  }
  const up = nextEvent(client, 'connect', 10_000);
  await proxy.refuse(false);
  await up;
  await sub.ready(AbortSignal.timeout(10_000));
  await send(total - 7, total);
  await waitFor(() => seen.size === total, { what: `all ${total} messages consumed (got ${seen.size})` });
  await sleep(200); // give a stray copy time to land in a stranded queue

  const rows = await queuesBoundTo(exchange);
  for (const r of rows) resources.trackQueue(r.name);
  assert.equal(rows.length, 1, `one queue is bound to the exchange, got ${JSON.stringify(rows)}`);
  assert.deepEqual(
    rows.map((r) => [r.messages, r.consumers]),
    [[0, 1]],
    `the client's queue is consumed and empty: ${JSON.stringify(rows)}`,
  );
  if (!options.autoDelete) assert.equal(rows[0]!.name, queue, 'the surviving queue is used again');
  await client.close();
  if (!options.autoDelete) await withChannel((ch) => ch.queueDelete(queue));
}

test('a server-named queue that survives the connection is used again: messages published while down, before and after the cut are all consumed, none stranded', {
  timeout: 30_000,
}, async () => {
  await cutAcross({}, true);
});

test('a server-named auto-delete queue is declared anew after a cut; nothing is left in a queue nobody reads', {
  timeout: 30_000,
}, async () => {
  await cutAcross({ autoDelete: true }, false);
});
