// Runs the plan: rounds × scenarios × sizes × libraries, one child process each, the library order rotated every
// round so that no library always runs first (cold broker) or right after the heaviest one. Shared by run.ts and
// check.ts.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  applies,
  appliesToSize,
  countFor,
  isCoreScenario,
  type RunOptions,
  SIZE_BYTES,
  type Scenario,
  type SizeName,
} from './config.js';
import { prefill, sleep } from './floor/admin.js';
import { FloorConnection } from './floor/connection.js';
import type { LibName } from './libs/types.js';
import type { ChildResult } from './report.js';
import { extraNames } from './scale.js';

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Grace beyond the child's own watchdog before the runner kills it. */
const KILL_GRACE_MS = 5000;

function isChildResult(v: unknown): v is ChildResult {
  return (
    typeof v === 'object' &&
    v !== null &&
    'ok' in v &&
    typeof v.ok === 'boolean' &&
    'lib' in v &&
    typeof v.lib === 'string' &&
    'scenario' in v &&
    'size' in v
  );
}

interface ChildSpec {
  lib: LibName;
  scenario: Scenario;
  size: SizeName;
  count: number;
  queue: string;
}

/** A recovery run may take its whole publishing budget and then read the queue back. */
function childTimeoutMs(scenario: Scenario, opts: RunOptions): number {
  if (scenario === 'recovery' || scenario === 'recovery-inflight') {
    return Math.max(opts.timeoutMs, opts.recoveryBudgetMs + 60_000);
  }
  return opts.timeoutMs;
}

