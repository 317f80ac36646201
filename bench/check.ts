// npm run bench:check — a short warren-vs-amqplib run of the throughput scenarios at 16 B. Exits 1 when warren's
// median throughput is below amqplib's on any of them (or warren could not run), printing the ratios. Meant as a
// regression tripwire, so it is short and only compares medians of interleaved runs; on a noisy machine re-run
// before believing a ratio close to 1.0.
//
//   tsx bench/check.ts [--rounds N] [--scale F] [--min-ratio R] [--url URL]

import { type RunOptions, type Scenario, DEFAULT_URL } from './config.js';
import { describe, runPlan } from './harness.js';
import { summarize } from './report.js';
import { buildWarren } from './build-warren.js';

const SCENARIOS: Scenario[] = ['publish', 'publish-confirm', 'consume-ack'];
const BASE_COUNTS: Record<string, number> = {
  'publish:16B': 50_000,
  'publish-confirm:16B': 30_000,
  'consume-ack:16B': 50_000,
};

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<number> {
  buildWarren();
  const rounds = Number(flag('--rounds') ?? process.env.BENCH_ROUNDS ?? '2');
  const scale = Number(flag('--scale') ?? process.env.BENCH_SCALE ?? '1');
  const minRatioArg = Number(flag('--min-ratio') ?? '1.0');
  const minRatio = Number.isFinite(minRatioArg) && minRatioArg > 0 ? minRatioArg : 1.0;
  const counts = new Map<string, number>();
  for (const [k, v] of Object.entries(BASE_COUNTS)) counts.set(k, Math.max(1, Math.round(v * scale)));
  const opts: RunOptions = {
    url: flag('--url') ?? process.env.AMQP_URL ?? DEFAULT_URL,
    libs: ['warren', 'amqplib'],
    scenarios: SCENARIOS,
    sizes: ['16B'],
    rounds: Number.isFinite(rounds) && rounds >= 1 ? Math.round(rounds) : 2,
    quick: true,
    scale: 1,
    counts,
    timeoutMs: 60_000,
    confirmWindow: undefined,
    rpcBudgetMs: 8_000,
    extendedRounds: 1,
    recoveryBudgetMs: 30_000,
    outDir: undefined,
    chart: false,
  };
  const { results } = await runPlan(opts, (line) => process.stderr.write(`${line}\n`));
  const rows = summarize(results, opts.libs, opts.scenarios, opts.sizes);
  let pass = true;
  process.stdout.write('\nwarren / amqplib, median msg/s at 16 B:\n');
  for (const scenario of SCENARIOS) {
    const w = rows.find((r) => r.scenario === scenario && r.lib === 'warren');
    const a = rows.find((r) => r.scenario === scenario && r.lib === 'amqplib');
    const wv = w?.msgsPerSec ?? null;
    const av = a?.msgsPerSec ?? null;
    if (wv === null || av === null || av <= 0) {
      pass = false;
      const why =
        wv === null
          ? `warren failed: ${w?.errors[0] ?? 'no result'}`
          : `amqplib failed: ${a?.errors[0] ?? 'no result'}`;
      process.stdout.write(`  ${scenario.padEnd(16)} n/a   (${why})  FAIL\n`);
      continue;
    }
    const ratio = wv / av;
    const ok = ratio >= minRatio;
    if (!ok) pass = false;
    // CPU per message is printed too: on a shared machine it moves less than throughput does.
    const cpu =
      w?.cpuUsPerMsg != null && a?.cpuUsPerMsg != null
        ? `; cpu µs/msg warren ${w.cpuUsPerMsg.toFixed(2)}, amqplib ${a.cpuUsPerMsg.toFixed(2)}`
        : '';
    process.stdout.write(
      `  ${scenario.padEnd(16)} ${ratio.toFixed(2)}×  (msg/s warren ${Math.round(wv).toLocaleString('en-US')}, amqplib ${Math.round(av).toLocaleString('en-US')}${cpu})  ${ok ? 'ok' : 'FAIL'}\n`,
    );
  }
  const failures = results.filter((r) => !r.ok);
  for (const f of failures) process.stderr.write(`  ${f.lib} ${f.scenario}: ${describe(f)}\n`);
  process.stdout.write(
    pass ? 'bench:check passed\n' : `bench:check FAILED: warren below ${minRatio}× amqplib (or failed)\n`,
  );
  return pass ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench:check: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
