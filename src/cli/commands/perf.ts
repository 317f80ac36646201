/**
 * `warren perf`: a load generator in the spirit of RabbitMQ's PerfTest. Producers and consumers each
 * get their own connection; every message carries its send time so consumers can measure latency.
 *
 * @module
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Channel } from '../../channel/channel.js';
import type { Consumer } from '../../channel/consumer.js';
import type { Connection } from '../../connect.js';
import type { BasicProperties } from '../../protocol/generated/properties.js';
import type { FieldTable } from '../../protocol/field-values.js';
import { UsageError } from '../args.js';
import {
  closeQuietly,
  type Context,
  command,
  EXIT,
  fmtInt,
  GLOBAL_OPTIONS,
  type GlobalValues,
  open,
  sleep,
  toJson,
} from '../common.js';
import { Histogram, type LatencySummary } from '../histogram.js';

/** What a perf run does. */
export interface PerfConfig {
  producers: number;
  consumers: number;
  /** Body size in bytes; 12 or more carries a timestamp for latency. */
  size: number;
  /** Messages per second per producer; 0 = as fast as possible. */
  rate: number;
  /** Seconds of publishing. */
  duration: number;
  confirm: boolean;
  /** Publishes awaiting a confirm per producer (with `confirm`). */
  maxUnconfirmed: number;
  prefetch: number;
  autoAck: boolean;
  persistent: boolean;
  /** An existing queue to use (kept afterwards); otherwise a temporary one is declared and deleted. */
  queue: string | undefined;
  queueType: 'classic' | 'quorum';
}

/** One progress sample: rates over the last interval (a second, or a tenth of a run shorter than 10 s). */
export interface PerfSample {
  /** Seconds since the start. */
  t: number;
  sent: number;
  confirmed: number;
  received: number;
  /** Publish-to-delivery latency over the interval, ms. */
  p50: number;
  p95: number;
  p99: number;
}

/** The outcome of a perf run. */
export interface PerfResult {
  config: PerfConfig;
  queue: string;
  /** Seconds spent publishing. */
  seconds: number;
  sent: number;
  confirmed: number;
  nacked: number;
  received: number;
  rates: { sent: number; confirmed: number; received: number };
  /** Publish-to-delivery latency (ms), and publish-to-confirm latency with `confirm`. */
  latency: { consume: LatencySummary; confirm?: LatencySummary };
  samples: PerfSample[];
}

const round3 = (n: number): number => Math.round(n * 1000) / 1000;

/** Marks bodies written by this process, so foreign messages in a shared queue skew no latency. */
const MAGIC = process.pid >>> 0;

interface Totals {
  sent: number;
  confirmed: number;
  nacked: number;
  received: number;
  lastReceivedAt: number;
}

/**
 * Runs a load test and resolves with its results. `openConnection` is called once per producer,
 * consumer and for the setup; `onSample` receives each progress sample (see PerfSample).
 */
