/**
 * Friendly declare options (`messageTtl`, `queueType`, `alternateExchange`, ...) against the real
 * broker, on the low-level channel and the robust client (whose topology replays them after a
 * reconnect): what the broker holds is what was asked for; unknown keys and bad values are refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Channel, type Connection, connect, InvalidArgumentError } from '../../src/index.js';
import { AMQP_URL, type CtlTable, ctlTable, rabbitmqctlJson, Resources } from '../support/broker.js';
import { Clients } from '../support/client.js';
import { startProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait.js';

const res = new Resources();
const clients = new Clients();
let conn: Connection;
let ch: Channel;

before(async () => {
  conn = await connect(AMQP_URL);
  ch = await conn.openChannel();
});

after(async () => {
  await clients.closeAll();
  await conn.close();
  await res.cleanup();
});

async function brokerArguments(kind: 'queues' | 'exchanges', name: string): Promise<Record<string, unknown>> {
  const rows = await rabbitmqctlJson<{ name: string; arguments: CtlTable | Record<string, unknown> }[]>(
    `list_${kind}`,
    'name',
    'arguments',
  );
  const row = rows.find((r) => r.name === name);
  assert.ok(row, `the broker has no ${kind} '${name}'`);
  return Array.isArray(row.arguments) ? ctlTable(row.arguments) : row.arguments;
}

const QUEUE_OPTIONS = {
  messageTtl: 60_000,
  expires: 600_000,
  deadLetterExchange: 'dlx',
  deadLetterRoutingKey: 'dead',
  maxLength: 100,
  maxLengthBytes: 1_000_000,
  maxPriority: 5,
  overflow: 'reject-publish',
  singleActiveConsumer: true,
} as const;

const EXPECTED_QUEUE_ARGUMENTS = {
  'x-message-ttl': 60_000,
  'x-expires': 600_000,
  'x-dead-letter-exchange': 'dlx',
  'x-dead-letter-routing-key': 'dead',
  'x-max-length': 100,
  'x-max-length-bytes': 1_000_000,
  'x-max-priority': 5,
  'x-overflow': 'reject-publish',
  'x-single-active-consumer': true,
};

describe('declare options on the channel', () => {
  test('each queue option reaches the broker as its x- argument', async () => {
    const q = res.queue('opts');
    await ch.queueDeclare(q, QUEUE_OPTIONS);
    assert.deepEqual(await brokerArguments('queues', q), EXPECTED_QUEUE_ARGUMENTS);
  });

  test('queueType quorum and stream declare those queue types', async () => {
    const quorum = res.queue('quorum');
    const stream = res.queue('stream');
    await ch.queueDeclare(quorum, { durable: true, queueType: 'quorum' });
    await ch.queueDeclare(stream, { durable: true, queueType: 'stream' });
    const rows = await rabbitmqctlJson<{ name: string; type: string }[]>('list_queues', 'name', 'type');
    assert.equal(rows.find((r) => r.name === quorum)?.type, 'quorum');
    assert.equal(rows.find((r) => r.name === stream)?.type, 'stream');
  });

  test('alternateExchange reaches the broker and routes unroutable messages', async () => {
    const x = res.exchange('main');
    const alt = res.exchange('alt');
    const q = res.queue('unrouted');
    await ch.exchangeDeclare(alt, 'fanout');
    await ch.exchangeDeclare(x, 'direct', { alternateExchange: alt });
    await ch.queueDeclare(q);
    await ch.queueBind(q, alt);
    assert.deepEqual(await brokerArguments('exchanges', x), { 'alternate-exchange': alt });
    await ch.basicPublish(x, 'nobody-binds-this', Buffer.from('lost?'));
    let got: string | undefined;
    await waitFor(
      async () => {
        const msg = await ch.basicGet(q, { noAck: true });
        got = msg?.body.toString();
        return got !== undefined;
      },
      { what: 'the unroutable message in the alternate exchange queue' },
    );
    assert.equal(got, 'lost?');
  });

  test('an option and the same explicit argument must agree', async () => {
    const q = res.queue('agree');
    await ch.queueDeclare(q, { messageTtl: 1000, arguments: { 'x-message-ttl': 1000, 'x-max-length': 3 } });
    assert.deepEqual(await brokerArguments('queues', q), { 'x-message-ttl': 1000, 'x-max-length': 3 });
    await assert.rejects(
      ch.queueDeclare(res.queue('disagree'), { messageTtl: 1000, arguments: { 'x-message-ttl': 2000 } }),
      (err: unknown) => err instanceof InvalidArgumentError && /messageTtl.*x-message-ttl/.test(err.message),
    );
  });

  test('an unknown key is refused, naming it and the right form, and nothing is declared', async () => {
    const q = res.queue('unknown');
    const cases: [object, RegExp][] = [
      [{ messageTTL: 1000 }, /unknown option 'messageTTL'; did you mean messageTtl\?/],
      [{ 'x-message-ttl': 1000 }, /unknown option 'x-message-ttl'.*did you mean messageTtl\?.*arguments/],
      [{ 'x-custom': 1 }, /unknown option 'x-custom'; broker arguments go in arguments: \{ 'x-custom'/],
      [{ ttl: 1 }, /unknown option 'ttl'; known options: durable, .*messageTtl/],
    ];
    for (const [options, message] of cases) {
      await assert.rejects(
        ch.queueDeclare(q, options as never),
        (err: unknown) => err instanceof InvalidArgumentError && message.test(err.message),
        JSON.stringify(options),
      );
    }
    await assert.rejects(
      ch.exchangeDeclare(res.exchange('x'), 'fanout', { alternate: 'a' } as never),
      /unknown option 'alternate'/,
    );
    const rows = await rabbitmqctlJson<{ name: string }[]>('list_queues', 'name');
    assert.equal(
      rows.find((r) => r.name === q),
      undefined,
    );
    assert.ok(ch.isOpen, 'refused before anything was sent: the channel is still open');
  });

  test('values of the wrong type are refused', async () => {
    const q = res.queue('types');
    const cases: [object, RegExp][] = [
      [{ messageTtl: '1000' }, /messageTtl must be a whole number ≥ 0, got '1000'/],
      [{ messageTtl: -1 }, /messageTtl must be/],
      [{ expires: 0 }, /expires must be a whole number of ms ≥ 1/],
      [{ maxPriority: 256 }, /maxPriority must be a whole number from 1 to 255/],
      [{ overflow: 'drop-tail' }, /overflow must be one of 'drop-head', 'reject-publish', 'reject-publish-dlx'/],
      [{ queueType: 'lazy' }, /queueType must be one of 'classic', 'quorum', 'stream'/],
      [{ deadLetterExchange: 5 }, /deadLetterExchange must be a string/],
      [{ singleActiveConsumer: 'yes' }, /singleActiveConsumer must be true or false/],
    ];
    for (const [options, message] of cases) {
      await assert.rejects(ch.queueDeclare(q, options as never), message, JSON.stringify(options));
    }
  });
});

describe('declare options on the robust client', () => {
  test('recorded with the topology: declared again with the same arguments after a reconnect', async () => {
    const proxy = await startProxy({ target: { host: '127.0.0.1', port: 5672 } });
    try {
      const client = clients.make({ urls: [proxy.url()] });
      const q = res.queue('robust');
      const x = res.exchange('robust-x');
      // auto-delete exchange and exclusive queue: only the replay can bring them back after the cut.
      await client.declareExchange(x, 'fanout', { autoDelete: true, alternateExchange: 'amq.fanout' });
      await client.declareQueue(q, { exclusive: true, messageTtl: 5000, maxLength: 7, overflow: 'drop-head' });
      await client.bindQueue(q, x);
      await client.ready();
      const expected = { 'x-message-ttl': 5000, 'x-max-length': 7, 'x-overflow': 'drop-head' };
      assert.deepEqual(await brokerArguments('queues', q), expected);
      const reconnected = new Promise((resolve) => client.once('connect', resolve));
      proxy.cutAll();
      await reconnected;
      assert.deepEqual(await brokerArguments('queues', q), expected);
      assert.deepEqual(await brokerArguments('exchanges', x), { 'alternate-exchange': 'amq.fanout' });
    } finally {
      await clients.closeAll();
      await proxy.close();
    }
  });

  test('a bad option is refused at once, even while disconnected', async () => {
    const client = clients.make({ urls: ['amqp://guest:guest@127.0.0.1:1'] });
    await assert.rejects(client.declareQueue('q', { messageTTL: 1 } as never), InvalidArgumentError);
    await assert.rejects(
      client.declareExchange('x', 'fanout', { alternateExchange: 1 } as never),
      /alternateExchange must be a string/,
    );
  });
});
