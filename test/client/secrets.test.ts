/**
 * Secrets appear nowhere (guarantee 7), whatever the URL looks like: a password with an unencoded
 * `@` is parsed as WHATWG URL does (user information up to the last `@`), and no surface — error
 * messages, stacks and causes, `util.inspect` (depth Infinity, showHidden), `JSON.stringify`, walks
 * over enumerable properties, frame traces, client events — of a client, connection, channel,
 * publisher, subscription, RPC client, resolved options or error shows the password.
 *
 * Connected objects use a scripted broker (test/support/fake-server.ts), which accepts any password,
 * so the password can be one that occurs nowhere else; refusals use the real broker.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { inspect } from 'node:util';
import { resolveOptions } from '../../src/connection/options.js';
import {
  AuthenticationError,
  type Client,
  connect,
  createClient,
  InvalidArgumentError,
  parseUrl,
  redactUrl,
  SocketError,
} from '../../src/index.js';
import { errorText, rejection } from '../support/broker.js';
import { type FakeConnection, type FakeServer, startFakeServer } from '../support/fake-server.js';
import { within } from '../support/wait.js';

/** A password with an unencoded '@'; its tail is what a first-'@' split used to take for the host. */
const SECRET = 'top@secret-Zq9x';
const PIECES = [SECRET, 'secret-Zq9x', 'Zq9x'];
const servers: FakeServer[] = [];

after(async () => {
  for (const s of servers) await s.close();
});

/** Everything an application or its logger could print of `value`. */
function surfaces(value: unknown): string[] {
  const out = [
    inspect(value, { depth: Number.POSITIVE_INFINITY, showHidden: true }),
    inspect(value, { depth: Number.POSITIVE_INFINITY, showHidden: true, getters: true }),
    String(value),
    walk(value),
  ];
  let json: string;
  try {
    json = JSON.stringify(value) ?? '';
  } catch (err) {
    json = `JSON.stringify threw: ${(err as Error).message}`;
  }
  out.push(json);
  if (value instanceof Error) out.push(errorText(value));
  return out;
}

/** What a naive logger finds walking enumerable own properties (and calling their getters). */
function walk(root: unknown): string {
  const seen = new Set<unknown>();
  const parts: string[] = [];
  const visit = (v: unknown, depth: number): void => {
    if (depth > 30 || parts.length > 200_000) return;
    if (typeof v === 'string') parts.push(v);
    else if (Buffer.isBuffer(v)) parts.push(v.toString('latin1'));
    else if (v !== null && typeof v === 'object') {
      if (seen.has(v)) return;
      seen.add(v);
      if (v instanceof Error) parts.push(v.message, v.stack ?? '');
      let entries: [string, unknown][];
      try {
        entries = Object.entries(v);
      } catch {
        return;
      }
      for (const [k, child] of entries) {
        parts.push(k);
        visit(child, depth + 1);
      }
      if (v instanceof Map) for (const [k, child] of v) visit([k, child], depth + 1);
      if (v instanceof Set) for (const child of v) visit(child, depth + 1);
    } else if (v !== undefined && v !== null) parts.push(String(v));
  };
  visit(root, 0);
  return parts.join('\n');
}

function assertNoSecret(what: string, value: unknown): void {
  for (const text of surfaces(value)) {
    for (const piece of PIECES) {
      assert.ok(!text.includes(piece), `${what}: '${piece}' appears in: ${text.slice(0, 400)}`);
    }
  }
}

test("a password with an unencoded '@' is parsed up to the last '@', as WHATWG URL does", () => {
  const o = parseUrl(`amqp://guest:${SECRET}@127.0.0.1:5673/v`);
  assert.equal(o.username, 'guest');
  assert.equal(o.password, SECRET);
  assert.equal(o.host, '127.0.0.1');
  assert.equal(o.port, 5673);
  assert.equal(o.vhost, 'v');
  const whatwg = new URL(`amqp://guest:${SECRET}@127.0.0.1:5673/v`);
  assert.equal(decodeURIComponent(whatwg.password), o.password);
  assert.equal(whatwg.hostname, o.host);
  // '@' in the user name too, and several in the password.
  const p = parseUrl('amqp://a@b:c@d@e@host');
  assert.deepEqual([p.username, p.password, p.host], ['a@b', 'c@d@e', 'host']);
  assert.equal(parseUrl(`amqps://guest:${SECRET}@h`).host, 'h');
});

