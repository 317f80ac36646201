/**
 * Publishing against the real broker: publisher confirms (and nacks), mandatory returns, errors that
 * close the channel, transactions, channel.flow, use after close, and invalid arguments that must be
 * refused before anything is written.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import {
  AbortError,
  ChannelClosedByServer,
  ClosedError,
  ConnectionClosedByServer,
  connect,
  InvalidArgumentError,
  MessageReturned,
  PublishNacked,
  type ReturnedMessage,
  TypedValue,
} from '../../src/index.js';
import {
  AMQP_URL,
  deferred,
  drain,
  readyCount,
  rejection,
  settledReadyCount,
  brokerFixture,
} from '../support/broker.js';
import { within } from '../support/wait.js';

/** One connection and a confirm-mode channel `fx.ch` for the whole file, to set up and inspect. */
const fx = brokerFixture();
const { res } = fx;

async function newQueue(args = {}): Promise<string> {
  const q = res.queue();
  await fx.ch.queueDeclare(q, { arguments: args });
  return q;
}

describe('publisher confirms', () => {
  test('confirmSelect: publishes resolve once confirmed; confirmSelect twice is fine', async () => {
    const q = await newQueue();
    const c = await fx.conn.openChannel();
    try {
      assert.equal(c.confirmMode, false);
      await c.confirmSelect();
      await c.confirmSelect();
      assert.equal(c.confirmMode, true);
      const p = c.basicPublish('', q, Buffer.from('one'));
      assert.equal(c.unconfirmedCount, 1);
      await p;
      assert.equal(c.unconfirmedCount, 0);
      assert.equal(await readyCount(c, q), 1);
    } finally {
      await c.close();
    }
  });

  test('10 000 publishes with confirms all resolve and the queue holds 10 000', async () => {
    const q = await newQueue();
    const c = await fx.conn.openChannel();
    try {
      await c.confirmSelect();
      const n = 10_000;
      const results = await Promise.allSettled(
        Array.from({ length: n }, (_, i) => c.basicPublish('', q, Buffer.from(`m${i}`))),
      );
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, n);
      assert.equal(c.unconfirmedCount, 0);
      assert.equal(await readyCount(c, q), n);
      const first = await c.basicGet(q, { noAck: true });
      assert.equal(first?.body.toString(), 'm0');
      assert.equal(first?.messageCount, n - 1);
    } finally {
      await c.close();
    }
  });

  test('a publish the broker refuses (x-overflow reject-publish) rejects with PublishNacked; others resolve', async () => {
    const q = await newQueue({ 'x-max-length': 1, 'x-overflow': 'reject-publish' });
    const c = await fx.conn.openChannel();
    try {
      await c.confirmSelect();
      const results = await Promise.allSettled([
        c.basicPublish('', q, Buffer.from('kept')),
        c.basicPublish('', q, Buffer.from('refused')),
      ]);
      assert.equal(results[0]!.status, 'fulfilled');
      assert.equal(results[1]!.status, 'rejected');
      const reason = (results[1] as PromiseRejectedResult).reason;
      assert.ok(reason instanceof PublishNacked, String(reason));
      assert.equal(c.isOpen, true);
      const got = await drain(c, q);
      assert.deepEqual(
        got.map((m) => m.body.toString()),
        ['kept'],
      );
    } finally {
      await c.close();
    }
  });

  test('an already aborted signal rejects the publish with AbortError', async () => {
    const q = await newQueue();
    const c = await fx.conn.openChannel();
    try {
      await c.confirmSelect();
      const err = await rejection(c.basicPublish('', q, Buffer.from('x'), {}, { signal: AbortSignal.abort() }));
      assert.ok(err instanceof AbortError, String(err));
    } finally {
      await c.close();
    }
  });
});

