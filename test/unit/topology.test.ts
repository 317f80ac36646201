/**
 * The topology recorder without a broker: what it records (and what it leaves out), the order of a
 * replay, what deleting forgets, server-named queues that follow their new name, and refused
 * entities that are reported, skipped and tried again alone.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Channel } from '../../src/channel/channel.js';
import type { Connection } from '../../src/connect.js';
import { Topology, type TopologyEntity } from '../../src/client/topology.js';
import { type AMQPError, ChannelClosedByServer } from '../../src/index.js';

interface FakeBroker {
  connection: Connection;
  /** Every method the replay sent, in order, as `method name…`. */
  calls: string[];
  /** Channels opened. */
  opened: () => number;
}

/**
 * A connection whose channels log what they are asked. `answer` may throw (a refusal: the channel
 * closes, as the broker's would) or name the queue a `queue.declare` creates.
 */
function fakeBroker(answer: (call: string) => string | undefined = () => undefined): FakeBroker {
  const calls: string[] = [];
  let opened = 0;
  let serverNamed = 0;
  const connection = {
    isOpen: true,
    async openChannel(): Promise<Channel> {
      opened++;
      let open = true;
      const send = (call: string): string | undefined => {
        if (!open) throw new Error('the channel is closed');
        calls.push(call);
        try {
          return answer(call);
        } catch (err) {
          open = false;
          throw err;
        }
      };
      const channel = {
        get isOpen() {
          return open;
        },
        async exchangeDeclare(name: string, type: string) {
          send(`exchange.declare ${name} ${type}`);
        },
        async queueDeclare(name: string, options: { passive?: boolean } = {}) {
          const named = send(`queue.declare${options.passive ? ' passive' : ''} ${name}`);
          const queue = named ?? (name === '' ? `amq.gen-${++serverNamed}` : name);
          return { queue, messageCount: 0, consumerCount: 0 };
        },
        async queueBind(queue: string, exchange: string, key: string) {
          send(`queue.bind ${queue} ${exchange} ${key}`);
        },
        async exchangeBind(destination: string, source: string, key: string) {
          send(`exchange.bind ${destination} ${source} ${key}`);
        },
        async close() {
          open = false;
        },
      };
      return channel as unknown as Channel;
    },
  };
  return { connection: connection as unknown as Connection, calls, opened: () => opened };
}

function refusal(code: number, method: string): ChannelClosedByServer {
  return new ChannelClosedByServer({ replyCode: code, replyText: `refused ${code}`, classId: 0, methodId: 0 }, method);
}

async function replay(
  topology: Topology,
  broker: FakeBroker,
  only?: ReadonlySet<object>,
): Promise<{ failed: Set<object>; reported: [AMQPError, TopologyEntity][] }> {
  const reported: [AMQPError, TopologyEntity][] = [];
  const failed = await topology.replay(broker.connection, (error, entity) => reported.push([error, entity]), only);
  return { failed, reported };
}

test('records exchanges, queues and bindings; leaves out passive declares, the default and amq.* exchanges', async () => {
  const t = new Topology();
  t.recordExchange('orders', 'topic', { durable: true });
  t.recordExchange('', 'direct', {});
  t.recordExchange('amq.topic', 'topic', {});
  t.recordExchange('probe', 'fanout', { passive: true });
  t.recordQueue('jobs', 'jobs', { durable: true });
  t.recordQueue('other', 'other', { passive: true });
  t.recordBinding({ kind: 'queue', destination: 'jobs', source: 'orders', routingKey: 'a.*', args: {} });
  // The same binding twice (arguments in another order) is one binding.
  t.recordBinding({ kind: 'queue', destination: 'jobs', source: 'orders', routingKey: 'b', args: { x: 1, y: 2 } });
  t.recordBinding({ kind: 'queue', destination: 'jobs', source: 'orders', routingKey: 'b', args: { y: 2, x: 1 } });
  assert.deepEqual(t.size, { exchanges: 1, queues: 1, bindings: 2 });
  const broker = fakeBroker();
  await replay(t, broker);
  assert.deepEqual(broker.calls, [
    'exchange.declare orders topic',
    'queue.declare jobs',
    'queue.bind jobs orders a.*',
    'queue.bind jobs orders b',
  ]);
});

