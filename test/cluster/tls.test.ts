/**
 * TLS and authentication against an extra RabbitMQ node with a TLS listener and certificates the test
 * support generates with openssl (a CA, a server certificate for localhost/127.0.0.1, a client
 * certificate for user `warren-client`, and an unrelated CA with its own client certificate), plus the
 * rabbitmq_auth_mechanism_ssl plugin for EXTERNAL:
 *
 * - `amqps://` works with the CA given; without it, or with an unknown CA, the connection is refused
 *   with a clear error (verification is on by default);
 * - `servername` (SNI) is sent and used to verify the certificate, from the options or the URL;
 * - EXTERNAL authentication with a client certificate logs in as the certificate's user;
 * - a wrong password never appears in errors, frame traces or inspected objects;
 * - `updateSecret` swaps the credential of a live connection.
 *
 * One node for the whole file (it boots in seconds); it runs with the cluster tests, one file at a time.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tls from 'node:tls';
import { inspect } from 'node:util';
import {
  AuthenticationError,
  ChannelClosedByServer,
  ConnectionClosedByServer,
  CredentialsRefreshError,
  ConnectionError,
  connect,
  createClient,
  type Connection,
  SocketError,
} from '../../src/index.js';
import { Connection as RawConnection } from '../../src/connect.js';
import { MemoryBroker } from '../fuzz/memory-broker.js';
import { errorText, rejection } from '../support/broker.js';
import { startTlsNode, stopAllExtraNodes, type TlsNode } from '../support/broker-nodes.js';
import { within } from '../support/wait.js';
import { methodFrame } from '../support/frames.js';

let node: TlsNode;
const opened: Connection[] = [];

before(async () => {
  await stopAllExtraNodes();
  node = await startTlsNode();
});

after(async () => {
  await Promise.allSettled(opened.map((c) => c.close()));
  await node?.stop();
});

async function open(...args: Parameters<typeof connect>): Promise<Connection> {
  const conn = await within(connect(...args), 20_000, `connect ${String(args[0])}`);
  opened.push(conn);
  return conn;
}

/** Declares a server-named queue, publishes one message to it with confirms and reads it back. */
async function roundTrip(conn: Connection, text: string): Promise<void> {
  const ch = await conn.openChannel();
  await ch.confirmSelect();
  const { queue } = await ch.queueDeclare('', { exclusive: true });
  await ch.basicPublish('', queue, Buffer.from(text));
  const msg = await ch.basicGet(queue, { noAck: true });
  assert.equal(msg?.body.toString(), text);
  await ch.close();
}

describe('amqps and certificate verification', () => {
  test('amqps:// with the CA: connects, and messages go both ways', async () => {
    const conn = await open(node.tlsUrl, { tls: { ca: node.ca } });
    await roundTrip(conn, 'over TLS');
    await conn.close();
  });

  test('without the CA (verification is on by default): refused with a clear error', async () => {
    const err = await rejection(within(connect(node.tlsUrl), 20_000, 'the refusal'));
    assert.ok(err instanceof SocketError, String(err));
    assert.match(err.message, /certificate/i);
    assert.match(err.message, /TLS verification failed: pass the broker CA as tls\.ca/);
  });

  test('with an unrelated CA: refused with a clear error', async () => {
    const err = await rejection(within(connect(node.tlsUrl, { tls: { ca: node.otherCa } }), 20_000, 'the refusal'));
    assert.ok(err instanceof SocketError, String(err));
    assert.match(err.message, /TLS verification failed/);
  });

  test('plain AMQP still works on the plain port of the same node', async () => {
    const conn = await open(node.url);
    await roundTrip(conn, 'plain');
    await conn.close();
  });
});

