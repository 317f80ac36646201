/**
 * Real Python clients through the real broker: pika 1.2 and aioamqp 0.15 (Debian python3-pika and
 * python3-aioamqp, run with /usr/bin/python3; see scripts/install-python-clients.sh).
 *
 * They publish what they can express at its edges — a timestamp of 2^60 s (and 10^13 s and 2^64 − 1,
 * beyond what a JS Date holds), a header table far above warren's frame-max (one content-header
 * frame, as a header cannot be split), floats that happen to be integral (3.0, sent as float32 by
 * aioamqp), every integer width (b s u I i l), decimals, bytes, nested tables and arrays. warren must
 * consume all of it without losing the connection (a second channel on it keeps working), republish
 * each message with its properties unchanged, and the Python client must read the forwarded copy
 * back exactly as it reads a copy that never went through warren: same values, same Python types.
 * The content-header bytes warren sent equal those it received (recorded by a TCP proxy).
 *
 * The other way, warren publishes values (typed integers, float32, 2^60 s timestamps, bigint, bytes,
 * decimals, nested tables) and pika and aioamqp read what warren meant.
 *
 * Without the Python packages these tests are skipped, or fail when CI is set.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  AmqpTimestamp,
  type Connection,
  connect,
  Decimal,
  fieldTypeOf,
  type Message,
  TypedValue,
} from '../../src/index.js';
import { deferred, Resources } from '../support/broker.js';
import { startRecordingProxy } from '../support/recording-proxy.js';
import { within } from '../support/wait.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./hostile.py', import.meta.url));
const FRAME_HEADER = 2;

const available = spawnSync(PYTHON, ['-c', 'import pika, aioamqp'], { stdio: 'ignore' }).status === 0;
const missing = 'pika and aioamqp for /usr/bin/python3 (apt-get install python3-pika python3-aioamqp)';
if (!available && process.env.CI) {
  test('the Python clients are installed', () => {
    assert.fail(`CI needs ${missing}: scripts/install-python-clients.sh installs them`);
  });
}
const skip = available ? false : `needs ${missing}`;

const res = new Resources();
after(() => res.cleanup());

function py(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [SCRIPT, ...args], { timeout: 60_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`hostile.py ${args[0]} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

type Client = 'pika' | 'aioamqp';
/** A message as the Python client sees it: every value with its Python type. */
type Described = Record<string, unknown>;

async function readBack(client: Client, queue: string, count: number): Promise<Described[]> {
  const out = await py(`read-${client}`, queue, String(count));
  const messages = out
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Described);
  assert.equal(messages.length, count, `${client} read ${messages.length} of ${count} messages from ${queue}`);
  return messages;
}

const counts = available ? (JSON.parse(await py('count')) as Record<Client, number>) : { pika: 0, aioamqp: 0 };

/** What warren itself must see in what each client published. */
const warrenSees: Record<Client, (byId: Map<string, Message>) => void> = {
  pika(byId) {
    const ts = (id: string) => byId.get(id)?.properties.timestamp;
    for (const [id, seconds] of [
      ['ts-2^60', 2n ** 60n],
      ['ts-1e13', 10n ** 13n],
      ['ts-max', 2n ** 64n - 1n],
    ] as const) {
      const t = ts(id);
      assert.ok(t instanceof AmqpTimestamp, `${id}: an AmqpTimestamp, got ${String(t)}`);
      assert.equal(t.seconds, seconds, `${id}: exact seconds`);
      assert.ok(t instanceof Date && t.getTime() === 8.64e15, `${id}: as a Date, the latest one`);
    }
    const normal = ts('every-type');
    assert.ok(normal instanceof Date && !(normal instanceof AmqpTimestamp), 'an in-range timestamp is a plain Date');
    assert.equal(normal.getTime(), 1_700_000_000_000);
    const huge = byId.get('huge-header')?.properties.headers;
    assert.equal(String(huge?.blob).length, 100_000);
    const h = byId.get('every-type')?.properties.headers ?? {};
    assert.equal(h.min64, -(2n ** 63n));
    assert.deepEqual(h.decimal, new Decimal(3, 12345));
  },
  aioamqp(byId) {
    const h = byId.get('numbers')?.properties.headers;
    assert.ok(h);
    assert.equal(h.f3, 3, 'reads as a plain number');
    const types = Object.fromEntries(Object.keys(h).map((k) => [k, fieldTypeOf(h, k)]));
    assert.deepEqual(types, {
      f3: 'f',
      half: 'f',
      neg: 'f',
      zero: 'f',
      third: 'f',
      b: 'b',
      bmax: 'b',
      s: 's',
      sneg: 's',
      u: 'u',
      I: 'I',
      Ineg: 'I',
      i: 'i',
      l: 'l',
      lneg: 'l',
      arr: 'A',
      tbl: 'F',
    });
  },
};

