/**
 * The soak: mixed load through a TCP proxy that cuts every connection now and then, with the process's
 * resources sampled every second, to show that nothing grows while warren keeps recovering.
 *
 *   npm run soak                          10 minutes (WARREN_SOAK_SECONDS to change), report on stdout
 *   node --import tsx --test test/serial/soak.test.ts     the 60-second CI variant
 *
 * Load, all through the proxy to the broker at 127.0.0.1:5672: a confirming publisher (about 500 small
 * messages a second, at most 200 unconfirmed), a consumer of them (prefetch 50, 8 handlers), an RPC
 * server and an RPC caller (about 20 calls a second, 5 s timeout), on three robust clients. Every
 * `cutEvery` the proxy destroys every connection.
 *
 * Checked at the end: no unhandled rejection or uncaught exception; every publish settled and every
 * confirmed message consumed at least once; every RPC call settled; heap (after a full GC), RSS,
 * listener counts and active handles/resources flat between the first and the last window; after
 * close, no handle or timer left behind.
 *
 * @module
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { type Client, connect, createClient, type Publisher, type Subscription } from '../../src/index.js';
import { startProxy } from '../support/tcp-proxy.js';

export interface SoakOptions {
  durationMs: number;
  /** How often every connection is cut. */
  cutEveryMs: number;
  /** Length of the first and last windows that are compared. */
  windowMs: number;
  /** Progress lines (one per window length). */
  log?: (line: string) => void;
  amqpPort?: number;
}

export interface Sample {
  at: number;
  heapUsed: number;
  rss: number;
  external: number;
  listeners: number;
  resources: number;
  pending: number;
}

export interface WindowStats {
  heapMiB: number;
  rssMiB: number;
  externalMiB: number;
  listenersMax: number;
  resourcesMax: number;
}

export interface SoakReport {
  seconds: number;
  published: number;
  confirmed: number;
  publishFailures: number;
  consumed: number;
  deliveries: number;
  rpcCalls: number;
  rpcOk: number;
  rpcFailed: number;
  cuts: number;
  reconnects: number;
  first: WindowStats;
  last: WindowStats;
  resourcesBefore: Record<string, number>;
  resourcesAfter: Record<string, number>;
  /** Everything that went wrong; empty means the soak passed. */
  problems: string[];
}

const MiB = 2 ** 20;
const round = (bytes: number) => Math.round((bytes / MiB) * 10) / 10;

let gc: (() => void) | undefined;
function fullGc(): void {
  if (gc === undefined) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}

function resourceCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

function windowStats(samples: Sample[]): WindowStats {
  return {
    heapMiB: round(median(samples.map((s) => s.heapUsed))),
    rssMiB: round(median(samples.map((s) => s.rss))),
    externalMiB: round(median(samples.map((s) => s.external))),
    listenersMax: Math.max(...samples.map((s) => s.listeners)),
    resourcesMax: Math.max(...samples.map((s) => s.resources)),
  };
}