test('redactUrl hides a password holding @, / ? or #', () => {
  for (const pw of [SECRET, 'a/b@secret-Zq9x', 'a?b@secret-Zq9x', 'x#y@secret-Zq9x']) {
    const shown = redactUrl(`amqp://guest:${pw}@127.0.0.1:5672/v`);
    assert.ok(!shown.includes('Zq9x'), shown);
  }
  assert.equal(redactUrl(`amqp://guest:${SECRET}@h:1/v`), 'amqp://guest:***@h:1/v');
  assert.equal(redactUrl('amqp://a@b:c@d@host'), 'amqp://a@b:***@host');
  assert.equal(redactUrl('amqp://u@h:5672'), 'amqp://u@h:5672');
  // Without a scheme, or with a mistyped one, the password is still hidden.
  for (const url of [
    `guest:${SECRET}@host`,
    `//guest:${SECRET}@host`,
    `amqp//guest:${SECRET}@h`,
    `amqp:/g:${SECRET}@h`,
  ]) {
    assert.ok(!redactUrl(url).includes('Zq9x'), redactUrl(url));
  }
});

test('URL errors never show such a password: bad port, bad query, bad encoding, a slash that ends the host', () => {
  for (const url of [
    `amqp://guest:${SECRET}@127.0.0.1:99999`,
    `amqp://guest:${SECRET}@127.0.0.1:port`,
    `amqp://guest:${SECRET}@127.0.0.1?heartbeat=x`,
    `amqp://guest:${SECRET}%ZZ@127.0.0.1`,
    `amqp://guest:a/b${SECRET}@127.0.0.1`,
    `amqp://gu/est:${SECRET}@127.0.0.1`,
    `amqp://guest:${SECRET}@127.0.0.1/v%ZZ`,
    `http://guest:${SECRET}@127.0.0.1`,
    `guest:${SECRET}@127.0.0.1:5672`,
    `amqp//guest:${SECRET}@127.0.0.1`,
  ]) {
    let caught: unknown;
    try {
      resolveOptions(url);
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof InvalidArgumentError, `${url}: ${String(caught)}`);
    assertNoSecret(`the error for ${url}`, caught);
    // The robust client validates its URLs up front the same way.
    assert.throws(() => createClient({ urls: [url] }), InvalidArgumentError);
  }
});

test('resolved options: JSON and inspect show no password; the password is still used', () => {
  const o = resolveOptions(`amqp://guest:${SECRET}@127.0.0.1:5672`);
  assert.equal(o.password, SECRET);
  assert.ok(!Object.keys(o).includes('toJSON'));
  const shown = [JSON.stringify(o), inspect(o, { depth: Number.POSITIVE_INFINITY, showHidden: true })];
  for (const text of shown) assert.ok(!text.includes('Zq9x'), text);
  assert.match(JSON.stringify(o), /"password":"\*\*\*"/);
});

test('refused by the real broker: the error, its causes, the frame trace and the client events show no password', {
  timeout: 20_000,
}, async () => {
  const trace: string[] = [];
  const err = await rejection(
    within(connect(`amqp://guest:${SECRET}@127.0.0.1:5672`, { debug: (l) => trace.push(l) }), 10_000, 'refusal'),
  );
  assert.ok(err instanceof AuthenticationError, String(err));
  assertNoSecret('the AuthenticationError', err);
  assert.ok(trace.some((l) => l.includes('connection.start-ok')));
  assertNoSecret('the frame trace', trace);

  const client = createClient({ urls: [`amqp://guest:${SECRET}@127.0.0.1:5672`], backoff: { initialDelay: 10 } });
  const events: unknown[] = [];
  client.on('connectFailed', (error, info) => events.push(error, info));
  client.on('error', (error) => events.push(error));
  const refused = await rejection(within(client.ready(), 10_000, 'the refusal'));
  assert.ok(refused instanceof AuthenticationError);
  assert.ok(events.length >= 3);
  assertNoSecret('the client events', events);
  assertNoSecret('the failed client', client);
  assertNoSecret("the failed client's error on a later call", await rejection(client.declareQueue('x')));
  await client.close();
});

test('a port nobody listens on: the SocketError and connectFailed show no password', { timeout: 20_000 }, async () => {
  const err = await rejection(within(connect(`amqp://guest:${SECRET}@127.0.0.1:1`), 10_000, 'refused'));
  assert.ok(err instanceof SocketError, String(err));
  assertNoSecret('the SocketError', err);
  const client = createClient({ urls: [`amqp://guest:${SECRET}@127.0.0.1:1`], backoff: { initialDelay: 10 } });
  const failed: unknown[] = [];
  client.on('connectFailed', (error, info) => failed.push(error, info));
  await within(new Promise<void>((resolve) => client.once('connectFailed', () => resolve())), 5000, 'a connectFailed');
  assertNoSecret('connectFailed', failed);
  assertNoSecret('a reconnecting client', client);
  await client.close({ timeout: 1000 });
});