describe('mandatory and basic.return', () => {
  test('confirm mode: an unroutable mandatory publish rejects with MessageReturned carrying the message', async () => {
    const q = await newQueue();
    const x = res.exchange();
    await fx.ch.exchangeDeclare(x, 'direct');
    await fx.ch.queueBind(q, x, 'routed');
    const c = await fx.conn.openChannel();
    try {
      await c.confirmSelect();
      const returns: ReturnedMessage[] = [];
      c.on('return', (r) => returns.push(r));
      const body = Buffer.from('nobody wants me');
      const props = { messageId: 'lost-1', contentType: 'text/plain', headers: { attempt: 3 } };
      const [ok, lost, okAgain] = await Promise.allSettled([
        c.basicPublish(x, 'routed', Buffer.from('fine'), {}, { mandatory: true }),
        c.basicPublish(x, 'nowhere', body, props, { mandatory: true }),
        c.basicPublish(x, 'routed', Buffer.from('fine too'), {}, { mandatory: true }),
      ]);
      assert.equal(ok!.status, 'fulfilled');
      assert.equal(okAgain!.status, 'fulfilled');
      assert.equal(lost!.status, 'rejected');
      const err = (lost as PromiseRejectedResult).reason;
      assert.ok(err instanceof MessageReturned, String(err));
      assert.equal(err.replyCode, 312);
      assert.match(err.replyText, /NO_ROUTE/);
      assert.equal(err.returned.exchange, x);
      assert.equal(err.returned.routingKey, 'nowhere');
      assert.ok(err.returned.body.equals(body));
      assert.deepEqual(err.returned.properties, props);
      assert.equal(returns.length, 1);
      assert.ok(returns[0]!.body.equals(body));
      assert.equal(c.isOpen, true);
      assert.equal(await readyCount(c, q), 2);
    } finally {
      await c.close();
    }
  });

  test('without confirm mode: the publish resolves and the channel emits return', async () => {
    const c = await fx.conn.openChannel();
    try {
      const returned = deferred<ReturnedMessage>();
      c.on('return', (r) => returned.resolve(r));
      const rk = res.queue('no-such-queue');
      await c.basicPublish('', rk, Buffer.from('bounce'), { correlationId: 'c1' }, { mandatory: true });
      const r = await within(returned.promise, 2000, 'basic.return');
      assert.equal(r.replyCode, 312);
      assert.equal(r.exchange, '');
      assert.equal(r.routingKey, rk);
      assert.equal(r.body.toString(), 'bounce');
      assert.deepEqual(r.properties, { correlationId: 'c1' });
      assert.equal(c.isOpen, true);
    } finally {
      await c.close();
    }
  });

  test('an unroutable publish without mandatory is silently dropped (resolves, no return)', async () => {
    const c = await fx.conn.openChannel();
    try {
      await c.confirmSelect();
      let returns = 0;
      c.on('return', () => returns++);
      await c.basicPublish('', res.queue('no-such-queue'), Buffer.from('dropped'));
      await sleep(50);
      assert.equal(returns, 0);
    } finally {
      await c.close();
    }
  });
});

