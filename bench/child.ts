// One library, one scenario, one body size, in a fresh process so that no library's heap, JIT state or sockets
// leak into another's numbers. Prints exactly one `RESULT {json}` line on stdout.
//
//   node --import tsx bench/child.ts <lib> <scenario> <size> --count N --queue Q --timeout-ms MS
//     [--url U] [--window N] [--rpc-budget-ms MS] [--recovery-budget-ms MS]

import { confirmWindow, DEFAULT_URL, isCoreScenario, isScenario, isSizeName, SIZE_BYTES } from './config.js';
import { FloorConnection } from './floor/connection.js';
import { adapterOf, isLibName } from './libs/types.js';
import type { ChildResult } from './report.js';
import { recovery } from './recovery.js';
import { runScale } from './scale.js';
import { type Measured, runScenario, type ScenarioContext } from './scenarios.js';

const MiB = 1024 * 1024;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}

function emit(r: ChildResult): void {
  process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
}

async function main(): Promise<number> {
  const [lib, scenario, size] = process.argv.slice(2, 5);
  if (lib === undefined || !isLibName(lib) || scenario === undefined || !isScenario(scenario)) {
    throw new Error('usage: child.ts <lib> <scenario> <size> --count N --queue Q --timeout-ms MS');
  }
  if (size === undefined || !isSizeName(size)) throw new Error(`bad size ${String(size)}`);
  const count = Number(arg('--count') ?? '0');
  const queue = arg('--queue') ?? `bench-${lib}-${scenario}-${size}-${process.pid}`;
  const timeoutMs = Number(arg('--timeout-ms') ?? '120000');
  const url = arg('--url') ?? DEFAULT_URL;
  const windowArg = arg('--window');
  const budgetArg = arg('--rpc-budget-ms');
  const recoveryBudgetArg = arg('--recovery-budget-ms');
  const windowOverride = windowArg === undefined ? undefined : Number(windowArg);
  if (!(count > 0)) throw new Error('--count must be positive');

  const base: ChildResult = {
    ok: false,
    lib,
    scenario,
    size,
    count,
    pid: process.pid,
  };

  // RSS is sampled from the start so a library's own load-time footprint is part of its peak.
  const startRss = process.memoryUsage.rss();
  let peakRss = startRss;
  const sampler = setInterval(() => {
    const r = process.memoryUsage.rss();
    if (r > peakRss) peakRss = r;
  }, 50);
  sampler.unref();

  // Last line of defence inside the child (the runner kills it a little later anyway): report and leave.
  const watchdog = setTimeout(() => {
    emit({ ...base, error: `timed out after ${timeoutMs} ms` });
    process.exit(2);
  }, timeoutMs);
  watchdog.unref();

  const deadline = Date.now() + timeoutMs - 2000;
  let admin: FloorConnection | undefined;
  try {
    const adapter = adapterOf(await import(`./libs/${lib}.js`));
    admin = await FloorConnection.connect(url, { name: 'bench admin' });
    const bodySize = SIZE_BYTES[size];
    const ctx: ScenarioContext = {
      url,
      queue,
      bodySize,
      count,
      deadline,
      admin,
      confirmWindow: windowOverride,
      ...(budgetArg === undefined ? {} : { rpcBudgetMs: Number(budgetArg) }),
      ...(recoveryBudgetArg === undefined ? {} : { recoveryBudgetMs: Number(recoveryBudgetArg) }),
    };
    let m: Measured;
    if (isCoreScenario(scenario)) m = await runScenario(adapter, scenario, ctx);
    else if (scenario === 'recovery' || scenario === 'recovery-inflight') m = await recovery(adapter, ctx, scenario);
    else m = await runScale(adapter, scenario, ctx);
    const finalRss = process.memoryUsage.rss();
    if (finalRss > peakRss) peakRss = finalRss;
    const result: ChildResult = {
      ...base,
      ok: true,
      messages: m.messages,
      elapsedMs: m.elapsedMs,
      msgsPerSec: (m.messages / m.elapsedMs) * 1000,
      cpuUsPerMsg: m.cpuUs / m.messages,
      cpuSysUsPerMsg: m.cpuSysUs / m.messages,
      peakRssMiB: peakRss / MiB,
      startRssMiB: startRss / MiB,
      finalRssMiB: finalRss / MiB,
    };
    if (scenario === 'publish-confirm') result.window = confirmWindow(bodySize, windowOverride);
    if (m.latenciesUs !== undefined) {
      const sorted = m.latenciesUs.slice().sort();
      result.p50Us = percentile(sorted, 50);
      result.p99Us = percentile(sorted, 99);
    }
    // A figure with nothing to measure (no cut was followed by a confirm, say) is left out, not sent as null.
    if (m.metrics !== undefined) {
      result.metrics = Object.fromEntries(Object.entries(m.metrics).filter(([, v]) => Number.isFinite(v)));
    }
    if (m.series !== undefined) result.series = m.series;
    if (m.note !== undefined) result.note = m.note;
    emit(result);
    return 0;
  } catch (err) {
    emit({ ...base, error: err instanceof Error ? err.message : String(err) });
    return 1;
  } finally {
    await admin?.queueDelete(queue).catch(() => undefined);
    await admin?.close().catch(() => undefined);
    clearTimeout(watchdog);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