export async function runPerf(
  cfg: PerfConfig,
  openConnection: () => Promise<Connection>,
  options: { signal?: AbortSignal | undefined; onSample?: ((s: PerfSample) => void) | undefined } = {},
): Promise<PerfResult> {
  const totals: Totals = { sent: 0, confirmed: 0, nacked: 0, received: 0, lastReceivedAt: 0 };
  const consumeAll = new Histogram();
  const consumeNow = new Histogram();
  const confirmAll = new Histogram();
  const samples: PerfSample[] = [];
  const connections: Connection[] = [];
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let failure: unknown;
  const fail = (err: unknown): void => {
    failure ??= err;
    stop.abort();
  };

  const setup = await openConnection();
  connections.push(setup);
  let queue = cfg.queue ?? '';
  const temporary = cfg.queue === undefined;
  let ticker: NodeJS.Timeout | undefined;
  try {
    const setupCh = await setup.openChannel();
    if (temporary) {
      // x-expires removes the queue even if this process is killed before it can delete it.
      const args: FieldTable = { 'x-expires': Math.ceil(cfg.duration + 120) * 1000 };
      if (cfg.queueType === 'quorum') args['x-queue-type'] = 'quorum';
      queue = `warren-perf-${process.pid}-${Date.now().toString(36)}`;
      await setupCh.queueDeclare(queue, { durable: cfg.queueType === 'quorum', arguments: args });
    } else {
      await setupCh.queueDeclare(queue, { passive: true });
    }

    const consumers: { ch: Channel; consumer: Consumer }[] = [];
    for (let i = 0; i < cfg.consumers; i++) {
      const conn = await openConnection();
      connections.push(conn);
      const ch = await conn.openChannel();
      if (!cfg.autoAck) await ch.basicQos(cfg.prefetch);
      const consumer = await ch.basicConsume(queue, { noAck: cfg.autoAck }, (msg) => {
        totals.received++;
        totals.lastReceivedAt = performance.now();
        const b = msg.body;
        if (b.length >= 12 && b.readUInt32BE(8) === MAGIC) {
          const latency = performance.now() - b.readDoubleBE(0);
          consumeAll.record(latency);
          consumeNow.record(latency);
        }
        if (!cfg.autoAck) msg.ack();
      });
      consumer.on('cancel', ({ error, serverCancelled }) => {
        if (serverCancelled || error) fail(error ?? new Error(`the broker cancelled a consumer of '${queue}'`));
      });
      consumers.push({ ch, consumer });
    }

    const producerChannels: Channel[] = [];
    for (let i = 0; i < cfg.producers; i++) {
      const conn = await openConnection();
      connections.push(conn);
      const ch = await conn.openChannel();
      if (cfg.confirm) await ch.confirmSelect();
      producerChannels.push(ch);
    }

    const start = performance.now();
    let last = { t: start, sent: 0, confirmed: 0, received: 0 };
    const takeSample = (): void => {
      const now = performance.now();
      if (now - last.t < 1) return;
      const dt = (now - last.t) / 1000;
      const s: PerfSample = {
        t: Math.round((now - start) / 100) / 10,
        sent: Math.round((totals.sent - last.sent) / dt),
        confirmed: Math.round((totals.confirmed - last.confirmed) / dt),
        received: Math.round((totals.received - last.received) / dt),
        p50: round3(consumeNow.quantile(0.5)),
        p95: round3(consumeNow.quantile(0.95)),
        p99: round3(consumeNow.quantile(0.99)),
      };
      consumeNow.reset();
      last = { t: now, sent: totals.sent, confirmed: totals.confirmed, received: totals.received };
      samples.push(s);
      options.onSample?.(s);
    };
    // A sample a second, or ten over a run shorter than ten seconds (at most every 100 ms); a last one
    // covers the remainder, so that a short run still shows how its rates went.
    ticker = setInterval(takeSample, Math.max(100, Math.min(1000, (cfg.duration * 1000) / 10)));

    const deadline = setTimeout(() => stop.abort(), cfg.duration * 1000);
    const produce = async (ch: Channel): Promise<void> => {
      const template = Buffer.alloc(cfg.size);
      const props: BasicProperties | undefined = cfg.persistent ? { deliveryMode: 2 } : undefined;
      const t0 = performance.now();
      let mine = 0;
      let outstanding = 0;
      let wake: (() => void) | undefined;
      const settled = (): void => {
        outstanding--;
        const w = wake;
        wake = undefined;
        w?.();
      };
      while (!stop.signal.aborted) {
        if (!ch.isOpen) throw ch.closeReason ?? new Error('producer channel closed');
        if (cfg.rate > 0) {
          const elapsed = performance.now() - t0;
          if (mine >= (elapsed * cfg.rate) / 1000) {
            await sleep(Math.max(1, ((mine + 1) * 1000) / cfg.rate - elapsed), stop.signal);
            continue;
          }
        }
        // A fresh body per publish: large bodies are sent by reference, so one buffer cannot be reused.
        const body = Buffer.from(template);
        const sentAt = performance.now();
        if (cfg.size >= 12) {
          body.writeDoubleBE(sentAt, 0);
          body.writeUInt32BE(MAGIC, 8);
        }
        const p = ch.basicPublish('', queue, body, props);
        mine++;
        totals.sent++;
        if (cfg.confirm) {
          outstanding++;
          p.then(
            () => {
              totals.confirmed++;
              confirmAll.record(performance.now() - sentAt);
              settled();
            },
            () => {
              totals.nacked++;
              settled();
            },
          );
          if (outstanding >= cfg.maxUnconfirmed) await new Promise<void>((resolve) => (wake = resolve));
        } else {
          await p;
        }
        // Let socket reads, the flush and the timers run: resolved promises alone would starve them.
        if ((mine & 127) === 0) await yieldToLoop();
      }
      const until = performance.now() + 10_000;
      while (outstanding > 0 && performance.now() < until && ch.isOpen) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 100);
        });
      }
    };
    await Promise.all(producerChannels.map((ch) => produce(ch).catch(fail)));
    clearTimeout(deadline);
    const producedFor = (performance.now() - start) / 1000;

    // Let consumers take what is still queued, as long as they make progress (at most 10 s).
    if (cfg.consumers > 0 && failure === undefined) {
      const until = performance.now() + 10_000;
      let seen = totals.received;
      let quietSince = performance.now();
      while (totals.received < totals.sent - totals.nacked && performance.now() < until) {
        await sleep(50);
        if (totals.received !== seen) {
          seen = totals.received;
          quietSince = performance.now();
        } else if (performance.now() - quietSince > 1000) break;
      }
    }
    clearInterval(ticker);
    ticker = undefined;
    takeSample();
    for (const { consumer } of consumers) await consumer.cancel().catch(() => {});
    for (const { ch } of consumers) await ch.close().catch(() => {});
    for (const ch of producerChannels) await ch.close().catch(() => {});
    if (temporary && setupCh.isOpen) await setupCh.queueDelete(queue).catch(() => {});

    const receivedFor = Math.max(producedFor, (totals.lastReceivedAt - start) / 1000);
    const round = (n: number) => Math.round(n);
    const result: PerfResult = {
      config: cfg,
      queue,
      seconds: Math.round(producedFor * 1000) / 1000,
      sent: totals.sent,
      confirmed: totals.confirmed,
      nacked: totals.nacked,
      received: totals.received,
      rates: {
        sent: round(totals.sent / producedFor),
        confirmed: round(totals.confirmed / producedFor),
        received: round(totals.received / receivedFor),
      },
      latency: { consume: consumeAll.summary(), ...(cfg.confirm ? { confirm: confirmAll.summary() } : {}) },
      samples,
    };
    if (failure !== undefined) throw failure;
    return result;
  } finally {
    if (ticker !== undefined) clearInterval(ticker);
    options.signal?.removeEventListener('abort', onAbort);
    for (const conn of connections) await closeQuietly(conn);
  }
}

