/**
 * AMQP URL parsing and option resolution (pure: no broker needed).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resolveOptions } from '../../src/connection/options.js';
import { InvalidArgumentError, parseUrl, redactUrl } from '../../src/index.js';
import { errorText } from '../support/broker.js';

/** Asserts that `fn` throws InvalidArgumentError and that the error text never contains `secret`. */
function throwsInvalid(fn: () => unknown, secret?: string): InvalidArgumentError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(caught)}`);
  if (secret !== undefined) {
    assert.ok(!errorText(caught).includes(secret), `the error text contains the password: ${caught.message}`);
  }
  return caught;
}

describe('parseUrl', () => {
  test('amqp:// with every part', () => {
    assert.deepEqual(
      parseUrl(
        'amqp://alice:pw@broker.local:1234/prod?heartbeat=5&frame_max=8192&channel_max=10&connection_timeout=3000',
      ),
      {
        tls: false,
        username: 'alice',
        password: 'pw',
        host: 'broker.local',
        port: 1234,
        vhost: 'prod',
        heartbeat: 5,
        frameMax: 8192,
        channelMax: 10,
        connectionTimeout: 3000,
      },
    );
  });

  test('default ports: 5672 for amqp, 5671 for amqps (which turns TLS on)', () => {
    const plain = parseUrl('amqp://h');
    assert.equal(plain.port, 5672);
    assert.equal(plain.tls, false);
    const secure = parseUrl('amqps://h');
    assert.equal(secure.port, 5671);
    assert.equal(secure.tls, true);
    assert.equal(parseUrl('AMQPS://h:6000').port, 6000);
    const resolved = resolveOptions('amqps://h');
    assert.equal(resolved.tls, true);
    assert.equal(resolved.port, 5671);
  });

  test('user, password and vhost are percent-decoded', () => {
    const o = parseUrl('amqp://us%40er:p%40ss%3Aw%2Frd%25@host/v%2Fhost%20x');
    assert.equal(o.username, 'us@er');
    assert.equal(o.password, 'p@ss:w/rd%');
    assert.equal(o.vhost, 'v/host x');
    assert.equal(parseUrl('amqp://u%61:%61pw@ho%61st/v').host, 'hoast');
  });

  test("default vhost is '/': no path, '/', %2f and %2F", () => {
    assert.equal(resolveOptions('amqp://h').vhost, '/');
    assert.equal(resolveOptions('amqp://h/').vhost, '/');
    assert.equal(parseUrl('amqp://h/%2f').vhost, '/');
    assert.equal(parseUrl('amqp://h/%2F').vhost, '/');
    assert.equal(parseUrl('amqp://h/%2fx').vhost, '/x');
  });

  test('no credentials in the URL means guest/guest; an empty password is kept', () => {
    const o = resolveOptions('amqp://h');
    assert.equal(o.username, 'guest');
    assert.equal(o.password, 'guest');
    assert.equal(parseUrl('amqp://bob:@h').password, '');
    assert.equal(parseUrl('amqp://bob@h').password, undefined);
  });

  test('IPv6 literal host in brackets', () => {
    const o = parseUrl('amqp://[::1]:5673/v');
    assert.equal(o.host, '::1');
    assert.equal(o.port, 5673);
  });

  test('query: auth_mechanism, unknown keys ignored, empty pairs ignored', () => {
    const o = parseUrl('amqp://h?auth_mechanism=amqplain&foo=bar&&heartbeat=0');
    assert.equal(o.mechanism, 'AMQPLAIN');
    assert.equal(o.heartbeat, 0);
    assert.equal(Object.hasOwn(o, 'foo'), false);
  });

  test('bad ports are InvalidArgumentError', () => {
    throwsInvalid(() => parseUrl('amqp://h:99999'));
    throwsInvalid(() => parseUrl('amqp://h:abc'));
    throwsInvalid(() => parseUrl('amqp://h:0'));
    throwsInvalid(() => parseUrl('amqp://h:-1'));
    throwsInvalid(() => resolveOptions({ port: 70000 }));
  });

  test('bad query values are InvalidArgumentError', () => {
    throwsInvalid(() => parseUrl('amqp://h?heartbeat=abc'));
    throwsInvalid(() => parseUrl('amqp://h?heartbeat=-1'));
    throwsInvalid(() => parseUrl('amqp://h?heartbeat=65536'));
    throwsInvalid(() => parseUrl('amqp://h?frame_max=1.5'));
    throwsInvalid(() => parseUrl('amqp://h?channel_max=65536'));
    throwsInvalid(() => parseUrl('amqp://h?connection_timeout=0'));
    throwsInvalid(() => parseUrl('amqp://h?auth_mechanism=CRAM-MD5'));
  });

  test('not an AMQP URL is InvalidArgumentError', () => {
    throwsInvalid(() => parseUrl('localhost:5672'));
    throwsInvalid(() => parseUrl('amqp:/h'));
    throwsInvalid(() => parseUrl(''));
  });

  test('options given next to a URL override it', () => {
    const o = resolveOptions({ url: 'amqp://u:p@h:1000/v?heartbeat=5', port: 2000, heartbeat: 9, vhost: 'w' });
    assert.equal(o.host, 'h');
    assert.equal(o.port, 2000);
    assert.equal(o.heartbeat, 9);
    assert.equal(o.vhost, 'w');
    assert.equal(o.username, 'u');
    assert.equal(o.password, 'p');
  });

  test('defaults', () => {
    const o = resolveOptions({});
    assert.equal(o.host, '127.0.0.1');
    assert.equal(o.port, 5672);
    assert.equal(o.heartbeat, 60);
    assert.equal(o.frameMax, 131072);
    assert.equal(o.channelMax, 2047);
    assert.equal(o.connectionTimeout, 10000);
    assert.equal(o.mechanism, 'PLAIN');
    assert.equal(o.locale, 'en_US');
  });
});

describe('passwords never appear in URL errors', () => {
  const secret = 'Sup3rS3cretPw';

  test('bad port', () => {
    throwsInvalid(() => parseUrl(`amqp://user:${secret}@h:99999`), secret);
    throwsInvalid(() => parseUrl(`amqp://user:${secret}@h:abc`), secret);
  });

  test('bad query value', () => {
    throwsInvalid(() => parseUrl(`amqp://user:${secret}@h?heartbeat=x`), secret);
    throwsInvalid(() => parseUrl(`amqp://user:${secret}@h?auth_mechanism=nope`), secret);
  });

  test('bad percent-encoding in the password, user or vhost', () => {
    throwsInvalid(() => parseUrl(`amqp://user:${secret}%ZZ@h`), secret);
    throwsInvalid(() => parseUrl(`amqp://us%ZZer:${secret}@h`), secret);
    throwsInvalid(() => parseUrl(`amqp://user:${secret}@h/v%ZZ`), secret);
  });

  test('redactUrl hides the password', () => {
    assert.equal(redactUrl(`amqp://user:${secret}@h:5672/v`), 'amqp://user:***@h:5672/v');
    assert.equal(redactUrl(`amqps://user:${secret}@h`), 'amqps://user:***@h');
    assert.equal(redactUrl('amqp://h:5672'), 'amqp://h:5672');
  });

  test('a password with an unencoded slash (a common mistake) does not leak through the port error', () => {
    throwsInvalid(() => parseUrl(`amqp://user:${secret}/x@h`), secret);
  });

  test('a URL with another scheme does not leak its password', () => {
    throwsInvalid(() => parseUrl(`http://user:${secret}@h`), secret);
  });

  test("a URL missing one slash ('amqp:/user:pw@h') does not leak its password", () => {
    throwsInvalid(() => parseUrl(`amqp:/user:${secret}@h`), secret);
  });
});
