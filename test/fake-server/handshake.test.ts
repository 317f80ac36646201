/**
 * The handshake against a scripted broker: refused credentials, a dropped socket, a foreign protocol
 * header, a refused vhost, silence, a missing SASL mechanism; what start-ok carries; tune
 * negotiation; channel-max enforcement and channel id reuse.
 */
import assert from 'node:assert/strict';
import {
  AuthenticationError,
  ChannelError,
  ConnectionClosedByServer,
  connect,
  HandshakeError,
  TimeoutError,
} from '../../src/index.js';
import { FRAME_BODY } from '../../src/protocol/generated/constants.js';
import type { FieldTable } from '../../src/protocol/field-values.js';
import { Reader } from '../../src/protocol/reader.js';
import type { FakeConnection, HandshakeResult, ReceivedContent } from '../support/fake-server.js';
import { assertInstance, fakeTest, observe, open, rejection, serve } from './helpers.js';
import { within } from '../support/wait.js';
import { methodFrame } from '../support/frames.js';
import { playBroker } from '../support/fake-server.js';

function sendStart(s: FakeConnection, mechanisms = 'PLAIN AMQPLAIN'): void {
  s.send(0, 'connection.start', {
    versionMajor: 0,
    versionMinor: 9,
    serverProperties: { product: 'RabbitMQ', version: '3.13.0' },
    mechanisms,
    locales: 'en_US',
  });
}

/** Message, stack and string form of an error and its causes, for leak checks. */
function everythingSaid(err: unknown): string {
  const out: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 10; depth++) {
    if (e instanceof Error) {
      out.push(String(e), e.message, e.stack ?? '', JSON.stringify(e));
      e = e.cause;
    } else {
      out.push(String(e));
      break;
    }
  }
  return out.join('\n');
}

const PASSWORD = 'Pa55-w0rd-never-shown';

fakeTest(
  'refused credentials (connection.close 403 after start-ok) reject with AuthenticationError; the password stays secret and close-ok is sent',
  async () => {
    let closeOkSent = false;
    const server = await serve(async (s) => {
      await s.expectHeader();
      sendStart(s);
      await s.recvMethod('connection.start-ok');
      s.send(0, 'connection.close', {
        replyCode: 403,
        replyText: 'ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN',
        classId: 0,
        methodId: 0,
      });
      await s.recvMethod('connection.close-ok');
      closeOkSent = true;
      s.end();
    });
    const err = await rejection(
      connect(`amqp://alice:${PASSWORD}@127.0.0.1:${server.port}`, { heartbeat: 0, connectionTimeout: 3000 }),
    );
    const auth = assertInstance(err, AuthenticationError);
    assert.match(auth.message, /alice/, 'names the user');
    assert.match(auth.message, /403/);
    assert.equal(auth.recoverable, false);
    assert.ok(!everythingSaid(err).includes(PASSWORD), 'the password must not appear anywhere in the error');
    await server.done();
    assert.ok(closeOkSent, 'warren answered the close with close-ok');
  },
);

for (const how of ['end', 'destroy'] as const) {
  fakeTest(`a socket the server drops right after start-ok (${how}) rejects with AuthenticationError`, async () => {
    const server = await serve(async (s) => {
      await s.expectHeader();
      sendStart(s);
      await s.recvMethod('connection.start-ok');
      if (how === 'end') s.end();
      else s.destroy();
    });
    const started = Date.now();
    const err = await rejection(
      connect(`amqp://alice:${PASSWORD}@127.0.0.1:${server.port}`, { heartbeat: 0, connectionTimeout: 3000 }),
    );
    const auth = assertInstance(err, AuthenticationError);
    assert.match(auth.message, /alice/);
    assert.ok(!everythingSaid(err).includes(PASSWORD), 'the password must not appear anywhere in the error');
    assert.ok(Date.now() - started < 2000, 'reported at once, not after the connection timeout');
    await server.done();
  });
}

for (const [label, header] of [
  ['AMQP 0-9-1 of another revision', 'AMQP\x00\x00\x09\x00'],
  ['AMQP 1.0', 'AMQP\x00\x01\x00\x00'],
] as const) {
  fakeTest(`a server that answers with its own protocol header (${label}) rejects with HandshakeError`, async () => {
    const server = await serve(async (s) => {
      await s.expectHeader();
      s.sendRaw(Buffer.from(header, 'latin1'));
      s.end();
    });
    const err = await rejection(connect(server.url, { heartbeat: 0, connectionTimeout: 3000 }));
    const hs = assertInstance(err, HandshakeError);
    assert.ok(!(hs instanceof AuthenticationError), 'not a credentials problem');
    assert.match(hs.message, /protocol/);
    await server.done();
  });
}

