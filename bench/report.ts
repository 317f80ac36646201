// Medians over rounds, the markdown summary, and the JSON files under bench/results/.

import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isCoreScenario, type Scenario, type SizeName } from './config.js';
import type { LibName } from './libs/types.js';

export interface ChildResult {
  ok: boolean;
  lib: LibName;
  scenario: Scenario;
  size: SizeName;
  count: number;
  pid: number;
  round?: number;
  error?: string;
  /** Messages (or calls) actually measured: fewer than `count` when an rpc run hit its time budget. */
  messages?: number;
  elapsedMs?: number;
  msgsPerSec?: number;
  cpuUsPerMsg?: number;
  cpuSysUsPerMsg?: number;
  peakRssMiB?: number;
  startRssMiB?: number;
  finalRssMiB?: number;
  p50Us?: number;
  p99Us?: number;
  window?: number;
  /** Scenario-specific figures of the recovery and scaling scenarios. */
  metrics?: Record<string, number>;
  /** Scenario-specific sequences, e.g. each reconnect delay. */
  series?: Record<string, number[]>;
  note?: string;
  /** 1-minute load average when the child started: the machine is shared, so contention is recorded. */
  load1?: number;
}

export interface SummaryRow {
  lib: LibName;
  scenario: Scenario;
  size: SizeName;
  count: number;
  rounds: number;
  roundsOk: number;
  msgsPerSec: number | null;
  cpuUsPerMsg: number | null;
  peakRssMiB: number | null;
  startRssMiB: number | null;
  p50Us: number | null;
  p99Us: number | null;
  /** Medians over rounds of each scenario-specific figure (recovery and scaling scenarios). */
  metrics?: Record<string, number | null>;
  /** The sequences of the first successful round (e.g. each reconnect delay). */
  series?: Record<string, number[]>;
  /** The first successful round's note (which API carried the calls, a budget that was reached). */
  note?: string;
  errors: string[];
}

export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const hi = s[mid] ?? Number.NaN;
  return s.length % 2 === 1 ? hi : ((s[mid - 1] ?? hi) + hi) / 2;
}

function med(rs: readonly ChildResult[], pick: (r: ChildResult) => number | undefined): number | null {
  const xs: number[] = [];
  for (const r of rs) {
    const v = pick(r);
    if (v !== undefined && Number.isFinite(v)) xs.push(v);
  }
  return median(xs);
}

export function summarize(
  results: readonly ChildResult[],
  libs: readonly LibName[],
  scenarios: readonly Scenario[],
  sizes: readonly SizeName[],
): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const scenario of scenarios) {
    for (const size of sizes) {
      for (const lib of libs) {
        const all = results.filter((r) => r.lib === lib && r.scenario === scenario && r.size === size);
        if (all.length === 0) continue;
        const ok = all.filter((r) => r.ok);
        const keys = [...new Set(ok.flatMap((r) => Object.keys(r.metrics ?? {})))];
        const first = ok[0];
        const extra: Partial<SummaryRow> = {};
        if (keys.length > 0) {
          extra.metrics = Object.fromEntries(keys.map((k) => [k, med(ok, (r) => r.metrics?.[k])]));
        }
        if (first?.series !== undefined) extra.series = first.series;
        if (first?.note !== undefined && !isCoreScenario(scenario)) extra.note = first.note;
        rows.push({
          lib,
          scenario,
          size,
          count: all[0]?.count ?? 0,
          rounds: all.length,
          roundsOk: ok.length,
          msgsPerSec: med(ok, (r) => r.msgsPerSec),
          cpuUsPerMsg: med(ok, (r) => r.cpuUsPerMsg),
          peakRssMiB: med(ok, (r) => r.peakRssMiB),
          startRssMiB: med(ok, (r) => r.startRssMiB),
          p50Us: med(ok, (r) => r.p50Us),
          p99Us: med(ok, (r) => r.p99Us),
          ...extra,
          errors: [...new Set(all.flatMap((r) => (r.error === undefined ? [] : [r.error])))],
        });
      }
    }
  }
  return rows;
}

export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function fmtNum(n: number | null | undefined, digits: number): string {
  if (n === null || n === undefined) return '–';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Compact throughput label for charts: 1234567 -> "1.23M", 45678 -> "45.7k". */
export function fmtShort(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toPrecision(3)}M`;
  if (n >= 1e3) return `${(n / 1e3).toPrecision(3)}k`;
  if (n >= 100) return n.toFixed(0);
  return n.toPrecision(3);
}

/** The rows the chart and the main table show: the extended scenarios have tables of their own. */
export function coreRows(rows: readonly SummaryRow[]): SummaryRow[] {
  return rows.filter((r) => isCoreScenario(r.scenario));
}

/** The core scenarios' table (the extended ones have their own, see report-extended.ts). */
export function markdownTable(allRows: readonly SummaryRow[]): string {
  const rows = coreRows(allRows);
  const out = [
    '| scenario | size | library | msg/s | % of floor | CPU µs/msg | peak RSS MiB | p50 µs | p99 µs | ok |',
    '|---|---|---|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const r of rows) {
    const floor = rows.find((x) => x.lib === 'floor' && x.scenario === r.scenario && x.size === r.size);
    const pct =
      r.msgsPerSec !== null && floor?.msgsPerSec != null && floor.msgsPerSec > 0
        ? `${((r.msgsPerSec / floor.msgsPerSec) * 100).toFixed(0)} %`
        : '–';
    const rpc = r.scenario === 'rpc';
    const tput =
      r.msgsPerSec === null ? `failed${r.errors[0] === undefined ? '' : ` (${r.errors[0]})`}` : fmtInt(r.msgsPerSec);
    out.push(
      `| ${r.scenario} | ${r.size} | ${r.lib} | ${tput} | ${pct} | ${fmtNum(r.cpuUsPerMsg, r.size === '16B' ? 2 : 0)} | ${fmtNum(r.peakRssMiB, 0)} | ${rpc ? fmtNum(r.p50Us, 0) : ''} | ${rpc ? fmtNum(r.p99Us, 0) : ''} | ${r.roundsOk}/${r.rounds} |`,
    );
  }
  return out.join('\n');
}

/** One line per run that measured fewer messages than asked (rpc time budget), for under the table. */
export function footnotes(runs: readonly ChildResult[]): string[] {
  return runs
    .filter((r) => r.ok && r.messages !== undefined && r.messages < r.count)
    .map(
      (r) =>
        `- ${r.scenario} ${r.size} ${r.lib} (round ${r.round ?? '?'}): time budget reached after ${r.messages} of ${r.count}`,
    );
}

export interface ResultsFile {
  schema: 1;
  startedAt: string;
  finishedAt: string;
  host: Record<string, unknown>;
  options: Record<string, unknown>;
  summary: SummaryRow[];
  runs: ChildResult[];
}

/** Writes <dir>/<timestamp>.json and <dir>/latest.json; returns the timestamped path. */
export function writeResults(dir: string, data: ResultsFile): string {
  mkdirSync(dir, { recursive: true });
  const stamp = data.startedAt.replace(/[:.]/g, '-');
  const file = path.join(dir, `${stamp}.json`);
  const text = `${JSON.stringify(data, null, 2)}\n`;
  // Written under a .tmp name first (ignored by git) so an interrupted run never leaves a torn latest.json.
  const tmp = path.join(dir, 'latest.json.tmp');
  writeFileSync(file, text);
  writeFileSync(tmp, text);
  renameSync(tmp, path.join(dir, 'latest.json'));
  return file;
}
