/**
 * Exchange methods against the real broker: declare (every type and flag, passive, inequivalent),
 * delete (ifUnused), exchange-to-exchange bind and unbind, internal and auto-delete behaviour.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type Channel,
  ChannelClosedByServer,
  ClosedError,
  ConnectionClosedByServer,
  connect,
} from '../../src/index.js';
import {
  AMQP_URL,
  type CtlTable,
  ctlTable,
  deferred,
  rabbitmqctlJson,
  readyCount,
  rejection,
  brokerFixture,
} from '../support/broker.js';
import { within } from '../support/wait.js';

/** One connection and a confirm-mode channel `fx.ch` for the whole file, to set up and inspect. */
const fx = brokerFixture();
const { res } = fx;

/** Declares a queue that `res` deletes, bound to `exchange` with `routingKey`. */
async function boundQueue(exchange: string, routingKey = ''): Promise<string> {
  const q = res.queue();
  await fx.ch.queueDeclare(q);
  await fx.ch.queueBind(q, exchange, routingKey);
  return q;
}

/** Asserts that `p` rejects with ChannelClosedByServer `code` caused by `method` and `channel` is then closed. */
async function closedWith(channel: Channel, p: Promise<unknown>, code: number, method: string): Promise<void> {
  const closeEvent = deferred<unknown>();
  channel.once('close', (e) => closeEvent.resolve(e));
  const err = await rejection(p);
  assert.ok(err instanceof ChannelClosedByServer, String(err));
  assert.equal(err.replyCode, code, err.message);
  assert.equal(err.method, method);
  assert.equal(channel.isOpen, false);
  assert.equal(await within(closeEvent.promise, 2000, 'the channel close event'), err);
  assert.equal(channel.closeReason, err);
}

interface CtlExchange {
  name: string;
  type: string;
  durable: boolean;
  auto_delete: boolean;
  internal: boolean;
  arguments: CtlTable;
}

describe('exchange.declare', () => {
  test('every type and flag combination as the broker lists it', async () => {
    const alt = res.exchange('alt');
    await fx.ch.exchangeDeclare(alt, 'fanout');
    const cases = [
      { name: res.exchange('direct'), type: 'direct', durable: false, autoDelete: false, internal: false },
      { name: res.exchange('fanout'), type: 'fanout', durable: true, autoDelete: false, internal: false },
      { name: res.exchange('topic'), type: 'topic', durable: false, autoDelete: true, internal: false },
      { name: res.exchange('headers'), type: 'headers', durable: true, autoDelete: true, internal: true },
    ];
    for (const c of cases) {
      await fx.ch.exchangeDeclare(c.name, c.type, {
        durable: c.durable,
        autoDelete: c.autoDelete,
        internal: c.internal,
        arguments: { 'alternate-exchange': alt },
      });
    }
    const listed = await rabbitmqctlJson<CtlExchange[]>(
      'list_exchanges',
      'name',
      'type',
      'durable',
      'auto_delete',
      'internal',
      'arguments',
    );
    for (const c of cases) {
      const row = listed.find((x) => x.name === c.name);
      assert.ok(row, `${c.name} is not listed by the broker`);
      assert.deepEqual(
        {
          type: row.type,
          durable: row.durable,
          autoDelete: row.auto_delete,
          internal: row.internal,
          arguments: ctlTable(row.arguments),
        },
        {
          type: c.type,
          durable: c.durable,
          autoDelete: c.autoDelete,
          internal: c.internal,
          arguments: { 'alternate-exchange': alt },
        },
      );
    }
  });

  test('redeclaring with the same attributes is fine; passive on an existing exchange is fine', async () => {
    const x = res.exchange();
    await fx.ch.exchangeDeclare(x, 'topic', { durable: false });
    await fx.ch.exchangeDeclare(x, 'topic', { durable: false });
    await fx.ch.exchangeDeclare(x, 'ignored-when-passive', { passive: true });
  });

  test('passive on a missing exchange: 404, that channel closes, another channel works', async () => {
    const c = await fx.conn.openChannel();
    await closedWith(
      c,
      c.exchangeDeclare(res.exchange('missing'), 'direct', { passive: true }),
      404,
      'exchange.declare',
    );
    const later = await rejection(c.exchangeDeclare('amq.direct', 'direct', { passive: true }));
    assert.ok(later instanceof ClosedError, String(later));
    assert.equal(fx.conn.isOpen, true);
    const other = await fx.conn.openChannel();
    await other.exchangeDeclare('amq.direct', 'direct', { passive: true });
    await other.close();
  });

  test('redeclaring with another type: 406 PRECONDITION_FAILED', async () => {
    const x = res.exchange();
    await fx.ch.exchangeDeclare(x, 'direct');
    const c = await fx.conn.openChannel();
    await closedWith(c, c.exchangeDeclare(x, 'fanout'), 406, 'exchange.declare');
  });

  test("a name with the reserved 'amq.' prefix: 403 ACCESS_REFUSED", async () => {
    const c = await fx.conn.openChannel();
    await closedWith(c, c.exchangeDeclare(`amq.${res.exchange()}`, 'direct'), 403, 'exchange.declare');
  });

  test('an unknown exchange type is a connection error (503 COMMAND_INVALID)', async () => {
    const own = await connect(AMQP_URL);
    try {
      const c = await own.openChannel();
      const err = await rejection(c.exchangeDeclare(res.exchange(), 'x-no-such-type'));
      assert.ok(err instanceof ConnectionClosedByServer, String(err));
      assert.equal(err.replyCode, 503);
      assert.equal(err.method, 'exchange.declare');
      assert.equal(await own.closed, err);
    } finally {
      await own.close();
    }
  });

  test('internal: publishing to it directly is refused (403)', async () => {
    const x = res.exchange('internal');
    await fx.ch.exchangeDeclare(x, 'fanout', { internal: true });
    const c = await fx.conn.openChannel();
    await c.confirmSelect();
    await closedWith(c, c.basicPublish(x, '', Buffer.from('no')), 403, 'basic.publish');
  });

  test('autoDelete: the exchange goes away when its last binding is removed', async () => {
    const x = res.exchange('auto');
    await fx.ch.exchangeDeclare(x, 'direct', { autoDelete: true });
    const q = await boundQueue(x, 'k');
    await fx.ch.exchangeDeclare(x, 'direct', { passive: true });
    await fx.ch.queueUnbind(q, x, 'k');
    const c = await fx.conn.openChannel();
    await closedWith(c, c.exchangeDeclare(x, 'direct', { passive: true }), 404, 'exchange.declare');
  });
});