async function forwardThroughWarren(client: Client): Promise<void> {
  const count = counts[client];
  const direct = res.queue(`interop-${client}-direct`);
  const via = res.queue(`interop-${client}-via`);
  const out = res.queue(`interop-${client}-out`);
  const proxy = await startRecordingProxy({ host: '127.0.0.1', port: 5672 });
  let consumerConn: Connection | undefined;
  let forwarderConn: Connection | undefined;
  try {
    // The consumer asks for a small frame-max: the big header arrives above it, in one frame.
    consumerConn = await connect(proxy.url('frame_max=4096'), { name: `interop-${client}-consumer` });
    // Forwarding a header needs a frame-max it fits in (RabbitMQ refuses larger header frames).
    forwarderConn = await connect(proxy.url(), { name: `interop-${client}-forwarder` });
    const setup = await consumerConn.openChannel();
    for (const q of [direct, via, out]) await setup.queueDeclare(q);
    await py(`publish-${client}`, direct, via);

    const pub = await forwarderConn.openChannel();
    await pub.confirmSelect();
    const consumer = await consumerConn.openChannel();
    const received: Message[] = [];
    const forwarded: Promise<void>[] = [];
    const done = deferred<void>();
    await consumer.basicConsume(via, {}, (msg) => {
      received.push(msg);
      forwarded.push(pub.basicPublish('', out, msg.body, msg.properties));
      msg.ack();
      if (received.length === count) done.resolve();
    });
    const lost = consumerConn.closed.then((reason) => {
      throw new Error(`warren closed its consuming connection: ${String(reason)}`);
    });
    lost.catch(() => {}); // it also rejects at the normal close below
    await within(Promise.race([done.promise, lost]), 20_000, `warren consuming ${count} ${client} messages`);
    await Promise.all(forwarded);

    assert.equal(consumerConn.isOpen, true, 'the consuming connection is still open');
    assert.equal(consumer.isOpen, true, 'the consuming channel is still open');
    assert.ok(received.every((m) => m.decodeError === undefined));
    // Another channel of the same connection keeps working.
    const other = await consumerConn.openChannel();
    const { queue: spare } = await other.queueDeclare('', { exclusive: true });
    await other.basicPublish('', spare, Buffer.from('still here'));
    const back = await within(
      (async () => {
        for (let i = 0; i < 100; i++) {
          const m = await other.basicGet(spare, { noAck: true });
          if (m !== null) return m;
          await new Promise((r) => setTimeout(r, 20));
        }
        return null;
      })(),
      5000,
      'basic.get on another channel',
    );
    assert.equal(back?.body.toString(), 'still here');

    warrenSees[client](new Map(received.map((m) => [m.properties.messageId ?? '', m])));

    // The same content-header bytes in as out, the oversize one included.
    const headersIn = proxy
      .frames('down', 0)
      .filter((f) => f.type === FRAME_HEADER && f.channel === consumer.id)
      .map((f) => f.payload);
    const headersOut = proxy
      .frames('up', 1)
      .filter((f) => f.type === FRAME_HEADER && f.channel === pub.id)
      .map((f) => f.payload);
    assert.equal(headersIn.length, count);
    assert.equal(headersOut.length, count);
    assert.ok(
      headersIn.some((p) => p.length > 4096),
      'a content header above the consumer frame-max arrived',
    );
    for (let i = 0; i < count; i++) {
      const id = received[i]?.properties.messageId;
      assert.ok(headersOut[i]?.equals(headersIn[i]!), `content header of ${id} changed on the way through warren`);
    }

    // The Python client reads the forwarded copy exactly as the copy that never went through warren.
    const original = await readBack(client, direct, count);
    const throughWarren = await readBack(client, out, count);
    assert.deepEqual(throughWarren, original);
  } finally {
    await consumerConn?.close();
    await forwarderConn?.close();
    await proxy.close();
  }
}