test('replays in dependency order: exchanges, then queues, then bindings, each in the order recorded', async () => {
  const t = new Topology();
  // Recorded interleaved, the way an application declares as it goes.
  t.recordQueue('q1', 'q1', {});
  t.recordExchange('x1', 'direct', {});
  t.recordBinding({ kind: 'queue', destination: 'q1', source: 'x1', routingKey: 'k', args: {} });
  t.recordExchange('x2', 'fanout', {});
  t.recordBinding({ kind: 'exchange', destination: 'x2', source: 'x1', routingKey: 'k2', args: {} });
  t.recordQueue('q2', 'q2', {});
  const broker = fakeBroker();
  const { failed, reported } = await replay(t, broker);
  assert.deepEqual(broker.calls, [
    'exchange.declare x1 direct',
    'exchange.declare x2 fanout',
    'queue.declare q1',
    'queue.declare q2',
    'queue.bind q1 x1 k',
    'exchange.bind x2 x1 k2',
  ]);
  assert.equal(failed.size, 0);
  assert.deepEqual(reported, []);
  assert.equal(broker.opened(), 1, 'one channel for the whole replay');
});

test('an empty registry replays nothing and opens no channel', async () => {
  const broker = fakeBroker();
  await replay(new Topology(), broker);
  assert.equal(broker.opened(), 0);
});

test('deleting forgets: a queue takes its bindings, an exchange those from and to it, unbind one', async () => {
  const t = new Topology();
  t.recordExchange('src', 'topic', {});
  t.recordExchange('dst', 'topic', {});
  t.recordExchange('keep', 'topic', {});
  t.recordQueue('q', 'q', {});
  t.recordQueue('r', 'r', {});
  t.recordBinding({ kind: 'queue', destination: 'q', source: 'keep', routingKey: '1', args: {} });
  t.recordBinding({ kind: 'queue', destination: 'r', source: 'keep', routingKey: '2', args: {} });
  t.recordBinding({ kind: 'queue', destination: 'r', source: 'src', routingKey: '3', args: {} });
  t.recordBinding({ kind: 'exchange', destination: 'dst', source: 'keep', routingKey: '4', args: {} });
  t.recordBinding({ kind: 'exchange', destination: 'keep', source: 'dst', routingKey: '5', args: {} });
  t.recordBinding({ kind: 'queue', destination: 'r', source: 'keep', routingKey: '6', args: { a: 1 } });
  assert.deepEqual(t.size, { exchanges: 3, queues: 2, bindings: 6 });

  t.removeQueue('q');
  t.removeExchange('src');
  t.removeExchange('dst');
  // Unbinding needs the same arguments: the first call names none, so only the second matches.
  t.removeBinding({ kind: 'queue', destination: 'r', source: 'keep', routingKey: '6', args: {} });
  assert.equal(t.size.bindings, 2);
  t.removeBinding({ kind: 'queue', destination: 'r', source: 'keep', routingKey: '6', args: { a: 1 } });
  assert.deepEqual(t.size, { exchanges: 1, queues: 1, bindings: 1 });

  const broker = fakeBroker();
  await replay(t, broker);
  assert.deepEqual(broker.calls, ['exchange.declare keep topic', 'queue.declare r', 'queue.bind r keep 2']);
});

