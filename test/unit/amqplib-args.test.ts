/**
 * warren/amqplib's translation of amqplib's option names and value shapes (no broker needed).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  amqplibProperties,
  consumeArguments,
  exchangeArguments,
  fromFieldTable,
  publishProperties,
  queueArguments,
  toFieldTable,
} from '../../src/amqplib/args.js';
import { toConnectionOptions } from '../../src/amqplib/model.js';
import { Decimal, TypedValue } from '../../src/protocol/field-values.js';

describe('warren/amqplib options', () => {
  test('publish options: persistent, deliveryMode, expiration, timestamp, CC/BCC, headers from a prototype', () => {
    const headers = Object.create({ inherited: 'yes' }) as Record<string, unknown>;
    headers.own = 1;
    const p = publishProperties({
      persistent: true,
      expiration: 60000,
      timestamp: 1700000000,
      CC: 'a',
      BCC: ['b', 'c'],
      headers,
      contentType: 'text/plain',
    });
    assert.equal(p.deliveryMode, 2);
    assert.equal(p.expiration, '60000');
    assert.deepEqual(p.timestamp, new Date(1700000000 * 1000));
    assert.deepEqual(p.headers, { own: 1, inherited: 'yes', CC: ['a'], BCC: ['b', 'c'] });
    assert.equal(p.contentType, 'text/plain');
    assert.equal(publishProperties({ persistent: false, deliveryMode: 2 }).deliveryMode, 1, 'persistent wins');
    assert.equal(publishProperties({ deliveryMode: true }).deliveryMode, 2);
    assert.equal(publishProperties({ deliveryMode: 1 }).deliveryMode, 1);
    assert.deepEqual(publishProperties(undefined), { headers: {} });
    assert.equal('mandatory' in publishProperties({ mandatory: true }), false, 'mandatory is not a property');
  });

  test('queue, exchange and consume arguments from promoted options', () => {
    assert.deepEqual(
      queueArguments({
        messageTtl: 1,
        expires: 2,
        deadLetterExchange: 'dlx',
        deadLetterRoutingKey: 'dk',
        maxLength: 3,
        maxPriority: 4,
        overflow: 'reject-publish',
        queueMode: 'lazy',
        arguments: { 'x-queue-type': 'classic' },
      }),
      {
        'x-queue-type': 'classic',
        'x-expires': 2,
        'x-message-ttl': 1,
        'x-dead-letter-exchange': 'dlx',
        'x-dead-letter-routing-key': 'dk',
        'x-max-length': 3,
        'x-max-priority': 4,
        'x-overflow': 'reject-publish',
        'x-queue-mode': 'lazy',
      },
    );
    assert.deepEqual(exchangeArguments({ alternateExchange: 'ae' }), { 'alternate-exchange': 'ae' });
    assert.deepEqual(consumeArguments({ priority: 5 }), { 'x-priority': 5 });
    assert.deepEqual(queueArguments({}), {});
  });

  test("tables: amqplib's tagged values in, tagged values out", () => {
    const t = toFieldTable({
      ts: { '!': 'timestamp', value: 1700000000 },
      dec: { '!': 'decimal', value: { places: 2, digits: 314 } },
      i: { '!': 'int', value: 7 },
      nested: { a: [1, 'x'] },
      skipped: undefined,
      nothing: null,
    });
    assert.deepEqual(t.ts, new Date(1700000000 * 1000));
    assert.deepEqual(t.dec, new Decimal(2, 314));
    assert.deepEqual(t.i, new TypedValue('I', 7));
    assert.deepEqual(t.nested, { a: [1, 'x'] });
    assert.equal('skipped' in t, false);
    assert.equal(t.nothing, null);
    assert.deepEqual(fromFieldTable(t), {
      ts: { '!': 'timestamp', value: 1700000000 },
      dec: { '!': 'decimal', value: { places: 2, digits: 314 } },
      i: 7,
      nested: { a: [1, 'x'] },
      nothing: null,
    });
    assert.deepEqual(fromFieldTable({ big: 2n ** 40n }), { big: 2 ** 40 });
  });

  test('message properties: every key present, timestamp in seconds', () => {
    const p = amqplibProperties({ messageId: 'm', timestamp: new Date(1700000000500) });
    assert.equal(Object.keys(p).length, 14);
    assert.equal(p.messageId, 'm');
    assert.equal(p.timestamp, 1700000000);
    assert.equal(p.headers, undefined);
  });

  test('connect arguments: URL query in amqplib spelling, object form defaults, socket options', () => {
    const o = toConnectionOptions('amqp://u:p@h:1234/v?frameMax=8192&channelMax=10&heartbeat=5&locale=de_DE', {
      clientProperties: { connection_name: 'svc', extra: 1 },
      timeout: 3000,
    });
    assert.equal(o.url, 'amqp://u:p@h:1234/v?frame_max=8192&channel_max=10&heartbeat=5&locale=de_DE');
    assert.equal(o.locale, 'de_DE');
    assert.equal(o.name, 'svc');
    assert.deepEqual(o.clientProperties, { connection_name: 'svc', extra: 1 });
    assert.equal(o.connectionTimeout, 3000);
    const obj = toConnectionOptions({ protocol: 'amqps', hostname: 'rabbit', frameMax: 4096 }, { ca: 'CA' });
    assert.deepEqual(
      { host: obj.host, port: obj.port, username: obj.username, password: obj.password, vhost: obj.vhost },
      { host: 'rabbit', port: 5671, username: 'guest', password: 'guest', vhost: '/' },
    );
    assert.deepEqual(obj.tls, { ca: 'CA' });
    assert.equal(obj.frameMax, 4096);
    const ext = toConnectionOptions('amqps://h', {
      credentials: { mechanism: 'EXTERNAL', response: () => Buffer.alloc(0) },
    });
    assert.equal(ext.mechanism, 'EXTERNAL');
  });
});