/** Waits until `check()` holds, polling; false if `ms` passed first. */
async function until(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

function listenerTotal(emitters: readonly NodeJS.EventEmitter[]): number {
  let n = 0;
  for (const e of emitters) for (const name of e.eventNames()) n += e.listenerCount(name);
  return n;
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const log = options.log ?? (() => {});
  const problems: string[] = [];
  const onRejection = (reason: unknown) => problems.push(`unhandled rejection: ${String(reason)}`);
  const onException = (error: unknown) => problems.push(`uncaught exception: ${String(error)}`);
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtExceptionMonitor', onException);

  fullGc();
  await sleep(100);
  const resourcesBefore = resourceCounts();
  const tag = `${process.pid}-${Date.now()}`;
  const queue = `warren-soak-${tag}`;
  const rpcQueue = `warren-soak-rpc-${tag}`;
  const proxy = await startProxy({ target: { host: '127.0.0.1', port: options.amqpPort ?? 5672 } });
  const backoff = { initialDelay: 50, maxDelay: 500 };
  const clients: Client[] = [];
  const make = (name: string) => {
    const c = createClient({ urls: [proxy.url()], name, heartbeat: 5, backoff });
    clients.push(c);
    return c;
  };
  const main = make('soak-main');
  const server = make('soak-rpc-server');
  const caller = make('soak-rpc-caller');
  let reconnects = 0;
  for (const c of clients) c.on('connect', () => reconnects++);

  let published = 0;
  let confirmed = 0;
  let publishFailures = 0;
  let deliveries = 0;
  // Preallocated bitmaps of ids (1 byte each), so that the soak's own bookkeeping does not grow the heap.
  const capacity = Math.ceil(options.durationMs / 10) * 5 + 1000;
  const consumedIds = new Uint8Array(capacity);
  const confirmedIds = new Uint8Array(capacity);
  let consumed = 0;
  let rpcCalls = 0;
  let rpcOk = 0;
  let rpcFailed = 0;
  let cuts = 0;
  const samples: Sample[] = [];
  let pub: Publisher | undefined;
  let sub: Subscription | undefined;
  let rpcSub: Subscription | undefined;
  const started = Date.now();
  const stopAt = started + options.durationMs;

  try {
    await main.declareQueue(queue, { durable: false });
    await server.declareQueue(rpcQueue, { durable: false });
    pub = main.publisher({ confirm: true, maxUnconfirmed: 200 });
    sub = main.consume(
      queue,
      (msg) => {
        deliveries++;
        const id = Number(msg.properties.messageId);
        if (consumedIds[id] === 0) consumed++;
        consumedIds[id] = 1;
      },
      { prefetch: 50, concurrency: 8 },
    );
    rpcSub = server.rpcServer(rpcQueue, (req) => req.body, { concurrency: 4 });
    const emitters = (): NodeJS.EventEmitter[] => [process, ...clients, pub!, sub!, rpcSub!];

    const publishing = (async () => {
      // Bounded by time and, should the clock misbehave, by count.
      for (let tick = 0; tick < options.durationMs / 10 && Date.now() < stopAt; tick++) {
        for (let i = 0; i < 5 && published < capacity; i++) {
          const id = published++;
          pub!
            .publish('', queue, Buffer.from(`soak ${id}`), { messageId: String(id) })
            .then(() => {
              confirmed++;
              confirmedIds[id] = 1;
            })
            .catch(() => {
              publishFailures++;
            });
        }
        await sleep(10);
      }
    })();

    const calling = (async () => {
      while (rpcCalls < options.durationMs / 50 && Date.now() < stopAt) {
        rpcCalls++;
        caller
          .rpc(rpcQueue, `ping ${rpcCalls}`, { timeout: 5000 })
          .then(() => {
            rpcOk++;
          })
          .catch(() => {
            rpcFailed++;
          });
        await sleep(50);
      }
    })();

    const cutting = (async () => {
      while (cuts < options.durationMs / options.cutEveryMs && Date.now() + options.cutEveryMs < stopAt) {
        await sleep(options.cutEveryMs);
        proxy.cutAll();
        cuts++;
      }
    })();

    const sampling = (async () => {
      let lastLog = Date.now();
      while (samples.length < options.durationMs / 1000 && Date.now() < stopAt) {
        await sleep(1000);
        fullGc();
        const m = process.memoryUsage();
        samples.push({
          at: Date.now() - started,
          heapUsed: m.heapUsed,
          rss: m.rss,
          external: m.external,
          listeners: listenerTotal(emitters()),
          resources: process.getActiveResourcesInfo().length,
          pending: pub!.pendingCount,
        });
        if (Date.now() - lastLog >= options.windowMs) {
          lastLog = Date.now();
          const s = samples.at(-1)!;
          log(
            `+${Math.round(s.at / 1000)} s: published ${published}, confirmed ${confirmed}, consumed ${consumed}, ` +
              `rpc ${rpcOk}/${rpcCalls}, cuts ${cuts}, reconnects ${reconnects}, heap ${round(s.heapUsed)} MiB, ` +
              `rss ${round(s.rss)} MiB, listeners ${s.listeners}, resources ${s.resources}`,
          );
        }
      }
    })();

    await Promise.all([publishing, calling, cutting, sampling]);

    // Drain: every publish settles, every confirmed message arrives, every RPC call settles.
    if (!(await until(() => confirmed + publishFailures === published, 60_000))) {
      problems.push(`${published - confirmed - publishFailures} publishes never settled`);
    }
    if (publishFailures > 0) problems.push(`${publishFailures} publishes rejected`);
    const missing = () => {
      const ids: number[] = [];
      for (let id = 0; id < published; id++) if (confirmedIds[id] === 1 && consumedIds[id] === 0) ids.push(id);
      return ids;
    };
    if (!(await until(() => missing().length === 0, 60_000))) {
      problems.push(`${missing().length} confirmed messages never consumed, e.g. ${missing().slice(0, 5).join(', ')}`);
    }
    if (!(await until(() => rpcOk + rpcFailed === rpcCalls, 10_000))) {
      problems.push(`${rpcCalls - rpcOk - rpcFailed} RPC calls never settled`);
    }
    if (rpcOk < rpcCalls * 0.5) problems.push(`only ${rpcOk} of ${rpcCalls} RPC calls succeeded`);
  } finally {
    await Promise.allSettled(clients.map((c) => c.close({ timeout: 5000 })));
    await proxy.close();
    const conn = await connect(`amqp://guest:guest@127.0.0.1:${options.amqpPort ?? 5672}`);
    const ch = await conn.openChannel();
    await ch.queueDelete(queue);
    await ch.queueDelete(rpcQueue);
    await conn.close();
  }

  const windowSamples = Math.max(1, Math.round(options.windowMs / 1000));
  // The first window starts after a short warm-up (JIT, pools, first connections).
  const warmUp = Math.min(5, Math.floor(samples.length / 4));
  const first = windowStats(samples.slice(warmUp, warmUp + windowSamples));
  const last = windowStats(samples.slice(-windowSamples));
  if (samples.length < 2 * windowSamples) problems.push(`only ${samples.length} samples`);
  if (last.heapMiB > first.heapMiB * 1.25 + 8) problems.push(`heap grew from ${first.heapMiB} to ${last.heapMiB} MiB`);
  if (last.rssMiB > first.rssMiB * 1.25 + 32) problems.push(`RSS grew from ${first.rssMiB} to ${last.rssMiB} MiB`);
  if (last.externalMiB > first.externalMiB * 1.5 + 8) {
    problems.push(`external memory grew from ${first.externalMiB} to ${last.externalMiB} MiB`);
  }
  if (last.listenersMax > first.listenersMax) {
    problems.push(`listeners grew from ${first.listenersMax} to ${last.listenersMax}`);
  }
  if (last.resourcesMax > first.resourcesMax + 4) {
    problems.push(`active handles/resources grew from ${first.resourcesMax} to ${last.resourcesMax}`);
  }
  if (cuts > 0 && reconnects < clients.length + cuts) {
    problems.push(`${reconnects} connects for ${cuts} cuts of ${clients.length} clients`);
  }

  // After close nothing of ours is left: no socket, no timer.
  await sleep(200);
  fullGc();
  const resourcesAfter = resourceCounts();
  for (const [type, n] of Object.entries(resourcesAfter)) {
    if (n > (resourcesBefore[type] ?? 0)) {
      problems.push(`after close: ${n} ${type} (before the soak: ${resourcesBefore[type] ?? 0})`);
    }
  }
  process.off('unhandledRejection', onRejection);
  process.off('uncaughtExceptionMonitor', onException);
  return {
    seconds: Math.round((Date.now() - started) / 1000),
    published,
    confirmed,
    publishFailures,
    consumed,
    deliveries,
    rpcCalls,
    rpcOk,
    rpcFailed,
    cuts,
    reconnects,
    first,
    last,
    resourcesBefore,
    resourcesAfter,
    problems,
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const seconds = Number(process.env.WARREN_SOAK_SECONDS ?? 600);
  const report = await runSoak({
    durationMs: seconds * 1000,
    cutEveryMs: Number(process.env.WARREN_SOAK_CUT_SECONDS ?? 10) * 1000,
    windowMs: Math.min(60_000, (seconds * 1000) / 4),
    log: (line) => console.log(line),
  });
  console.log(JSON.stringify(report, null, 2));
  console.log(report.problems.length === 0 ? 'soak passed' : `soak FAILED:\n  ${report.problems.join('\n  ')}`);
  process.exitCode = report.problems.length === 0 ? 0 : 1;
}