describe('pika and aioamqp → warren → pika and aioamqp', { skip }, () => {
  test('pika: 2^60 s timestamps, an oversize header, every type; consumed, forwarded unchanged', async () => {
    await forwardThroughWarren('pika');
  });

  test('aioamqp: integral float32 (3.0), every integer width; consumed, forwarded unchanged', async () => {
    await forwardThroughWarren('aioamqp');
  });
});

describe('warren → pika and aioamqp', { skip }, () => {
  for (const client of ['pika', 'aioamqp'] as const) {
    test(`${client} reads the values and types warren meant`, async () => {
      const q = res.queue(`interop-warren-to-${client}`);
      const conn = await connect('amqp://guest:guest@127.0.0.1:5672', { name: `interop-warren-to-${client}` });
      try {
        const ch = await conn.openChannel();
        await ch.confirmSelect();
        await ch.queueDeclare(q);
        // pika 1.2 misreads some types warren sends correctly (it reads 'b' unsigned, 'B' signed, 'l'
        // unsigned, and truncates 'f' and 'd' to integers): those are checked with aioamqp only.
        const exact = client === 'aioamqp';
        const headers = {
          int: 7,
          ...(exact ? { typedByte: new TypedValue('b', -5) } : {}),
          typedShort: new TypedValue('s', 300),
          typedUnsigned: new TypedValue('i', 3_000_000_000),
          long: 2 ** 40,
          bigint: 2n ** 62n + 1n,
          ...(exact ? { float32: new TypedValue('f', 3), double: 2.5, integralDouble: new TypedValue('d', 4) } : {}),
          text: 'ünïcødé',
          bytes: Buffer.from([0, 255]),
          yes: true,
          none: null,
          decimal: new Decimal(2, 125),
          nested: { list: [1, 'two', { three: exact ? new TypedValue('f', 0.5) : 3 }] },
        };
        // aioamqp (pamqp) turns a property timestamp into a datetime, which cannot hold 2^60 s.
        const timestamp = client === 'pika' ? new AmqpTimestamp(2n ** 60n) : new Date(1_700_000_000_000);
        await ch.basicPublish('', q, Buffer.from('from warren'), { messageId: 'w', timestamp, headers });
        const [m] = await readBack(client, q, 1);
        assert.ok(m);
        const bytes = client === 'pika' ? 'bytes' : 'bytearray';
        const { timestamp: seen, ...rest } = m;
        if (client === 'pika') assert.deepEqual(seen, ['int', String(2n ** 60n)]);
        else assert.deepEqual(seen, ['datetime', '2023-11-14T22:13:20+00:00']);
        assert.deepEqual(rest, {
          // aioamqp reports an absent cluster-id as ''
          ...(client === 'aioamqp' ? { cluster_id: ['str', ''] } : {}),
          body: Buffer.from('from warren').toString('hex'),
          message_id: ['str', 'w'],
          headers: [
            'dict',
            [
              ['int', ['int', '7']],
              ...(exact ? [['typedByte', ['int', '-5']]] : []),
              ['typedShort', ['int', '300']],
              ['typedUnsigned', ['int', '3000000000']],
              ['long', ['int', String(2 ** 40)]],
              ['bigint', ['int', String(2n ** 62n + 1n)]],
              ...(exact
                ? [
                    ['float32', ['float', '0x1.8000000000000p+1']],
                    ['double', ['float', '0x1.4000000000000p+1']],
                    ['integralDouble', ['float', '0x1.0000000000000p+2']],
                  ]
                : []),
              ['text', ['str', 'ünïcødé']],
              ['bytes', [bytes, '00ff']],
              ['yes', ['bool', true]],
              ['none', ['None']],
              ['decimal', ['Decimal', '1.25']],
              [
                'nested',
                [
                  'dict',
                  [
                    [
                      'list',
                      [
                        'list',
                        [
                          ['int', '1'],
                          ['str', 'two'],
                          ['dict', [['three', exact ? ['float', '0x1.0000000000000p-1'] : ['int', '3']]]],
                        ],
                      ],
                    ],
                  ],
                ],
              ],
            ],
          ],
        });
      } finally {
        await conn.close();
      }
    });
  }
});
