// The recovery scenarios: confirmed, persistent publishes through a proxy that destroys every connection on a
// timer, each library using its own reconnect support (Adapter.robustPublisher). Afterwards the queue is read
// back on a direct floor connection and every id counted, so duplicates and losses are facts, not claims.
//
//   recovery           cut every 300 ms; publish ctx.count messages, 100 in flight; total time, cuts,
//                      duplicates, losses, cut → first confirm
//   recovery-inflight  cut every 1 s while 100 publishes are in flight, ctx.count cuts; each reconnect delay

import { performance } from 'node:perf_hooks';
import { FloorConnection } from './floor/connection.js';
import type { Adapter, RobustPublisher } from './libs/types.js';
import { CuttingProxy } from './proxy.js';
import { median } from './report.js';
import { type Measured, Meter, type ScenarioContext } from './scenarios.js';

/** Publishes kept unconfirmed at once, in both scenarios. */
export const RECOVERY_WINDOW = 100;
const STORM_CUT_MS = 300;
const INFLIGHT_CUT_MS = 1000;
/** Publishing goes on this long after the last cut of recovery-inflight, so its recovery is seen too. */
const INFLIGHT_TAIL_MS = 1000;
const ID_BYTES = 16;
export const DEFAULT_RECOVERY_BUDGET_MS = 60_000;

function bodyOf(id: number): Buffer {
  const b = Buffer.alloc(ID_BYTES, 0x20);
  b.write(String(id), 'latin1');
  return b;
}

function idOf(body: Buffer): number {
  return Number(body.toString('latin1').trim());
}

/** For each time in `events`, how long until the first time in `after` (ascending) that follows it. */
function gaps(events: readonly number[], after: readonly number[]): number[] {
  const out: number[] = [];
  let j = 0;
  for (const t of events) {
    while (j < after.length && (after[j] ?? 0) <= t) j++;
    const next = after[j];
    if (next !== undefined) out.push(next - t);
  }
  return out;
}

function round1(xs: readonly number[]): number[] {
  return xs.map((x) => Math.round(x * 10) / 10);
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

interface Census {
  inQueue: number;
  unique: number;
  /** Confirmed ids missing from the queue: confirmed-then-lost messages. */
  lost: number;
}

/** Reads the whole queue back (no-ack, on its own direct connection) and counts ids. */
async function census(url: string, queue: string, confirmed: Uint8Array, deadline: number): Promise<Census> {
  const c = await FloorConnection.connect(url, { name: 'bench recovery census' });
  try {
    const { messageCount } = await c.queueDeclare(queue, { passive: true });
    const seen = new Uint8Array(confirmed.length);
    let received = 0;
    let unique = 0;
    if (messageCount > 0) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`census: read ${received} of ${messageCount} messages before the deadline`)),
          Math.max(1000, deadline - Date.now()),
        );
        c.onFailure = (err) => {
          clearTimeout(timer);
          reject(err);
        };
        c.basicConsume(queue, { noAck: true, wantBody: true }, (_tag, _size, meta) => {
          const id = meta === undefined ? -1 : idOf(meta.body);
          if (id >= 0 && id < seen.length && seen[id] === 0) {
            seen[id] = 1;
            unique++;
          }
          if (++received === messageCount) {
            clearTimeout(timer);
            resolve();
          }
        }).catch(reject);
      });
    }
    let lost = 0;
    for (let i = 0; i < confirmed.length; i++) if (confirmed[i] === 1 && seen[i] === 0) lost++;
    return { inQueue: received, unique, lost };
  } finally {
    await c.close().catch(() => undefined);
  }
}

