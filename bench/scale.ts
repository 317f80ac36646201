// The scaling scenarios: how a library's cost grows with consumers, channels, connections and fan-out. Each runs
// in its own child (as every scenario does), started with --expose-gc so memory is read after a collection and
// the per-item figures are the library's own.
//
//   consumers-N  N consumers on one channel of one connection, all on one queue; ctx.count messages published
//                by a separate floor process while they are attached: CPU µs per message, RSS per consumer
//   channels     ctx.count channels on one connection, opened one after another: time per open, RSS per channel
//   (consumers-N and channels also report the growth over the second half alone, the cost of one more)
//   connections  ctx.count connections (each with its channel) opened at once: total time, RSS per connection
//   fanout       FANOUT_QUEUES queues bound to one fanout exchange, each with a consumer in the library; ctx.count
//                single publishes: time until every queue's copy has been delivered

import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { PREFETCH } from './config.js';
import type { Adapter, Closable, Session } from './libs/types.js';
import { median } from './report.js';
import { checkDeadline, type Measured, Meter, type ScenarioContext } from './scenarios.js';

export const FANOUT_QUEUES = 1000;
/** Prefetch of each fan-out consumer: one message each is all that ever arrives at a time. */
const FANOUT_PREFETCH = 10;
const FILL = fileURLToPath(new URL('./fill.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const KiB = 1024;

interface Memory {
  rss: number;
  /** JS heap in use plus Buffers and other memory outside it: finer-grained than RSS, which moves in pages. */
  heap: number;
}

/** Memory after a full collection when the child was started with --expose-gc (the harness does that). */
function settled(): Memory {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc !== undefined) {
    gc();
    gc();
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed + m.external };
}

/** Per-item growth between two readings, in KiB. */
function perItem(a: Memory, b: Memory, n: number, what: string): Record<string, number> {
  return {
    [`rssPer${what}KiB`]: (b.rss - a.rss) / n / KiB,
    [`heapPer${what}KiB`]: (b.heap - a.heap) / n / KiB,
  };
}

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Queue and exchange names a scenario creates beside ctx.queue, so the runner can remove leftovers too. */
export function extraNames(scenario: string, queue: string): { queues: string[]; exchanges: string[] } {
  if (scenario !== 'fanout') return { queues: [], exchanges: [] };
  return {
    queues: Array.from({ length: FANOUT_QUEUES }, (_, i) => `${queue}.${i}`),
    exchanges: [`${queue}.x`],
  };
}

async function closeAll(handles: readonly Closable[]): Promise<void> {
  await Promise.all(handles.map((h) => h.close().catch(() => undefined)));
}

function waitFor(check: () => boolean, register: (wake: () => void) => void, deadline: number, what: string) {
  return new Promise<void>((resolve, reject) => {
    if (check()) return resolve();
    const timer = setTimeout(() => reject(new Error(`${what}: deadline passed`)), Math.max(0, deadline - Date.now()));
    register(() => {
      if (!check()) return;
      clearTimeout(timer);
      resolve();
    });
  });
}

interface Fill {
  /** Tells the connected filler to start publishing. */
  go(): void;
  done: Promise<void>;
}

/** Starts bench/fill.ts; resolves once it is connected and waiting for go(). */
function startFill(url: string, queue: string, count: number, size: number, deadline: number): Promise<Fill> {
  const child = spawn(process.execPath, ['--import', 'tsx', FILL, url, queue, String(count), String(size)], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    err = (err + s).slice(-2000);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), Math.max(1000, deadline - Date.now()));
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`fill exited ${code}: ${err.trim()}`));
    });
  });
  return new Promise<Fill>((resolve, reject) => {
    done.catch(reject);
    child.stdout.setEncoding('utf8').once('data', () => resolve({ go: () => child.stdin.end('go\n'), done }));
  });
}

async function consumers(s: Session, ctx: ScenarioContext, n: number): Promise<Measured> {
  await s.declareQueue(ctx.queue);
  let received = 0;
  let wake: (() => void) | undefined;
  const onMessage = (): void => {
    received++;
    if (received >= ctx.count) wake?.();
  };
  const mem0 = settled();
  const handles: Closable[] = [];
  // The second half's growth is the cost of one more consumer; the first half's also holds what is paid
  // once (code the JIT compiles for the attach path, tables sized on first use).
  const half = n >> 1;
  let attachMs = 0;
  let memHalf = mem0;
  for (let i = 0; i < n; i++) {
    if (i === half && half > 0) memHalf = settled();
    const t = performance.now();
    handles.push(await s.consume(ctx.queue, PREFETCH, onMessage));
    attachMs += performance.now() - t;
    if ((i & 63) === 63) checkDeadline(ctx, 'consumers: attach');
  }
  const mem1 = settled();
  const fill = await startFill(ctx.url, ctx.queue, ctx.count, ctx.bodySize, ctx.deadline);
  const m = new Meter();
  fill.go();
  await waitFor(
    () => received >= ctx.count,
    (w) => {
      wake = w;
    },
    ctx.deadline,
    `consumers-${n}: ${received} of ${ctx.count} delivered`,
  );
  const result = m.stop(received);
  await fill.done;
  await closeAll(handles);
  return {
    ...result,
    metrics: {
      consumers: n,
      ...perItem(mem0, mem1, n, 'Consumer'),
      ...(half > 0 ? perItem(memHalf, mem1, n - half, 'ConsumerMarginal') : {}),
      attachMs,
      attachUsPerConsumer: (attachMs * 1000) / n,
    },
  };
}