describe('errors that close the channel', () => {
  test('confirm mode: publish to a missing exchange rejects with 404, the channel closes, the connection lives', async () => {
    const c = await fx.conn.openChannel();
    await c.confirmSelect();
    const closeEvent = deferred<unknown>();
    c.on('close', (e) => closeEvent.resolve(e));
    const err = await rejection(c.basicPublish(res.exchange('missing'), 'k', Buffer.from('x')));
    assert.ok(err instanceof ChannelClosedByServer, String(err));
    assert.equal(err.replyCode, 404);
    assert.equal(err.method, 'basic.publish');
    assert.equal(await within(closeEvent.promise, 2000, 'close event'), err);
    assert.equal(c.isOpen, false);
    const later = await rejection(c.basicPublish('', 'q', Buffer.from('x')));
    assert.ok(later instanceof ClosedError, String(later));
    assert.equal(later.cause, err);
    assert.equal(fx.conn.isOpen, true);
    const q = await newQueue();
    await fx.ch.basicPublish('', q, Buffer.from('still fine'));
    assert.equal(await readyCount(fx.ch, q), 1);
  });

  test('without confirm mode: the publish resolves (written) and the channel then closes with 404', async () => {
    const c = await fx.conn.openChannel();
    const closeEvent = deferred<unknown>();
    c.on('close', (e) => closeEvent.resolve(e));
    await c.basicPublish(res.exchange('missing'), 'k', Buffer.from('x'));
    const err = await within(closeEvent.promise, 2000, 'close event');
    assert.ok(err instanceof ChannelClosedByServer, String(err));
    assert.equal(err.replyCode, 404);
    assert.equal(err.method, 'basic.publish');
  });

  test('unconfirmed publishes and pending calls reject with the error that closed the channel', async () => {
    const c = await fx.conn.openChannel();
    await c.confirmSelect();
    const q = await newQueue();
    // Confirmed before the error. (A publish still unconfirmed when the channel dies is rejected even
    // if the broker had enqueued it: RabbitMQ drops pending confirms with the channel.)
    await c.basicPublish('', q, Buffer.from('before'));
    const bad = c.basicPublish(res.exchange('missing'), 'k', Buffer.from('x'));
    const after = c.basicPublish('', q, Buffer.from('after'));
    const call = c.queueDeclare(q, { passive: true });
    const results = await Promise.allSettled([bad, after, call]);
    for (const r of results) {
      assert.equal(r!.status, 'rejected');
      const reason = (r as PromiseRejectedResult).reason;
      assert.ok(reason instanceof ChannelClosedByServer, String(reason));
      assert.equal(reason.replyCode, 404);
    }
    assert.equal(await settledReadyCount(fx.ch, q), 1);
  });

  test('userId that is not the connection user: 406 PRECONDITION_FAILED', async () => {
    const c = await fx.conn.openChannel();
    await c.confirmSelect();
    const err = await rejection(c.basicPublish('', 'q', Buffer.from('x'), { userId: 'someone-else' }));
    assert.ok(err instanceof ChannelClosedByServer, String(err));
    assert.equal(err.replyCode, 406);
    assert.equal(err.method, 'basic.publish');
  });
});

describe('transactions', () => {
  test('a rolled-back publish never arrives; a committed one does', async () => {
    const q = await newQueue();
    const c = await fx.conn.openChannel();
    try {
      await c.txSelect();
      await c.basicPublish('', q, Buffer.from('rolled back'));
      assert.equal(await readyCount(fx.ch, q), 0); // not visible before commit
      await c.txRollback();
      await c.basicPublish('', q, Buffer.from('committed'));
      await c.txCommit();
      const got = await drain(fx.ch, q);
      assert.deepEqual(
        got.map((m) => m.body.toString()),
        ['committed'],
      );
    } finally {
      await c.close();
    }
  });

  test('acks are transactional too: a rolled-back ack leaves the message unacked', async () => {
    const q = await newQueue();
    await fx.ch.basicPublish('', q, Buffer.from('keep me'));
    const c = await fx.conn.openChannel();
    await c.txSelect();
    const m = await c.basicGet(q);
    assert.equal(m?.ack(), true);
    await c.txRollback();
    await c.close(); // the unacked message goes back
    const again = await within(
      (async () => {
        for (;;) {
          const got = await fx.ch.basicGet(q, { noAck: true });
          if (got) return got;
          await sleep(10);
        }
      })(),
      2000,
      'the message to be requeued',
    );
    assert.equal(again.body.toString(), 'keep me');
    assert.equal(again.redelivered, true);
  });

  test('tx.commit without tx.select: 406 PRECONDITION_FAILED', async () => {
    const c = await fx.conn.openChannel();
    const err = await rejection(c.txCommit());
    assert.ok(err instanceof ChannelClosedByServer, String(err));
    assert.equal(err.replyCode, 406);
    assert.equal(err.method, 'tx.commit');
  });

  test('tx.select on a confirm-mode channel: 406', async () => {
    const c = await fx.conn.openChannel();
    await c.confirmSelect();
    const err = await rejection(c.txSelect());
    assert.ok(err instanceof ChannelClosedByServer, String(err));
    assert.equal(err.replyCode, 406);
  });
});