function runChild(spec: ChildSpec, opts: RunOptions): Promise<ChildResult> {
  const timeoutMs = childTimeoutMs(spec.scenario, opts);
  const args = [
    // The scaling scenarios read memory after a collection.
    ...(isCoreScenario(spec.scenario) ? [] : ['--expose-gc']),
    '--import',
    'tsx',
    CHILD,
    spec.lib,
    spec.scenario,
    spec.size,
    '--count',
    String(spec.count),
    '--queue',
    spec.queue,
    '--timeout-ms',
    String(timeoutMs),
    '--url',
    opts.url,
    '--rpc-budget-ms',
    String(opts.rpcBudgetMs),
    '--recovery-budget-ms',
    String(opts.recoveryBudgetMs),
  ];
  if (opts.confirmWindow !== undefined) args.push('--window', String(opts.confirmWindow));
  const failed = (error: string): ChildResult => ({
    ok: false,
    lib: spec.lib,
    scenario: spec.scenario,
    size: spec.size,
    count: spec.count,
    pid: 0,
    error,
  });
  return new Promise<ChildResult>((resolve) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let killed = false;
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      // Keep only the tail: a library that logs per message must not grow the runner.
      err = (err + s).slice(-4000);
    });
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, timeoutMs + KILL_GRACE_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve(failed(`spawn failed: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out
        .split('\n')
        .reverse()
        .find((l) => l.startsWith('RESULT '));
      if (line !== undefined) {
        try {
          const parsed: unknown = JSON.parse(line.slice(7));
          if (isChildResult(parsed)) return resolve(parsed);
        } catch {
          // Fall through to the generic failure below, which carries stderr.
        }
      }
      const why = killed ? `killed after ${timeoutMs + KILL_GRACE_MS} ms` : `exit ${code ?? signal}`;
      const tail = err.trim().split('\n').slice(-3).join(' | ');
      resolve(failed(`${why}${tail === '' ? '' : `: ${tail}`}`));
    });
  });
}

function uniqueQueue(spec: Omit<ChildSpec, 'queue' | 'count'>, round: number): string {
  return `bench.${spec.lib}.${spec.scenario}.${spec.size}.r${round}.${process.pid}.${randomBytes(3).toString('hex')}`;
}

export function describe(r: ChildResult): string {
  if (!r.ok) return `FAILED: ${r.error ?? 'unknown error'}`;
  const parts = [
    `${Math.round(r.msgsPerSec ?? 0).toLocaleString('en-US')} msg/s`,
    `cpu ${(r.cpuUsPerMsg ?? 0).toFixed(r.size === '16B' ? 2 : 0)} µs/msg`,
    `peak rss ${(r.peakRssMiB ?? 0).toFixed(0)} MiB`,
  ];
  if (r.p50Us !== undefined) parts.push(`p50 ${r.p50Us.toFixed(0)} µs`, `p99 ${(r.p99Us ?? 0).toFixed(0)} µs`);
  for (const [k, v] of Object.entries(r.metrics ?? {})) {
    if (typeof v === 'number') parts.push(`${k} ${Number.isInteger(v) ? v : v.toPrecision(3)}`);
  }
  if (r.load1 !== undefined) parts.push(`load ${r.load1.toFixed(1)}`);
  return parts.join(', ');
}

export interface PlanOutcome {
  results: ChildResult[];
  brokerVersion: string | undefined;
}

export async function runPlan(opts: RunOptions, log: (line: string) => void): Promise<PlanOutcome> {
  let admin: FloorConnection;
  try {
    admin = await FloorConnection.connect(opts.url, { name: 'bench runner' });
  } catch (err) {
    throw new Error(`cannot reach the broker at ${opts.url}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const version = admin.serverProperties.version;
  const brokerVersion = typeof version === 'string' ? version : undefined;
  const results: ChildResult[] = [];
  const roundsOf = (scenario: Scenario): number =>
    isCoreScenario(scenario) ? opts.rounds : Math.min(opts.rounds, opts.extendedRounds);
  const runs = (scenario: Scenario, size: SizeName, lib: LibName, round: number): boolean =>
    round < roundsOf(scenario) && applies(lib, scenario) && appliesToSize(scenario, size);
  let total = 0;
  for (let round = 0; round < opts.rounds; round++) {
    for (const scenario of opts.scenarios) {
      for (const size of opts.sizes) for (const lib of opts.libs) if (runs(scenario, size, lib, round)) total++;
    }
  }
  let n = 0;
  try {
    for (let round = 0; round < opts.rounds; round++) {
      const libs = opts.libs.map((_, i) => opts.libs[(i + round) % opts.libs.length] ?? opts.libs[0]);
      for (const scenario of opts.scenarios) {
        for (const size of opts.sizes) {
          for (const lib of libs) {
            if (lib === undefined || !runs(scenario, size, lib, round)) continue;
            n++;
            const count = countFor(opts, scenario, size);
            const queue = uniqueQueue({ lib, scenario, size }, round);
            const label = `[${n}/${total}] round ${round + 1} ${scenario} ${size} ${lib} ×${count}`;
            let r: ChildResult;
            try {
              if (admin.failure !== undefined)
                admin = await FloorConnection.connect(opts.url, { name: 'bench runner' });
              if (scenario === 'consume-ack') {
                await prefill(opts.url, admin, queue, SIZE_BYTES[size], count, Date.now() + opts.timeoutMs);
              }
              const load1 = os.loadavg()[0] ?? 0;
              r = await runChild({ lib, scenario, size, count, queue }, opts);
              r.load1 = Math.round(load1 * 100) / 100;
            } catch (err) {
              r = {
                ok: false,
                lib,
                scenario,
                size,
                count,
                pid: 0,
                error: `runner: ${err instanceof Error ? err.message : String(err)}`,
              };
            }
            r.round = round + 1;
            results.push(r);
            log(`${label}: ${describe(r)}`);
            // The child deletes its queue; this catches children that were killed or failed before cleanup.
            if (admin.failure !== undefined) admin = await FloorConnection.connect(opts.url, { name: 'bench runner' });
            await admin.queueDelete(queue).catch(() => undefined);
            const extra = extraNames(scenario, queue);
            if (extra.queues.length > 0) {
              await Promise.all(extra.queues.map((q) => admin.queueDelete(q).catch(() => undefined)));
            }
            for (const x of extra.exchanges) await admin.exchangeDelete(x).catch(() => undefined);
            // Let the broker release a deleted 1 MiB queue before the next library is measured.
            await sleep(size === '1MiB' || !isCoreScenario(scenario) ? 1000 : 200);
          }
        }
      }
    }
  } finally {
    await admin.close().catch(() => undefined);
  }
  return { results, brokerVersion };
}