describe('servername (SNI)', () => {
  test('the servername option is what the certificate is checked against', async () => {
    // The certificate is for localhost and 127.0.0.1; connecting to 127.0.0.1 works unless another
    // name is asked for.
    const ip = `amqps://guest:guest@127.0.0.1:${node.tlsPort}`;
    const good = await open(ip, { tls: { ca: node.ca, servername: 'localhost' } });
    await good.close();
    const err = await rejection(
      within(connect(ip, { tls: { ca: node.ca, servername: 'not-this-host.example' } }), 20_000, 'refusal'),
    );
    assert.ok(err instanceof SocketError, String(err));
    assert.match(err.message, /not-this-host\.example/);
  });

  test('server_name_indication in the URL is honoured too', async () => {
    const url = `amqps://guest:guest@127.0.0.1:${node.tlsPort}?server_name_indication=wrong.example`;
    const err = await rejection(within(connect(url, { tls: { ca: node.ca } }), 20_000, 'refusal'));
    assert.ok(err instanceof SocketError, String(err));
    assert.match(err.message, /wrong\.example/);
  });

  test('the name is sent in the ClientHello: from the option, from a host name, and none for an IP', async () => {
    const [cert, key] = await Promise.all([
      readFile(join(node.dir, 'server.pem')),
      readFile(join(node.dir, 'server.key')),
    ]);
    const seen: (string | false)[] = [];
    const server = tls.createServer({ cert, key }, (socket) => {
      seen.push((socket as tls.TLSSocket & { servername?: string | false }).servername ?? false);
      socket.destroy();
    });
    server.on('tlsClientError', () => {});
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const targets = [
        { host: '127.0.0.1', tls: { ca: node.ca, servername: 'localhost' } },
        { host: 'localhost', tls: { ca: node.ca } },
        { host: '127.0.0.1', tls: { ca: node.ca } },
      ];
      for (const target of targets) {
        // The fake server ends the connection after the TLS handshake: not AMQP, so it must fail.
        const err = await rejection(within(connect({ ...target, port, connectionTimeout: 5000 }), 10_000, 'the fake'));
        assert.ok(err instanceof ConnectionError, String(err));
      }
      assert.deepEqual(seen, ['localhost', 'localhost', false]);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('EXTERNAL authentication with a client certificate', () => {
  test('logs in as the certificate user (the broker checks user-id against it)', async () => {
    const conn = await open(`amqps://localhost:${node.tlsPort}`, {
      tls: { ca: node.ca, cert: node.cert, key: node.key },
    });
    await roundTrip(conn, 'as warren-client');
    const ch = await conn.openChannel();
    await ch.confirmSelect();
    const { queue } = await ch.queueDeclare('', { exclusive: true });
    // RabbitMQ accepts a user-id property only if it names the authenticated user.
    await ch.basicPublish('', queue, Buffer.from('mine'), { userId: 'warren-client' });
    const err = await rejection(ch.basicPublish('', queue, Buffer.from('not mine'), { userId: 'guest' }));
    assert.ok(err instanceof ChannelClosedByServer && err.replyCode === 406, String(err));
    assert.match(err.message, /user_id property set to 'guest' but authenticated user was 'warren-client'/);
    await conn.close();
  });

  test('auth_mechanism=external in the URL does the same', async () => {
    const conn = await open(`amqps://localhost:${node.tlsPort}?auth_mechanism=external`, {
      tls: { ca: node.ca, cert: node.cert, key: node.key },
    });
    await roundTrip(conn, 'external from the URL');
    await conn.close();
  });

  test('EXTERNAL without a client certificate is refused as an authentication failure', async () => {
    const err = await rejection(
      within(
        connect(`amqps://localhost:${node.tlsPort}?auth_mechanism=external`, { tls: { ca: node.ca } }),
        20_000,
        'refusal',
      ),
    );
    assert.ok(err instanceof AuthenticationError, String(err));
  });

  test('a client certificate from an unknown CA is refused by the server', async () => {
    const err = await rejection(
      within(
        connect(`amqps://localhost:${node.tlsPort}`, {
          tls: { ca: node.ca, cert: node.otherCert, key: node.otherKey },
        }),
        20_000,
        'refusal',
      ),
    );
    assert.ok(err instanceof ConnectionError, String(err));
  });
});

describe('a wrong password never leaks', () => {
  const secret = 'Wr0ng-p4ss-xyzzy';

  for (const mechanism of ['PLAIN', 'AMQPLAIN'] as const) {
    for (const secure of [true, false]) {
      test(`${mechanism} over ${secure ? 'amqps' : 'amqp'}: not in the error, its causes, the frame trace or inspect()`, async () => {
        const trace: string[] = [];
        const url = secure
          ? `amqps://guest:${secret}@localhost:${node.tlsPort}`
          : `amqp://guest:${secret}@127.0.0.1:${node.port}`;
        const err = await rejection(
          within(
            connect(url, {
              mechanism,
              debug: (line) => trace.push(line),
              ...(secure ? { tls: { ca: node.ca } } : {}),
            }),
            20_000,
            'refusal',
          ),
        );
        assert.ok(err instanceof AuthenticationError, String(err));
        assert.match(err.message, /refused the credentials of user 'guest'/);
        assert.ok(
          trace.some((l) => l.includes('connection.start-ok')),
          'the trace shows start-ok',
        );
        for (const text of [errorText(err), inspect(err, { depth: 10 }), trace.join('\n')]) {
          assert.ok(!text.includes(secret), `the password leaked into: ${text.slice(0, 500)}`);
        }
      });
    }
  }

  test('an open connection, when logged or inspected, shows no password or private key', async () => {
    const conn = await open(`amqps://guest:guest@localhost:${node.tlsPort}`, {
      tls: { ca: node.ca, cert: node.cert, key: node.key },
      mechanism: 'PLAIN',
    });
    const ch = await conn.openChannel();
    for (const text of [inspect(conn, { depth: 10 }), inspect(ch, { depth: 10 }), String(conn)]) {
      assert.ok(!text.includes(':guest@') && !/password/i.test(text), `credentials in: ${text.slice(0, 300)}`);
      assert.ok(!text.includes(node.key.toString().slice(40, 80)), 'the private key is in the output');
    }
    await conn.close();
  });

  test('the robust client, when logged or inspected, shows no password', async () => {
    const client = createClient({ urls: [`amqps://guest:guest@localhost:${node.tlsPort}`], tls: { ca: node.ca } });
    try {
      await client.declareQueue('', { exclusive: true });
      const text = inspect(client, { depth: 10 });
      assert.ok(!text.includes(':guest@') && !/password/i.test(text), `credentials in: ${text.slice(0, 300)}`);
    } finally {
      await client.close({ timeout: 1000 });
    }
  });

  test('the robust client: not in its error, its connect-failed reports or its events', async () => {
    const client = createClient({
      urls: [`amqps://guest:${secret}@localhost:${node.tlsPort}`],
      tls: { ca: node.ca },
      backoff: { initialDelay: 10, maxDelay: 50 },
    });
    const reports: string[] = [];
    client.on('connectFailed', (error, info) => reports.push(errorText(error), info.url));
    client.on('error', (error) => reports.push(errorText(error)));
    try {
      const err = await rejection(within(client.declareQueue('', { exclusive: true }), 20_000, 'the refusal'));
      assert.ok(err instanceof AuthenticationError, String(err));
      reports.push(errorText(err), inspect(err, { depth: 10 }));
      assert.ok(reports.length >= 3);
      for (const text of reports) assert.ok(!text.includes(secret), `the password leaked into: ${text.slice(0, 300)}`);
    } finally {
      await client.close({ timeout: 1000 }).catch(() => {});
    }
  });
});

describe('updateSecret', () => {
  test('swaps the credential of a live TLS connection; the connection and its channels go on', async () => {
    const trace: string[] = [];
    const conn = await open(node.tlsUrl, { tls: { ca: node.ca }, debug: (line) => trace.push(line) });
    const ch = await conn.openChannel();
    await ch.confirmSelect();
    const { queue } = await ch.queueDeclare('', { exclusive: true });
    await ch.basicPublish('', queue, Buffer.from('before'));
    const newSecret = 'fresh-token-0451';
    await within(conn.updateSecret(newSecret, 'token refresh'), 10_000, 'update-secret-ok');
    await ch.basicPublish('', queue, Buffer.from('after'));
    assert.equal((await ch.basicGet(queue, { noAck: true }))?.body.toString(), 'before');
    assert.equal((await ch.basicGet(queue, { noAck: true }))?.body.toString(), 'after');
    assert.ok(
      trace.some((l) => /connection\.update-secret .*<redacted>/.test(l)),
      'update-secret in the trace',
    );
    assert.ok(!trace.join('\n').includes(newSecret), 'the new secret is in the trace');
    assert.equal(conn.isOpen, true);
    await conn.close();
  });

  test('sends exactly the new secret and reason, and a refusal rejects with CredentialsRefreshError caused by the broker close', async () => {
    const broker = new MemoryBroker();
    const conn = await RawConnection.overStream(broker.clientEnd, { heartbeat: 0 });
    try {
      const ok = conn.updateSecret(Buffer.from('jwt-é.payload.sig'), 'rotate');
      // The memory broker does not answer update-secret; answer by hand.
      const sent = broker.methods.at(-1);
      assert.equal(sent?.method.name, 'connection.update-secret');
      assert.deepEqual(sent?.method.args, { newSecret: 'jwt-é.payload.sig', reason: 'rotate' });
      broker.inject([methodFrame(0, 'connection.update-secret-ok', {})]);
      await within(ok, 5000, 'update-secret-ok');
      const refused = conn.updateSecret('expired', 'rotate');
      broker.inject([
        methodFrame(0, 'connection.close', {
          replyCode: 530,
          replyText: 'NOT_ALLOWED - new secret rejected',
          classId: 10,
          methodId: 70,
        }),
      ]);
      const err = await rejection(within(refused, 5000, 'the refusal'));
      // The refusal is typed as such; the broker's close is its cause.
      assert.ok(err instanceof CredentialsRefreshError, String(err));
      const close = err.cause;
      assert.ok(close instanceof ConnectionClosedByServer && close.replyCode === 530, String(close));
      assert.equal(close.method, 'connection.update-secret');
      assert.ok(!errorText(err).includes('expired'));
    } finally {
      broker.destroy();
      await conn.closed;
    }
  });
});