describe('channel.flow', () => {
  test('flow(true) is answered with active=true', async () => {
    const c = await fx.conn.openChannel();
    try {
      assert.equal(await c.flow(true), true);
      assert.equal(c.isOpen, true);
    } finally {
      await c.close();
    }
  });

  test('flow(false): RabbitMQ 3.10 closes the connection with 540 NOT_IMPLEMENTED', async () => {
    const own = await connect(AMQP_URL);
    try {
      const c = await own.openChannel();
      const err = await rejection(c.flow(false));
      assert.ok(err instanceof ConnectionClosedByServer, String(err));
      assert.equal(err.replyCode, 540);
      assert.equal(err.method, 'channel.flow');
      assert.equal(await own.closed, err);
      assert.equal(c.isOpen, false);
    } finally {
      await own.close();
    }
  });
});

describe('use after close', () => {
  test('a closed channel rejects every call with ClosedError; close() is idempotent', async () => {
    const c = await fx.conn.openChannel();
    const closeEvent = deferred<unknown>();
    c.on('close', (e) => closeEvent.resolve(e));
    await c.close();
    assert.equal(await closeEvent.promise, undefined);
    assert.equal(c.isOpen, false);
    await c.close();
    const calls: Promise<unknown>[] = [
      c.queueDeclare('x'),
      c.exchangeDeclare('x', 'direct'),
      c.basicPublish('', 'x', Buffer.from('x')),
      c.basicGet('x'),
      c.basicConsume('x', {}, () => {}),
      c.basicQos(1),
      c.confirmSelect(),
      c.txSelect(),
      c.flow(true),
    ];
    for (const p of calls) {
      const err = await rejection(p);
      assert.ok(err instanceof ClosedError, String(err));
    }
    // Fire-and-forget methods are no-ops.
    c.basicAck(1);
    c.basicNack(1);
    c.basicReject(1);
  });

  test('calls queued behind close() are rejected, calls before it complete', async () => {
    const c = await fx.conn.openChannel();
    const before = c.queueDeclare('', { exclusive: true });
    const closing = c.close();
    const after = rejection(c.queueDeclare('', { exclusive: true }));
    assert.match((await before).queue, /^amq\.gen-/);
    await closing;
    const err = await after;
    assert.ok(err instanceof ClosedError, String(err));
  });
});