describe('exchange.delete', () => {
  test('deletes; a passive declare then gets 404', async () => {
    const x = res.exchange();
    await fx.ch.exchangeDeclare(x, 'direct');
    await fx.ch.exchangeDelete(x);
    const c = await fx.conn.openChannel();
    await closedWith(c, c.exchangeDeclare(x, 'direct', { passive: true }), 404, 'exchange.declare');
  });

  test('ifUnused on an exchange with a binding: 406 and the exchange stays; without bindings it goes', async () => {
    const x = res.exchange();
    await fx.ch.exchangeDeclare(x, 'direct');
    const q = await boundQueue(x, 'k');
    const c = await fx.conn.openChannel();
    await closedWith(c, c.exchangeDelete(x, { ifUnused: true }), 406, 'exchange.delete');
    await fx.ch.exchangeDeclare(x, 'direct', { passive: true });
    await fx.ch.queueUnbind(q, x, 'k');
    await fx.ch.exchangeDelete(x, { ifUnused: true });
    const d = await fx.conn.openChannel();
    await closedWith(d, d.exchangeDeclare(x, 'direct', { passive: true }), 404, 'exchange.declare');
  });
});

describe('exchange.bind / exchange.unbind', () => {
  test('a message routed through an exchange-to-exchange binding arrives; after unbind it does not', async () => {
    const source = res.exchange('src');
    const dest = res.exchange('dst');
    await fx.ch.exchangeDeclare(source, 'direct');
    await fx.ch.exchangeDeclare(dest, 'fanout');
    const q = await boundQueue(dest);
    await fx.ch.exchangeBind(dest, source, 'k');

    await fx.ch.basicPublish(source, 'k', Buffer.from('routed'));
    await fx.ch.basicPublish(source, 'other', Buffer.from('not routed'));
    const first = await fx.ch.basicGet(q, { noAck: true });
    assert.equal(first?.body.toString(), 'routed');
    assert.equal(first?.exchange, source);
    assert.equal(first?.routingKey, 'k');
    assert.equal(await readyCount(fx.ch, q), 0);

    await fx.ch.exchangeUnbind(dest, source, 'k');
    await fx.ch.basicPublish(source, 'k', Buffer.from('after unbind'));
    assert.equal(await readyCount(fx.ch, q), 0);
    assert.equal(await fx.ch.basicGet(q), null);
  });

  test('binding arguments reach the broker: headers exchange with x-match', async () => {
    const source = res.exchange('hsrc');
    const dest = res.exchange('hdst');
    await fx.ch.exchangeDeclare(source, 'headers');
    await fx.ch.exchangeDeclare(dest, 'fanout');
    const q = await boundQueue(dest);
    await fx.ch.exchangeBind(dest, source, '', { 'x-match': 'all', color: 'red', size: 3 });
    await fx.ch.basicPublish(source, '', Buffer.from('red3'), { headers: { color: 'red', size: 3 } });
    await fx.ch.basicPublish(source, '', Buffer.from('red4'), { headers: { color: 'red', size: 4 } });
    await fx.ch.basicPublish(source, '', Buffer.from('blue3'), { headers: { color: 'blue', size: 3 } });
    const got = await fx.ch.basicGet(q, { noAck: true });
    assert.equal(got?.body.toString(), 'red3');
    assert.equal(await fx.ch.basicGet(q), null);
    await fx.ch.exchangeUnbind(dest, source, '', { 'x-match': 'all', color: 'red', size: 3 });
    await fx.ch.basicPublish(source, '', Buffer.from('red3 again'), { headers: { color: 'red', size: 3 } });
    assert.equal(await fx.ch.basicGet(q), null);
  });

  test('binding to a missing source exchange: 404', async () => {
    const dest = res.exchange();
    await fx.ch.exchangeDeclare(dest, 'fanout');
    const c = await fx.conn.openChannel();
    await closedWith(c, c.exchangeBind(dest, res.exchange('missing')), 404, 'exchange.bind');
  });
});