/** Plays just enough of a broker for a robust client: channels, declares, qos, consume, confirms. */
async function miniBroker(s: FakeConnection): Promise<void> {
  await s.handshake();
  const confirming = new Map<number, number>();
  for (;;) {
    let f: Awaited<ReturnType<FakeConnection['recv']>>;
    try {
      f = await s.recv({ timeoutMs: 15_000 });
    } catch {
      return;
    }
    const ch = f.channel;
    if (f.type === 3 && confirming.has(ch)) {
      const tag = confirming.get(ch)! + 1;
      confirming.set(ch, tag);
      s.send(ch, 'basic.ack', { deliveryTag: tag, multiple: false });
      continue;
    }
    const m = f.method;
    if (m === undefined) continue;
    switch (m.name) {
      case 'channel.open':
        s.send(ch, 'channel.open-ok', {});
        break;
      case 'channel.close':
        s.send(ch, 'channel.close-ok', {});
        confirming.delete(ch);
        break;
      case 'confirm.select':
        confirming.set(ch, 0);
        s.send(ch, 'confirm.select-ok', {});
        break;
      case 'basic.qos':
        s.send(ch, 'basic.qos-ok', {});
        break;
      case 'queue.declare':
        s.send(ch, 'queue.declare-ok', { queue: m.args.queue || 'amq.gen-1', messageCount: 0, consumerCount: 0 });
        break;
      case 'basic.consume':
        s.send(ch, 'basic.consume-ok', { consumerTag: m.args.consumerTag || `ctag-${ch}` });
        break;
      case 'basic.cancel':
        s.send(ch, 'basic.cancel-ok', { consumerTag: m.args.consumerTag });
        break;
      case 'connection.close':
        s.send(0, 'connection.close-ok', {});
        return;
      default:
        break;
    }
  }
}

test('connected: client, connection, channel, publisher, subscription, RPC client show no password anywhere', {
  timeout: 20_000,
}, async () => {
  const server = await startFakeServer(miniBroker);
  servers.push(server);
  const url = `amqp://guest:${SECRET}@127.0.0.1:${server.port}`;
  const trace: string[] = [];
  const client: Client = createClient({ urls: [url], name: 'secrets', debug: (l) => trace.push(l) });
  const events: unknown[] = [];
  client.on('connect', (info) => events.push(info));
  try {
    await within(client.declareQueue('q1'), 5000, 'a declare');
    const pub = client.publisher();
    await within(pub.publish('', 'q1', Buffer.from('hello')), 5000, 'a confirmed publish');
    const sub = client.consume('q1', () => {});
    await within(sub.ready(), 5000, 'subscribed');
    const call = client.rpc('rpc.q', 'ping', { timeout: 300 }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    const rpcClient = (client as unknown as { rpcClient: unknown }).rpcClient;
    assert.ok(rpcClient !== undefined, 'the RPC client exists');
    for (const [what, value] of [
      ['the client', client],
      ['the publisher', pub],
      ['the subscription', sub],
      ['the RPC client', rpcClient],
      ['the connect event', events],
      ['the frame trace', trace],
    ] as const) {
      assertNoSecret(what, value);
    }
    assert.match(JSON.stringify(client), /"urls":\["amqp:\/\/guest:\*\*\*@127\.0\.0\.1:\d+"\]/);
    assertNoSecret('the timed-out RPC call', await call);
  } finally {
    await client.close({ timeout: 1000 });
  }

  const conn = await within(connect(url), 5000, 'a low-level connection');
  try {
    const ch = await conn.openChannel();
    assertNoSecret('the connection', conn);
    assertNoSecret('the channel', ch);
    assert.deepEqual(JSON.parse(JSON.stringify(ch)), { type: 'Channel', id: ch.id, state: 'open' });
    assert.equal(JSON.parse(JSON.stringify(conn)).url, `amqp://guest@127.0.0.1:${server.port}`);
  } finally {
    await conn.close();
  }
});

test('credentials given as a function: the token shows nowhere, neither at connect nor after a refresh', {
  timeout: 20_000,
}, async () => {
  const server = await startFakeServer(async (s) => {
    await s.handshake({ heartbeat: 0 });
    await s.recvMethod('connection.update-secret', { timeoutMs: 5000 });
    s.send(0, 'connection.update-secret-ok', {});
    await s.recvMethod('connection.close', { timeoutMs: 5000 });
    s.send(0, 'connection.close-ok', {});
  });
  servers.push(server);
  const trace: string[] = [];
  let issued = 0;
  const credentials = () => ({ username: 'svc', password: `${SECRET}-${++issued}`, expiresAt: Date.now() + 600 });
  assertNoSecret('the resolved options', resolveOptions({ credentials }));
  const conn = await within(
    connect({ host: '127.0.0.1', port: server.port, credentials, debug: (l) => trace.push(l) }),
    5000,
    'connect',
  );
  try {
    await within(new Promise((resolve) => conn.once('credentialsRefreshed', resolve)), 5000, 'the refresh');
    assert.equal(issued, 2);
    assertNoSecret('the connection with a refreshed token', conn);
    assertNoSecret('the frame trace with update-secret', trace);
    assert.ok(trace.some((l) => l.includes('update-secret')));
  } finally {
    await conn.close();
  }
});