/** The live progress line. */
export function formatSample(s: PerfSample, confirm: boolean): string {
  const lat = s.p50 > 0 ? ` | publish → delivery p50 ${fmtMs(s.p50)} p95 ${fmtMs(s.p95)} p99 ${fmtMs(s.p99)} ms` : '';
  return (
    `${s.t.toFixed(1).padStart(5)} s | sent ${fmtInt(s.sent)} msg/s` +
    (confirm ? ` | confirmed ${fmtInt(s.confirmed)} msg/s` : '') +
    ` | received ${fmtInt(s.received)} msg/s${lat}`
  );
}

function fmtMs(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The summary table printed at the end of a run. */
export function formatSummary(r: PerfResult): string {
  const c = r.config;
  const lines = [
    `warren perf: ${plural(c.producers, 'producer')}, ${plural(c.consumers, 'consumer')}, ${c.size} B messages, ` +
      `${c.confirm ? `confirms (max ${c.maxUnconfirmed} unconfirmed)` : 'no confirms'}, ` +
      `${c.autoAck ? 'auto-ack' : `prefetch ${c.prefetch}`}${c.rate > 0 ? `, ${c.rate} msg/s per producer` : ''}, ` +
      `${r.seconds.toFixed(1)} s`,
    '',
    `             ${'messages'.padStart(12)} ${'msg/s'.padStart(10)}`,
    `  sent       ${fmtInt(r.sent).padStart(12)} ${fmtInt(r.rates.sent).padStart(10)}`,
  ];
  if (c.confirm) {
    lines.push(`  confirmed  ${fmtInt(r.confirmed).padStart(12)} ${fmtInt(r.rates.confirmed).padStart(10)}`);
    if (r.nacked > 0) lines.push(`  nacked     ${fmtInt(r.nacked).padStart(12)}`);
  }
  lines.push(`  received   ${fmtInt(r.received).padStart(12)} ${fmtInt(r.rates.received).padStart(10)}`, '');
  const cols = ['min', 'p50', 'p75', 'p95', 'p99', 'max'] as const;
  lines.push(`  latency (ms)      ${cols.map((k) => k.padStart(8)).join('')}`);
  const row = (label: string, l: LatencySummary) =>
    `  ${label.padEnd(17)} ${cols.map((k) => fmtMs(l[k]).padStart(8)).join('')}`;
  if (r.latency.consume.count > 0) lines.push(row('publish → delivery', r.latency.consume));
  if (r.latency.confirm !== undefined && r.latency.confirm.count > 0) {
    lines.push(row('publish → confirm', r.latency.confirm));
  }
  const mbps = (r.rates.received * c.size) / 1e6;
  lines.push(
    '',
    `throughput: ${fmtInt(r.rates.sent)} msg/s sent, ${fmtInt(r.rates.received)} msg/s received` +
      ` (${mbps >= 10 ? mbps.toFixed(0) : mbps.toFixed(2)} MB/s of bodies)`,
  );
  return `${lines.join('\n')}\n`;
}

/** Runs perf for a command, with the live line on a terminal. */
export async function perfWithProgress(cfg: PerfConfig, ctx: Context, opts: GlobalValues): Promise<PerfResult> {
  const err = ctx.io.stderr as NodeJS.WritableStream & { isTTY?: boolean };
  const live = err.isTTY === true && !opts.json;
  const result = await runPerf(cfg, () => open(opts, ctx), {
    signal: ctx.signal,
    onSample: live ? (s) => void err.write(`\r\x1b[K${formatSample(s, cfg.confirm)}`) : undefined,
  });
  if (live) err.write('\r\x1b[K');
  return result;
}

export const perf = command({
  spec: {
    name: 'perf',
    summary: 'Load test: producers and consumers over their own connections; rates and latency percentiles.',
    details:
      'Publishes to a temporary queue (deleted afterwards) unless --queue names an existing one. On a terminal a\n' +
      'live line shows rates and latencies each second; at the end a summary table (or --json) is printed.',
    positionals: [],
    options: {
      producers: { type: 'number', short: 'x', integer: true, min: 0, default: 1, description: 'Producer connections' },
      consumers: { type: 'number', short: 'y', integer: true, min: 0, default: 1, description: 'Consumer connections' },
      size: {
        type: 'number',
        short: 's',
        integer: true,
        min: 0,
        default: 12,
        value: 'BYTES',
        description: 'Body size',
      },
      rate: {
        type: 'number',
        short: 'r',
        min: 0,
        default: 0,
        value: 'R',
        description: 'Messages/s per producer, 0 = unlimited',
      },
      duration: {
        type: 'number',
        short: 'z',
        min: 0.1,
        default: 10,
        value: 'SECONDS',
        description: 'How long to publish',
      },
      confirm: { type: 'boolean', short: 'c', description: 'Publisher confirms' },
      maxUnconfirmed: {
        type: 'number',
        integer: true,
        min: 1,
        default: 1000,
        description: 'Unconfirmed publishes per producer',
      },
      prefetch: { type: 'number', short: 'q', integer: true, min: 0, default: 500, description: 'Consumer prefetch' },
      autoAck: { type: 'boolean', short: 'a', description: 'Consume without acknowledgements' },
      persistent: { type: 'boolean', short: 'f', description: 'Persistent messages' },
      queue: { type: 'string', short: 'u', value: 'QUEUE', description: 'Use this existing queue (not deleted)' },
      queueType: {
        type: 'string',
        value: 'TYPE',
        choices: ['classic', 'quorum'],
        default: 'classic',
        description: 'Type of the temporary queue',
      },
      ...GLOBAL_OPTIONS,
    },
    examples: [
      'warren perf --duration 5',
      'warren perf -x 2 -y 2 --size 1024 --confirm',
      'warren perf --rate 1000 --json',
    ],
  },
  async run({ options: o }, ctx) {
    if (o.producers === 0 && o.consumers === 0)
      throw new UsageError('nothing to do with 0 producers and 0 consumers', 'perf');
    const cfg: PerfConfig = {
      producers: o.producers,
      consumers: o.consumers,
      size: o.size,
      rate: o.rate,
      duration: o.duration,
      confirm: o.confirm,
      maxUnconfirmed: o.maxUnconfirmed,
      prefetch: o.prefetch,
      autoAck: o.autoAck,
      persistent: o.persistent,
      queue: o.queue,
      queueType: o.queueType as 'classic' | 'quorum',
    };
    const result = await perfWithProgress(cfg, ctx, o);
    ctx.io.stdout.write(o.json ? `${toJson(result)}\n` : formatSummary(result));
    return EXIT.OK;
  },
});
