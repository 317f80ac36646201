// npm run bench — every library through every scenario, interleaved, medians over rounds.
// Writes bench/results/<timestamp>.json, latest.json and latest.svg; prints a markdown table.

import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { appliesToSize, countFor, parseRunOptions } from './config.js';
import { runPlan } from './harness.js';
import { coreRows, footnotes, markdownTable, summarize, writeResults } from './report.js';
import { extendedMarkdown } from './report-extended.js';
import { chartSubtitle, renderChart } from './svg.js';
import { buildWarren } from './build-warren.js';

async function main(): Promise<number> {
  buildWarren();
  const opts = parseRunOptions(process.argv.slice(2), process.env);
  const startedAt = new Date().toISOString();
  const counts: Record<string, number> = {};
  for (const sc of opts.scenarios) {
    for (const sz of opts.sizes) if (appliesToSize(sc, sz)) counts[`${sc}:${sz}`] = countFor(opts, sc, sz);
  }
  process.stderr.write(`bench: ${opts.libs.join(', ')} | ${opts.rounds} round(s) | counts ${JSON.stringify(counts)}\n`);

  const { results, brokerVersion } = await runPlan(opts, (line) => process.stderr.write(`${line}\n`));
  const summary = summarize(results, opts.libs, opts.scenarios, opts.sizes);
  const table = markdownTable(summary);
  const notes = footnotes(results);
  const extended = extendedMarkdown(summary);
  process.stdout.write(
    `\n${table}\n\n${notes.length > 0 ? `${notes.join('\n')}\n\n` : ''}${extended === '' ? '' : `${extended}\n\n`}`,
  );

  const cpus = os.cpus();
  const host = {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    broker: brokerVersion === undefined ? 'RabbitMQ (version unknown)' : `RabbitMQ ${brokerVersion}`,
  };
  const dir = opts.outDir ?? fileURLToPath(new URL('./results', import.meta.url));
  const file = writeResults(dir, {
    schema: 1,
    startedAt,
    finishedAt: new Date().toISOString(),
    host,
    options: {
      url: opts.url.replace(/\/\/[^@/]*@/, '//***@'),
      libs: opts.libs,
      scenarios: opts.scenarios,
      sizes: opts.sizes,
      rounds: opts.rounds,
      quick: opts.quick,
      counts,
      timeoutMs: opts.timeoutMs,
      confirmWindow: opts.confirmWindow ?? 'default (1000, capped at 64 MiB)',
      rpcBudgetMs: opts.rpcBudgetMs,
      extendedRounds: opts.extendedRounds,
      recoveryBudgetMs: opts.recoveryBudgetMs,
    },
    summary,
    runs: results,
  });
  process.stderr.write(`wrote ${path.relative(process.cwd(), file)} and latest.json\n`);
  if (opts.chart) {
    writeFileSync(
      path.join(dir, 'latest.svg'),
      renderChart(coreRows(summary), chartSubtitle(startedAt, host, opts.rounds, opts.quick)),
    );
    process.stderr.write(`wrote ${path.relative(process.cwd(), path.join(dir, 'latest.svg'))}\n`);
  }
  const failed = results.filter((r) => !r.ok).length;
  if (failed > 0) process.stderr.write(`${failed} of ${results.length} runs failed (see the table and latest.json)\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