async function channels(s: Session, ctx: ScenarioContext): Promise<Measured> {
  // The session already holds one channel; ctx.count is the total.
  const extra = Math.max(1, ctx.count - 1);
  const mem0 = settled();
  const times: number[] = [];
  const handles: Closable[] = [];
  const half = extra >> 1;
  let memHalf = mem0;
  let gcMs = 0;
  const m = new Meter();
  for (let i = 0; i < extra; i++) {
    if (i === half && half > 0) {
      const g = performance.now();
      memHalf = settled();
      gcMs += performance.now() - g;
    }
    const t = performance.now();
    handles.push(await s.openChannel());
    times.push((performance.now() - t) * 1000);
    if ((i & 63) === 63) checkDeadline(ctx, 'channels');
  }
  const stopped = m.stop(extra);
  // The half-way reading's collections are not the library's time (its CPU is a few ms at most).
  const result = { ...stopped, elapsedMs: stopped.elapsedMs - gcMs };
  const mem1 = settled();
  await closeAll(handles);
  return {
    ...result,
    metrics: {
      channels: extra + 1,
      ...perItem(mem0, mem1, extra, 'Channel'),
      ...(half > 0 ? perItem(memHalf, mem1, extra - half, 'ChannelMarginal') : {}),
      openUsFirst100: mean(times.slice(0, 100)),
      openUsLast100: mean(times.slice(-100)),
      openUsMedian: median(times) ?? Number.NaN,
    },
  };
}

async function connections(adapter: Adapter, ctx: ScenarioContext): Promise<Measured> {
  const mem0 = settled();
  const m = new Meter();
  const outcomes = await Promise.allSettled(Array.from({ length: ctx.count }, () => adapter.connect(ctx.url)));
  const result = m.stop(ctx.count);
  const sessions = outcomes.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const mem1 = settled();
  await Promise.all(sessions.map((x) => x.close().catch(() => undefined)));
  const failed = outcomes.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) {
    const why: unknown = failed.reason;
    throw new Error(
      `${ctx.count - sessions.length} of ${ctx.count} connections failed: ${why instanceof Error ? why.message : String(why)}`,
    );
  }
  return {
    ...result,
    metrics: {
      connections: ctx.count,
      totalMs: result.elapsedMs,
      ...perItem(mem0, mem1, ctx.count, 'Connection'),
    },
  };
}

async function fanout(s: Session, ctx: ScenarioContext): Promise<Measured> {
  const { queues, exchanges } = extraNames('fanout', ctx.queue);
  const exchange = exchanges[0] ?? `${ctx.queue}.x`;
  const admin = ctx.admin;
  const handles: Closable[] = [];
  try {
    await admin.exchangeDeclare(exchange, 'fanout');
    // The floor pipelines these (replies come back in order), so the setup is a few round trips, not 2000.
    await Promise.all(queues.map((q) => admin.queueDeclare(q)));
    await Promise.all(queues.map((q) => admin.queueBind(q, exchange, '')));
    let got = 0;
    let wake: (() => void) | undefined;
    const onMessage = (): void => {
      got++;
      if (got >= queues.length) wake?.();
    };
    const t0 = performance.now();
    for (const q of queues) handles.push(await s.consume(q, FANOUT_PREFETCH, onMessage));
    const attachMs = performance.now() - t0;
    const body = Buffer.alloc(ctx.bodySize, 0x61);
    const lat: number[] = [];
    const m = new Meter();
    for (let i = 0; i < ctx.count; i++) {
      got = 0;
      const t = performance.now();
      await s.publishTo(exchange, '', body);
      await waitFor(
        () => got >= queues.length,
        (w) => {
          wake = w;
        },
        ctx.deadline,
        `fanout: ${got} of ${queues.length} copies delivered`,
      );
      lat.push(performance.now() - t);
    }
    const result = m.stop(ctx.count * queues.length);
    return {
      ...result,
      metrics: {
        queues: queues.length,
        publishes: ctx.count,
        allDeliveredMedianMs: median(lat) ?? Number.NaN,
        allDeliveredMaxMs: Math.max(...lat),
        attachMs,
      },
      note: 'cpuUsPerMsg is per delivered copy',
    };
  } finally {
    await closeAll(handles);
    await Promise.all(queues.map((q) => admin.queueDelete(q).catch(() => undefined)));
    await admin.exchangeDelete(exchange).catch(() => undefined);
  }
}

export async function runScale(adapter: Adapter, scenario: string, ctx: ScenarioContext): Promise<Measured> {
  if (scenario === 'connections') return connections(adapter, ctx);
  const s = await adapter.connect(ctx.url);
  try {
    const n = /^consumers-(\d+)$/.exec(scenario)?.[1];
    if (n !== undefined) return await consumers(s, ctx, Number(n));
    if (scenario === 'channels') return await channels(s, ctx);
    if (scenario === 'fanout') return await fanout(s, ctx);
    throw new Error(`not a scaling scenario: ${scenario}`);
  } finally {
    // ctx.queue (consumers-N) is deleted by the child on its admin connection.
    await s.close().catch(() => undefined);
  }
}