fakeTest('a server that speaks another protocol altogether (an HTTP reply) rejects with HandshakeError', async () => {
  const server = await serve(async (s) => {
    await s.expectHeader();
    s.sendRaw(Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
    s.end();
  });
  const err = await rejection(connect(server.url, { heartbeat: 0, connectionTimeout: 3000 }));
  assertInstance(err, HandshakeError);
  await server.done();
});

for (const [code, text] of [
  [530, 'NOT_ALLOWED - vhost my-vhost not found'],
  [403, "ACCESS_REFUSED - access to vhost 'my-vhost' refused for user 'guest'"],
] as const) {
  fakeTest(
    `a refused vhost (connection.close ${code} after connection.open) rejects with HandshakeError naming it`,
    async () => {
      let asked = '';
      const server = await serve(async (s) => {
        await s.expectHeader();
        sendStart(s);
        await s.recvMethod('connection.start-ok');
        s.send(0, 'connection.tune', { channelMax: 2047, frameMax: 131072, heartbeat: 0 });
        await s.recvMethod('connection.tune-ok');
        asked = (await s.recvMethod('connection.open')).args.virtualHost;
        s.send(0, 'connection.close', { replyCode: code, replyText: text, classId: 10, methodId: 40 });
        await s.recvMethod('connection.close-ok');
        s.end();
      });
      const err = await rejection(connect(`${server.url}/my-vhost`, { heartbeat: 0, connectionTimeout: 3000 }));
      const hs = assertInstance(err, HandshakeError);
      assert.ok(!(hs instanceof AuthenticationError), 'the credentials were accepted; the vhost was not');
      assert.match(hs.message, /my-vhost/);
      assert.match(hs.message, new RegExp(String(code)));
      assert.equal(hs.recoverable, false);
      await server.done();
      assert.equal(asked, 'my-vhost');
    },
  );
}

for (const stage of ['header', 'start-ok'] as const) {
  fakeTest(
    `a server that never answers (${stage === 'header' ? 'the protocol header' : 'start-ok'}) makes connect reject with TimeoutError within connectionTimeout`,
    async () => {
      let sawClose = false;
      const server = await serve(async (s) => {
        await s.expectHeader();
        if (stage === 'start-ok') {
          sendStart(s);
          await s.recvMethod('connection.start-ok');
        }
        await within(s.closed, 3000, 'warren closing the socket');
        sawClose = true;
      });
      const started = Date.now();
      const err = await rejection(connect(server.url, { heartbeat: 0, connectionTimeout: 500 }), 3000);
      const elapsed = Date.now() - started;
      const timeout = assertInstance(err, TimeoutError);
      assert.match(timeout.message, /500 ms/);
      assert.ok(elapsed >= 450 && elapsed < 1500, `rejected after ${elapsed} ms`);
      await server.done();
      assert.ok(sawClose, 'warren closed the socket it gave up on');
    },
  );
}

fakeTest(
  'a broker that does not offer the wanted mechanism rejects with HandshakeError naming what it offers',
  async () => {
    let startOkSent = true;
    const server = await serve(async (s) => {
      await s.expectHeader();
      sendStart(s, 'EXTERNAL AMQPLAIN');
      await within(s.closed, 3000, 'warren closing the socket');
      startOkSent = s.received.some((f) => f.method?.name === 'connection.start-ok');
    });
    const err = await rejection(connect(server.url, { heartbeat: 0, connectionTimeout: 3000 }));
    const hs = assertInstance(err, HandshakeError);
    assert.ok(!(hs instanceof AuthenticationError));
    assert.match(hs.message, /PLAIN/, 'names the mechanism wanted');
    assert.match(hs.message, /EXTERNAL/, 'names what is offered');
    assert.match(hs.message, /AMQPLAIN/, 'names everything offered');
    await server.done();
    assert.equal(startOkSent, false, 'no credentials were sent');
  },
);

fakeTest('start-ok carries client properties, capabilities, connection_name and the PLAIN response', async () => {
  let hs: HandshakeResult | undefined;
  const server = await serve(async (s) => {
    hs = await s.handshake({ heartbeat: 0 });
    await playBroker(s);
  });
  const conn = await connect(`amqp://alice:${PASSWORD}@127.0.0.1:${server.port}`, {
    heartbeat: 0,
    name: 'svc-a',
    clientProperties: { team: 'payments' },
  });
  assert.equal(conn.serverProperties.product, 'RabbitMQ', 'server properties are exposed');
  await conn.close();
  await server.done();
  assert.ok(hs);
  const { startOk } = hs;
  assert.equal(startOk.mechanism, 'PLAIN');
  assert.equal(startOk.response, `\u0000alice\u0000${PASSWORD}`);
  assert.equal(startOk.locale, 'en_US');
  const props = startOk.clientProperties;
  assert.equal(props.product, 'warren');
  assert.equal(typeof props.version, 'string');
  assert.equal(typeof props.platform, 'string');
  assert.equal(props.connection_name, 'svc-a');
  assert.equal(props.team, 'payments', 'extra client properties are merged in');
  const caps = props.capabilities as FieldTable;
  for (const cap of [
    'publisher_confirms',
    'consumer_cancel_notify',
    'connection.blocked',
    'authentication_failure_close',
    'basic.nack',
    'exchange_exchange_bindings',
  ]) {
    assert.equal(caps[cap], true, `capability ${cap}`);
  }
});

fakeTest('AMQPLAIN sends LOGIN and PASSWORD as a field table', async () => {
  let hs: HandshakeResult | undefined;
  const server = await serve(async (s) => {
    hs = await s.handshake({ heartbeat: 0, mechanisms: 'AMQPLAIN' });
    await playBroker(s);
  });
  const conn = await connect(`amqp://alice:${PASSWORD}@127.0.0.1:${server.port}`, {
    heartbeat: 0,
    mechanism: 'AMQPLAIN',
  });
  await conn.close();
  await server.done();
  assert.ok(hs);
  assert.equal(hs.startOk.mechanism, 'AMQPLAIN');
  // RabbitMQ reads the response as a table without its leading length.
  const raw = Buffer.from(hs.startOk.response, 'utf8');
  const framed = Buffer.alloc(raw.length + 4);
  framed.writeUInt32BE(raw.length, 0);
  raw.copy(framed, 4);
  assert.deepEqual(new Reader(framed, 0, framed.length).table(), { LOGIN: 'alice', PASSWORD });
});

interface TuneCase {
  label: string;
  server: { channelMax: number; frameMax: number; heartbeat: number };
  client: { channelMax?: number; frameMax?: number; heartbeat?: number };
  want: { channelMax: number; frameMax: number; heartbeat: number };
  todo?: string;
}

const tuneCases: TuneCase[] = [
  {
    label: 'server 0/0/0 (no limits) with client defaults → the client values',
    server: { channelMax: 0, frameMax: 0, heartbeat: 0 },
    client: {},
    want: { channelMax: 2047, frameMax: 131072, heartbeat: 60 },
  },
  {
    label: 'server frame-max 4096, below the client’s → 4096',
    server: { channelMax: 2047, frameMax: 4096, heartbeat: 0 },
    client: { heartbeat: 0 },
    want: { channelMax: 2047, frameMax: 4096, heartbeat: 0 },
  },
  {
    label: 'server heartbeat 5, client 30 → 5',
    server: { channelMax: 2047, frameMax: 131072, heartbeat: 5 },
    client: { heartbeat: 30 },
    want: { channelMax: 2047, frameMax: 131072, heartbeat: 5 },
  },
  {
    label: 'client limits below the server’s → the client’s',
    server: { channelMax: 2047, frameMax: 131072, heartbeat: 60 },
    client: { channelMax: 10, frameMax: 8192, heartbeat: 20 },
    want: { channelMax: 10, frameMax: 8192, heartbeat: 20 },
  },
  {
    label: 'client heartbeat 0 (no preference), server 60 → the server’s 60',
    server: { channelMax: 2047, frameMax: 131072, heartbeat: 60 },
    client: { heartbeat: 0 },
    want: { channelMax: 2047, frameMax: 131072, heartbeat: 60 },
  },
];

for (const c of tuneCases) {
  fakeTest(
    `tune: ${c.label}`,
    async () => {
      let hs: HandshakeResult | undefined;
      const server = await serve(async (s) => {
        hs = await s.handshake(c.server);
        await playBroker(s);
      });
      const conn = await connect(server.url, { connectionTimeout: 3000, ...c.client });
      const seen = { channelMax: conn.channelMax, frameMax: conn.frameMax, heartbeat: conn.heartbeat };
      await conn.close();
      await server.done();
      assert.ok(hs);
      assert.deepEqual(hs.tuneOk, c.want, 'tune-ok sent to the server');
      assert.deepEqual(seen, c.want, 'limits the connection uses');
    },
    c.todo === undefined ? {} : { todo: c.todo },
  );
}

fakeTest('a negotiated frame-max of 4096 splits a 10000-byte publish into body frames that fit', async () => {
  let published: ReceivedContent<'basic.publish'> | undefined;
  const server = await serve(async (s) => {
    await s.handshake({ frameMax: 4096, heartbeat: 0 });
    await playBroker(s, {
      onInput: (input) => {
        if (input.kind === 'publish') published = input.c;
        return false;
      },
    });
  });
  const conn = await open(server);
  const ch = await conn.openChannel();
  const body = Buffer.alloc(10000);
  for (let i = 0; i < body.length; i++) body[i] = i % 251;
  await ch.basicPublish('ex', 'rk', body);
  await conn.close();
  await server.done();
  assert.ok(published);
  assert.deepEqual(published.body, body);
  assert.equal(published.bodyFrames, 3);
  const bodyFrames = server.connections[0]!.received.filter((f) => f.type === FRAME_BODY);
  for (const f of bodyFrames) assert.ok(f.payload.length + 8 <= 4096, `body frame of ${f.payload.length + 8} B`);
});

fakeTest('channel-max 3: a 4th channel rejects with ChannelError, and a closed channel’s id is reused', async () => {
  let tuneOkChannelMax = -1;
  const server = await serve(async (s) => {
    const hs = await s.handshake({ channelMax: 2047, heartbeat: 0 });
    tuneOkChannelMax = hs.tuneOk.channelMax;
    await playBroker(s);
  });
  const conn = await open(server, { channelMax: 3 });
  assert.equal(conn.channelMax, 3);
  const chs = [await conn.openChannel(), await conn.openChannel(), await conn.openChannel()];
  assert.deepEqual(
    chs.map((c) => c.id),
    [1, 2, 3],
  );
  const err = await rejection(conn.openChannel(), 2000, 'the 4th openChannel()');
  assertInstance(err, ChannelError);
  assert.match((err as Error).message, /3/);
  assert.ok(conn.isOpen, 'the connection is fine');
  await chs[1]!.close();
  const again = await conn.openChannel();
  assert.equal(again.id, 2, 'the freed id is reused');
  await rejection(conn.openChannel(), 2000, 'another openChannel() while 3 are open');
  await again.close();
  await chs[0]!.close();
  const third = await conn.openChannel();
  assert.ok(third.id === 1 || third.id === 2, `a freed id is reused (got ${third.id})`);
  await conn.close();
  await server.done();
  assert.equal(tuneOkChannelMax, 3);
});

fakeTest(
  'a connection.close 320 that arrives in the same chunk as open-ok is a server close, not a refused vhost',
  async () => {
    const server = await serve(async (s) => {
      await s.expectHeader();
      sendStart(s);
      await s.recvMethod('connection.start-ok');
      s.send(0, 'connection.tune', { channelMax: 2047, frameMax: 131072, heartbeat: 0 });
      await s.recvMethod('connection.tune-ok');
      await s.recvMethod('connection.open');
      s.sendRaw(
        Buffer.concat([
          methodFrame(0, 'connection.open-ok', { knownHosts: '' }),
          methodFrame(0, 'connection.close', {
            replyCode: 320,
            replyText: 'CONNECTION_FORCED - shutdown',
            classId: 0,
            methodId: 0,
          }),
        ]),
      );
      await s.recvMethod('connection.close-ok');
      s.end();
    });
    const result = await within(
      observe(connect(server.url, { heartbeat: 0, connectionTimeout: 3000 })).settled,
      3000,
      'connect()',
    );
    // connect may resolve (the vhost was opened) with a connection that then closed, or reject; either
    // way the reason must be the server's close, not a refused vhost.
    const reason = result.ok ? await within(result.value.closed, 1000, 'closed') : result.error;
    const err = assertInstance(reason, ConnectionClosedByServer);
    assert.equal(err.replyCode, 320);
    await server.done();
  },
);
