/**
 * The fault-injection proxy works, proven with amqplib against the real broker at 127.0.0.1:5672:
 * traffic passes; cutAll kills connections; refuse makes connecting fail; freeze stops every byte
 * (an RPC stalls, heartbeats go missing) until thaw; slow adds latency and limits throughput.
 */
import assert from 'node:assert/strict';
import { after, afterEach, test } from 'node:test';
import { type ChannelModel, connect } from 'amqplib';
import { startProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { settlesWithin, waitFor, firstEvent } from '../support/wait.js';

const BROKER = { host: '127.0.0.1', port: 5672 };

const proxies: TcpProxy[] = [];
const conns: ChannelModel[] = [];
afterEach(async () => {
  for (const c of conns.splice(0)) await c.close().catch(() => {});
});
after(async () => {
  for (const p of proxies) await p.close();
});
async function proxy(): Promise<TcpProxy> {
  const p = await startProxy({ target: BROKER });
  proxies.push(p);
  return p;
}
async function open(url: string): Promise<ChannelModel> {
  const c = await connect(url);
  c.on('error', () => {}); // a cut connection also emits 'error'; the tests watch 'close'
  conns.push(c);
  return c;
}

test('traffic passes through the proxy, and connections are counted', async () => {
  const p = await proxy();
  assert.match(p.url(), /^amqp:\/\/guest:guest@127\.0\.0\.1:\d+$/);
  const conn = await open(p.url());
  assert.equal(p.connectionCount, 1);
  const ch = await conn.createChannel();
  const { queue } = await ch.assertQueue('', { exclusive: true });
  ch.sendToQueue(queue, Buffer.from('through the proxy'));
  let msg: Awaited<ReturnType<typeof ch.get>> = false;
  for (let i = 0; i < 50 && msg === false; i++) {
    msg = await ch.get(queue, { noAck: true });
    if (msg === false) await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(msg !== false);
  assert.equal(msg.content.toString(), 'through the proxy');
  assert.ok(p.bytesForwarded.up > 0 && p.bytesForwarded.down > 0);
  await conn.close();
  conns.length = 0;
  await waitFor(() => p.connectionCount === 0, { timeout: 2000, what: 'the proxy to notice the clean close' });
  assert.equal(p.acceptedCount, 1);
});

test('cutAll() closes every connection: amqplib reports close with an error', async () => {
  const p = await proxy();
  const a = await open(p.url());
  const b = await open(p.url());
  assert.equal(p.connectionCount, 2);
  const closes = [firstEvent(a, ['close'], 3000), firstEvent(b, ['close'], 3000)];
  const started = Date.now();
  p.cutAll();
  for (const { arg } of await Promise.all(closes)) assert.ok(arg instanceof Error, 'close without an error');
  assert.ok(Date.now() - started < 2000);
  await waitFor(() => p.connectionCount === 0, { timeout: 2000, what: 'links to be dropped' });
  // the proxy still accepts new connections afterwards
  const c = await open(p.url());
  await c.createChannel();
});

test("cutAll('reset') resets the sockets", async () => {
  const p = await proxy();
  const a = await open(p.url());
  const closed = firstEvent(a, ['close'], 3000);
  p.cutAll('reset');
  const { arg } = await closed;
  assert.ok(arg instanceof Error);
});

test('refuse(true) makes connecting fail in each mode; refuse(false) restores it', async () => {
  const p = await proxy();
  const kept = await open(p.url());
  for (const mode of ['reset', 'close', 'unlisten'] as const) {
    await p.refuse(true, mode);
    const started = Date.now();
    const attempt = await settlesWithin(
      connect(p.url()).then(
        (c) => {
          void c.close();
          return 'connected';
        },
        (err: unknown) => err,
      ),
      3000,
    );
    assert.ok(attempt.settled, `connect hung with refuse mode ${mode}`);
    assert.ok(attempt.value instanceof Error, `connected although refusing (${mode})`);
    if (mode === 'unlisten') assert.match(String((attempt.value as NodeJS.ErrnoException).code), /ECONNREFUSED/);
    assert.ok(Date.now() - started < 2000);
    await p.refuse(false);
    const c = await open(p.url());
    await c.createChannel();
  }
  // connections accepted before refusal were left alone
  await (await kept.createChannel()).close();
});

test('freeze() stops every byte until thaw(): an RPC stalls, then completes in order', async () => {
  const p = await proxy();
  const conn = await open(p.url());
  const ch = await conn.createChannel();
  const { queue } = await ch.assertQueue('', { exclusive: true });
  p.freeze();
  assert.equal(p.frozen, true);
  const before = p.bytesForwarded;
  const rpc = ch.checkQueue(queue);
  const stalled = await settlesWithin(rpc, 500);
  assert.equal(stalled.settled, false, 'an RPC completed through a frozen proxy');
  assert.deepEqual(p.bytesForwarded, before, 'bytes moved while frozen');
  assert.equal(p.connectionCount, 1, 'freeze must keep the sockets open');
  p.thaw();
  const done = await settlesWithin(rpc, 2000);
  assert.ok(done.settled, 'the RPC did not complete after thaw');
  assert.equal(done.value.queue, queue);
});

test('freeze() with heartbeat 1: amqplib detects the dead peer within a few seconds', async () => {
  const p = await proxy();
  const conn = await open(p.url('guest', 'guest', 'heartbeat=1'));
  const closed = firstEvent(conn, ['close'], 8000);
  const started = Date.now();
  p.freeze();
  const { arg } = await closed;
  const elapsed = Date.now() - started;
  assert.match(String(arg), /[Hh]eartbeat/);
  assert.ok(elapsed >= 1000 && elapsed < 6000, `detected after ${elapsed} ms`);
  p.thaw();
});

test('slow({ latencyMs }) delays each direction; slow({}) restores full speed', async () => {
  const p = await proxy();
  const conn = await open(p.url());
  const ch = await conn.createChannel();
  const { queue } = await ch.assertQueue('', { exclusive: true });
  const rtt = async () => {
    const t = Date.now();
    await ch.checkQueue(queue);
    return Date.now() - t;
  };
  p.slow({ latencyMs: 150 });
  const slowRtt = await rtt();
  assert.ok(slowRtt >= 290 && slowRtt < 2000, `round trip with 150 ms each way took ${slowRtt} ms`);
  p.slow({});
  const fastRtt = await rtt();
  assert.ok(fastRtt < 250, `round trip after slow({}) took ${fastRtt} ms`);
});

test('slow({ bytesPerSec }) limits throughput', async () => {
  const p = await proxy();
  const conn = await open(p.url());
  const ch = await conn.createChannel();
  const { queue } = await ch.assertQueue('', { exclusive: true });
  const body = Buffer.alloc(40_000, 7);
  ch.sendToQueue(queue, body);
  for (let i = 0; i < 100 && (await ch.checkQueue(queue)).messageCount === 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  p.slow({ bytesPerSec: 40_000 });
  const t = Date.now();
  const msg = await ch.get(queue, { noAck: true });
  const elapsed = Date.now() - t;
  assert.ok(msg !== false);
  assert.deepEqual(msg.content, body);
  assert.ok(elapsed >= 700 && elapsed < 5000, `40 kB at 40 kB/s took ${elapsed} ms`);
  p.slow({});
});