test('a server-named exclusive queue is declared anew; its first name follows it, bindings too', async () => {
  const t = new Topology();
  t.recordExchange('events', 'fanout', {});
  t.recordQueue('', 'amq.gen-first', { exclusive: true });
  t.recordBinding({ kind: 'queue', destination: 'amq.gen-first', source: 'events', routingKey: '', args: {} });
  assert.equal(t.resolveQueue('amq.gen-first'), 'amq.gen-first');

  const broker = fakeBroker();
  await replay(t, broker);
  // Exclusive: it went with the dead connection, so no passive check, a fresh server-named declare.
  assert.deepEqual(broker.calls, ['exchange.declare events fanout', 'queue.declare ', 'queue.bind amq.gen-1 events ']);
  assert.equal(t.resolveQueue('amq.gen-first'), 'amq.gen-1', 'the first name resolves to the new one');
  assert.equal(t.resolveQueue('jobs'), 'jobs', 'other names are left alone');

  const again = fakeBroker(() => 'amq.gen-third');
  await replay(t, again);
  assert.equal(t.resolveQueue('amq.gen-first'), 'amq.gen-third');
  assert.deepEqual(again.calls.at(-1), 'queue.bind amq.gen-third events ');

  // Deleting by the first name forgets the queue and its binding.
  t.removeQueue('amq.gen-first');
  assert.deepEqual(t.size, { exchanges: 1, queues: 0, bindings: 0 });
  assert.equal(t.resolveQueue('amq.gen-first'), 'amq.gen-first');
});

test('a server-named queue that outlived the connection is used again; one that is gone is declared anew', async () => {
  const t = new Topology();
  t.recordQueue('', 'amq.gen-durable', { durable: true });
  const kept = fakeBroker();
  await replay(t, kept);
  assert.deepEqual(kept.calls, ['queue.declare passive amq.gen-durable']);
  assert.equal(t.resolveQueue('amq.gen-durable'), 'amq.gen-durable');

  const gone = fakeBroker((call) => {
    if (call.startsWith('queue.declare passive')) throw refusal(404, 'queue.declare');
    return undefined;
  });
  await replay(t, gone);
  assert.deepEqual(gone.calls, ['queue.declare passive amq.gen-durable', 'queue.declare ']);
  assert.equal(gone.opened(), 2, 'the 404 closed the channel: the declare went on a new one');
  assert.equal(t.resolveQueue('amq.gen-durable'), 'amq.gen-1');
});

test('an auto-delete queue is known as such; a refused entity is reported, skipped, and retried alone', async () => {
  const t = new Topology();
  t.recordQueue('temp', 'temp', { autoDelete: true });
  t.recordQueue('held', 'held', { exclusive: true });
  t.recordBinding({ kind: 'queue', destination: 'temp', source: 'amq.direct', routingKey: 't', args: {} });
  assert.equal(t.isAutoDeleteQueue('temp'), true);
  assert.equal(t.isAutoDeleteQueue('held'), false);
  assert.equal(t.isAutoDeleteQueue('unknown'), false);

  // 405: the exclusive queue is still held by the previous connection.
  const broker = fakeBroker((call) => {
    if (call === 'queue.declare held') throw refusal(405, 'queue.declare');
    return undefined;
  });
  const { failed, reported } = await replay(t, broker);
  assert.deepEqual(broker.calls, ['queue.declare temp', 'queue.declare held', 'queue.bind temp amq.direct t']);
  assert.equal(failed.size, 1);
  assert.equal(reported.length, 1);
  assert.deepEqual(reported[0]![1], { kind: 'queue', name: 'held' });
  assert.equal((reported[0]![0] as ChannelClosedByServer).replyCode, 405);

  const retry = fakeBroker();
  const second = await replay(t, retry, failed);
  assert.deepEqual(retry.calls, ['queue.declare held'], 'only what was skipped');
  assert.equal(second.failed.size, 0);
});

test('a dead connection ends the replay with its error', async () => {
  const t = new Topology();
  t.recordQueue('a', 'a', {});
  t.recordQueue('b', 'b', {});
  const broker = fakeBroker(() => {
    (broker.connection as { isOpen: boolean }).isOpen = false;
    throw new Error('socket closed');
  });
  await assert.rejects(replay(t, broker), /socket closed/);
  assert.deepEqual(broker.calls, ['queue.declare a']);
});