describe('invalid arguments are refused before anything is written', () => {
  test('a content header larger than frame-max: InvalidArgumentError, nothing sent, the connection survives', async () => {
    const own = await connect(`${AMQP_URL}?frame_max=4096`);
    try {
      const c = await own.openChannel();
      await c.confirmSelect();
      const { queue } = await c.queueDeclare('', { exclusive: true });
      // Header frame payload: class 2 + weight 2 + size 8 + flags 2 + table (4 + key 1+1 + tag 1 + len 4 + n).
      // n = 4063 makes it exactly frame-max - 8 = 4088 bytes, the largest RabbitMQ accepts.
      await c.basicPublish('', queue, Buffer.from('fits'), { headers: { h: 'y'.repeat(4063) } });
      const err = await rejection(
        c.basicPublish('', queue, Buffer.from('too big'), { headers: { h: 'y'.repeat(4064) } }),
      );
      assert.ok(err instanceof InvalidArgumentError, String(err));
      assert.equal(own.isOpen, true);
      assert.equal(c.isOpen, true);
      await c.basicPublish('', queue, Buffer.from('after'));
      assert.equal(await readyCount(c, queue), 2);
    } finally {
      await own.close();
    }
  });

  test('a method frame larger than frame-max: InvalidArgumentError, nothing sent, the connection survives', async () => {
    const own = await connect(`${AMQP_URL}?frame_max=4096`);
    try {
      const c = await own.openChannel();
      const err = await rejection(c.queueDeclare('', { exclusive: true, arguments: { big: 'y'.repeat(5000) } }));
      assert.ok(err instanceof InvalidArgumentError, String(err));
      assert.equal(own.isOpen, true);
      assert.equal(c.isOpen, true);
      await c.queueDeclare('', { exclusive: true });
    } finally {
      await own.close();
    }
  });

  test('a body that is not a Buffer: InvalidArgumentError, the channel still works', async () => {
    const q = await newQueue();
    const c = await fx.conn.openChannel();
    try {
      await c.confirmSelect();
      for (const body of ['a string', null, 42, new Uint8Array([1, 2]), { a: 1 }]) {
        const err = await rejection(c.basicPublish('', q, body as unknown as Buffer));
        assert.ok(err instanceof InvalidArgumentError, `${String(body)}: ${String(err)}`);
      }
      await c.basicPublish('', q, Buffer.from('fine'));
      assert.equal(c.isOpen, true);
      assert.deepEqual(
        (await drain(c, q)).map((m) => m.body.toString()),
        ['fine'],
      );
    } finally {
      await c.close();
    }
  });

  test('a 300-byte routing key: InvalidArgumentError, nothing sent, the channel still works', async () => {
    const q = await newQueue();
    const c = await fx.conn.openChannel();
    try {
      await c.confirmSelect();
      const err = await rejection(c.basicPublish('', 'r'.repeat(300), Buffer.from('x')));
      assert.ok(err instanceof InvalidArgumentError, String(err));
      assert.match(err.message, /300 bytes/);
      assert.equal(c.unconfirmedCount, 0);
      // Had a partial frame gone out, the broker would have closed the connection; had the whole
      // publish gone out, the confirm numbering would be off by one and this would never resolve.
      await within(c.basicPublish('', q, Buffer.from('after')), 2000, 'the next confirm');
      assert.equal(c.isOpen, true);
      assert.equal(fx.conn.isOpen, true);
      assert.equal(await readyCount(c, q), 1);
    } finally {
      await c.close();
    }
  });

  test('multi-byte characters count as bytes: 128 × "é" is 256 bytes, too long', async () => {
    const c = await fx.conn.openChannel();
    try {
      const err = await rejection(c.basicPublish('', 'é'.repeat(128), Buffer.from('x')));
      assert.ok(err instanceof InvalidArgumentError, String(err));
      await c.basicPublish('', 'é'.repeat(127), Buffer.from('x')); // 254 bytes: fine
      await c.queueDeclare('', { exclusive: true });
    } finally {
      await c.close();
    }
  });

  test('oversize names, properties and header values in synchronous methods and publishes', async () => {
    const q = await newQueue();
    const c = await fx.conn.openChannel();
    try {
      await c.confirmSelect();
      const long = 'n'.repeat(256);
      const cases: Promise<unknown>[] = [
        c.queueDeclare(long),
        c.exchangeDeclare(long, 'direct'),
        c.queueBind(q, 'amq.direct', long),
        c.basicPublish('', q, Buffer.from('x'), { messageId: long }),
        c.basicPublish('', q, Buffer.from('x'), { headers: { [long]: 1 } }),
        c.basicPublish('', q, Buffer.from('x'), { headers: { small: new TypedValue('b', 1000) } }),
        c.basicPublish('', q, Buffer.from('x'), { headers: { when: new Date(Number.NaN) } }),
        c.basicQos(70000),
      ];
      for (const p of cases) {
        const err = await rejection(p);
        assert.ok(err instanceof InvalidArgumentError, String(err));
      }
      assert.equal(c.isOpen, true);
      await c.basicPublish('', q, Buffer.from('fine'), { messageId: 'ok' });
      const got = await drain(c, q);
      assert.deepEqual(
        got.map((m) => [m.body.toString(), m.properties.messageId]),
        [['fine', 'ok']],
      );
    } finally {
      await c.close();
    }
  });
});
