// The public API on one runtime, as a user's program uses it: plain JavaScript importing the installed
// package (`warren`, so the built dist, through the package's exports), no TypeScript loader. Run by
// test/runtimes/runtimes.test.ts under Node 20/22/24/26, Bun and Deno, from a scratch project that
// installed warren from a git URL; it can also be run by hand from any project that has warren:
//
//   WARREN_URL=amqp://guest:guest@127.0.0.1:5672 bun public-api.mjs
//   deno run --allow-net --allow-read public-api.mjs settings.json
//
// Settings: WARREN_URL (the broker), and optionally WARREN_PROXY_URL with WARREN_CONTROL_URL (a
// proxy to the broker and the URL whose GET /cut cuts its connections), WARREN_TLS_URL with
// WARREN_TLS_CA (a TLS endpoint to the broker and the PEM file of its certificate).
// Prints one JSON line per check ({ check, ok, ms, error? }) and exits 1 if any failed.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AMQPError, connect, createClient, InvalidArgumentError, VERSION } from 'warren';

// The settings come from the JSON file given as the first argument, else from the environment: Deno
// runs this without env access, to show that warren does not need it.
const configFile = process.argv[2];
const config = configFile ? JSON.parse(readFileSync(configFile, 'utf8')) : undefined;
const env = (name) => (config ? config[name] : process.env[name]);
const url = env('WARREN_URL') ?? 'amqp://guest:guest@127.0.0.1:5672';
const fast = { backoff: { initialDelay: 20, maxDelay: 200 }, connectionTimeout: 5000 };
const unique = (what) => `warren-runtime-${what}-${randomUUID().slice(0, 8)}`;

function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function equal(actual, expected, what) {
  const [a, e] = [JSON.stringify(actual), JSON.stringify(expected)];
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

/** Resolves once `predicate()` holds, checking every 10 ms. */
async function until(predicate, what, ms = 10_000) {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`${what}: not after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const checks = {
  async 'errors and version'() {
    equal(typeof VERSION, 'string', 'VERSION');
    let thrown;
    try {
      await connect(url, { heartbeat: -1 });
    } catch (err) {
      thrown = err;
    }
    equal([thrown instanceof InvalidArgumentError, thrown instanceof AMQPError], [true, true], 'instanceof');
  },

  async 'connect, publish, get (low level)'() {
    const conn = await connect(url);
    try {
      const ch = await conn.openChannel();
      const { queue } = await ch.queueDeclare('', { exclusive: true });
      await ch.basicPublish('', queue, Buffer.from('low level'), { contentType: 'text/plain' });
      let msg = null;
      for (let i = 0; i < 200 && msg === null; i++) {
        msg = await ch.basicGet(queue, { noAck: true });
        if (msg === null) await new Promise((r) => setTimeout(r, 10));
      }
      equal([msg?.body.toString(), msg?.properties.contentType], ['low level', 'text/plain'], 'message');
    } finally {
      await conn.close();
    }
  },

  async 'publish with confirms, consume and ack'() {
    const client = createClient({ urls: url, ...fast });
    const queue = unique('work');
    try {
      await client.declareQueue(queue, { exclusive: true });
      const publisher = client.publisher({ confirm: true });
      const count = 20;
      await Promise.all(Array.from({ length: count }, (_, i) => publisher.publish('', queue, `m${i}`)));
      const got = [];
      const sub = client.consume(
        queue,
        async (m) => {
          got.push(m.body.toString());
        },
        { prefetch: 5 },
      );
      await until(() => got.length === count, `${count} messages consumed`);
      await sub.cancel();
      equal(
        got,
        Array.from({ length: count }, (_, i) => `m${i}`),
        'messages in order',
      );
      const left = await client.declareQueue(queue, { passive: true });
      equal(left.messageCount, 0, 'messages left unacked in the queue');
    } finally {
      await client.close();
    }
  },

  async rpc() {
    const client = createClient({ urls: url, ...fast });
    const queue = unique('rpc');
    try {
      await client.declareQueue(queue, { exclusive: true });
      const server = client.rpcServer(queue, (req) => `echo ${req.body.toString()}`);
      await within(5000, 'rpc server subscribed', new Promise((r) => server.once('subscribe', r)));
      const replies = await Promise.all(['a', 'b', 'c'].map((x) => client.rpc(queue, x, { timeout: 5000 })));
      equal(
        replies.map((m) => m.body.toString()),
        ['echo a', 'echo b', 'echo c'],
        'replies',
      );
      await server.cancel();
    } finally {
      await client.close();
    }
  },

  async 'reconnect through a cut'() {
    const proxyUrl = env('WARREN_PROXY_URL');
    const control = env('WARREN_CONTROL_URL');
    if (!proxyUrl || !control) return 'skipped: no WARREN_PROXY_URL/WARREN_CONTROL_URL';
    const client = createClient({ urls: proxyUrl, ...fast });
    const queue = unique('cut');
    const connects = [];
    client.on('connect', (info) => connects.push(info.generation));
    client.on('disconnect', () => {});
    try {
      await client.declareQueue(queue, { durable: false, autoDelete: false });
      const got = [];
      client.consume(queue, async (m) => {
        got.push(m.body.toString());
      });
      const publisher = client.publisher({ confirm: true });
      await publisher.publish('', queue, 'before');
      await until(() => got.includes('before'), 'delivery before the cut');
      const cut = await fetch(`${control}/cut`);
      equal(cut.status, 200, 'the proxy cut its connections');
      await cut.text();
      await until(() => connects.length >= 2, 'reconnected after the cut');
      await publisher.publish('', queue, 'after');
      await until(() => got.includes('after'), 'delivery after the cut');
    } finally {
      try {
        await client.deleteQueue(queue);
      } finally {
        await client.close();
      }
    }
  },

  async tls() {
    const tlsUrl = env('WARREN_TLS_URL');
    const caFile = env('WARREN_TLS_CA');
    if (!tlsUrl || !caFile) return 'skipped: no WARREN_TLS_URL/WARREN_TLS_CA';
    const ca = readFileSync(caFile, 'utf8');
    const conn = await connect(tlsUrl, { tls: { ca } });
    try {
      const ch = await conn.openChannel();
      const { queue } = await ch.queueDeclare('', { exclusive: true });
      equal(typeof queue, 'string', 'declared over TLS');
    } finally {
      await conn.close();
    }
    // The robust client over TLS, and verification on: the same endpoint without its CA is refused.
    const client = createClient({ urls: tlsUrl, tls: { ca }, ...fast });
    try {
      const q = await client.declareQueue('', { exclusive: true });
      equal(typeof q.queue, 'string', 'robust client over TLS');
    } finally {
      await client.close();
    }
    let refused;
    try {
      const c = await connect(tlsUrl);
      await c.close();
    } catch (err) {
      refused = err;
    }
    equal(refused instanceof AMQPError, true, 'an unknown certificate is refused');
  },
};

const only = env('WARREN_CHECKS')?.split(',');
let failed = 0;
for (const [name, check] of Object.entries(checks)) {
  if (only && !only.includes(name)) continue;
  const start = Date.now();
  try {
    const note = await within(30_000, name, check());
    console.log(JSON.stringify({ check: name, ok: true, ms: Date.now() - start, ...(note ? { note } : {}) }));
  } catch (err) {
    failed++;
    const error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    console.log(JSON.stringify({ check: name, ok: false, ms: Date.now() - start, error }));
  }
}
process.exit(failed === 0 ? 0 : 1);