export async function recovery(
  adapter: Adapter,
  ctx: ScenarioContext,
  mode: 'recovery' | 'recovery-inflight',
): Promise<Measured> {
  if (adapter.robustPublisher === undefined) throw new Error(`n/a: ${adapter.name} has no reconnect support`);
  const storm = mode === 'recovery';
  const cutEvery = storm ? STORM_CUT_MS : INFLIGHT_CUT_MS;
  const budgetMs = ctx.recoveryBudgetMs ?? DEFAULT_RECOVERY_BUDGET_MS;
  // Ids beyond this are never issued: recovery publishes ctx.count, recovery-inflight as many as its cuts allow.
  const maxIds = storm ? ctx.count : 2_000_000;
  await ctx.admin.queueDeclare(ctx.queue, { durable: true });
  // A library that leaves a rejection unhandled on a cut would end the process under Node's default; it is
  // counted and reported instead, so the run still says how the recovery went.
  let unhandled = 0;
  const onUnhandled = (): void => {
    unhandled++;
  };
  process.on('unhandledRejection', onUnhandled);
  const proxy = await CuttingProxy.start(ctx.url);
  let pub: RobustPublisher | undefined;
  let cutter: NodeJS.Timeout | undefined;
  let ticker: NodeJS.Timeout | undefined;
  try {
    pub = await adapter.robustPublisher(proxy.url(ctx.url), ctx.queue);
    const p = pub;
    const confirmedIds = new Uint8Array(maxIds);
    const confirmTimes: number[] = [];
    const cuts: number[] = [];
    let next = 0;
    let inflight = 0;
    let gaveUp: Error | undefined;
    let budgetHit = false;
    const m = new Meter();
    const t0 = performance.now();
    const stopAt = t0 + budgetMs;
    const stopIssuing = (now: number): boolean => {
      if (now > stopAt || gaveUp !== undefined) return true;
      if (storm) return next >= maxIds;
      const last = cuts[cuts.length - 1];
      return cuts.length >= ctx.count && last !== undefined && now > last + INFLIGHT_TAIL_MS;
    };
    cutter = setInterval(() => {
      if (storm ? next >= maxIds && inflight === 0 : cuts.length >= ctx.count) return;
      if (proxy.cutAll() > 0) cuts.push(performance.now());
    }, cutEvery);
    await new Promise<void>((resolve) => {
      let finished = false;
      const pump = (): void => {
        if (finished) return;
        const now = performance.now();
        if (now > stopAt) {
          // Out of time: report what was confirmed, not wait for the rest.
          budgetHit = true;
          finished = true;
          resolve();
          return;
        }
        while (inflight < RECOVERY_WINDOW && !stopIssuing(now) && next < maxIds) {
          const id = next++;
          inflight++;
          p.publish(bodyOf(id)).then(
            () => {
              inflight--;
              confirmedIds[id] = 1;
              confirmTimes.push(performance.now());
              pump();
            },
            (err: unknown) => {
              inflight--;
              // After the budget, closing the publisher rejects what is left; that is not the library giving up.
              if (!finished) gaveUp ??= err instanceof Error ? err : new Error(String(err));
              pump();
            },
          );
        }
        if (inflight === 0 && stopIssuing(now)) {
          finished = true;
          resolve();
        }
      };
      // Confirms drive the pump; the ticker covers the budget and the end of recovery-inflight's tail when
      // nothing is being confirmed.
      ticker = setInterval(pump, 50);
      pump();
    });
    clearInterval(ticker);
    clearInterval(cutter);
    const measured = m.stop(confirmTimes.length);
    const lastConfirm = confirmTimes[confirmTimes.length - 1] ?? performance.now();
    const totalMs = lastConfirm - t0;
    const reconnect = gaps(cuts, proxy.acceptedAt);
    // Counted from the cut to the first confirm on a new connection: confirms already in the client's socket
    // buffer when the cut came are read after it, and would otherwise pass for a recovery in microseconds.
    const toConfirm = cuts.flatMap((c, i) => {
      const r = reconnect[i];
      if (r === undefined) return [];
      const g = gaps([c + r], confirmTimes)[0];
      return g === undefined ? [] : [r + g];
    });
    await withTimeout(
      p.close().catch(() => undefined),
      5000,
    );
    pub = undefined;
    await proxy.close();
    const c = await census(ctx.url, ctx.queue, confirmedIds, ctx.deadline);
    const confirmed = confirmTimes.length;
    const metrics: Record<string, number> = {
      totalMs,
      issued: next,
      confirmed,
      cuts: cuts.length,
      connections: proxy.acceptedAt.length,
      inQueue: c.inQueue,
      duplicates: c.inQueue - c.unique,
      lost: c.lost,
      cutToConfirmMedianMs: median(toConfirm) ?? Number.NaN,
      cutToConfirmMaxMs: toConfirm.length === 0 ? Number.NaN : Math.max(...toConfirm),
      reconnectMedianMs: median(reconnect) ?? Number.NaN,
      reconnectMaxMs: reconnect.length === 0 ? Number.NaN : Math.max(...reconnect),
      unhandledRejections: unhandled,
    };
    const notes = [p.via];
    if (budgetHit) notes.push(`budget of ${budgetMs / 1000} s reached: ${confirmed} confirmed of ${next} issued`);
    if (gaveUp !== undefined) notes.push(`library gave up on a publish: ${gaveUp.message}`);
    if (unhandled > 0) {
      notes.push(`${unhandled} promise rejections left unhandled by the library (fatal under Node's default)`);
    }
    return {
      ...measured,
      elapsedMs: totalMs,
      metrics,
      series: { reconnectMs: round1(reconnect), cutToConfirmMs: round1(toConfirm) },
      note: notes.join('; '),
    };
  } finally {
    process.off('unhandledRejection', onUnhandled);
    clearInterval(ticker);
    clearInterval(cutter);
    if (pub !== undefined)
      await withTimeout(
        pub.close().catch(() => undefined),
        5000,
      );
    await proxy.close();
  }
}
