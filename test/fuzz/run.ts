/**
 * Shared plumbing of the fuzz tests: the frame budget and seed from the environment, batches of
 * fast-check runs until the budget is spent (bounded in time too), a watch on uncaught exceptions and
 * unhandled rejections, and a heap check between batches.
 *
 *   WARREN_FUZZ_FRAMES=1000000   frames to feed (default: a CI-sized batch)
 *   WARREN_FUZZ_SEED=1234        base seed; batch i runs with seed + i (default fixed, so CI is repeatable)
 *   WARREN_FUZZ_TIME_LIMIT=600   seconds after which a file stops starting batches (default: the CI
 *                                budget's seconds, scaled by frames / CI frames)
 *
 * A failure prints the batch seed and fast-check's path; rerun just that with
 * WARREN_FUZZ_SEED=<seed> WARREN_FUZZ_PATH=<path> (WARREN_FUZZ_FRAMES does not matter then).
 *
 * @module
 */
import { setImmediate as tick } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';

export interface FuzzSettings {
  frames: number;
  seed: number;
  path: string | undefined;
  timeLimitMs: number;
}

export function settings(ciFrames: number, ciSeconds: number): FuzzSettings {
  const frames = Number(process.env.WARREN_FUZZ_FRAMES ?? ciFrames);
  if (!Number.isSafeInteger(frames) || frames <= 0) throw new Error(`WARREN_FUZZ_FRAMES must be a positive integer`);
  const seed = Number(process.env.WARREN_FUZZ_SEED ?? 0x5eed);
  if (!Number.isSafeInteger(seed)) throw new Error('WARREN_FUZZ_SEED must be an integer');
  const scaled = Math.max(ciSeconds, (ciSeconds * frames) / ciFrames);
  const timeLimitMs = 1000 * Number(process.env.WARREN_FUZZ_TIME_LIMIT ?? scaled);
  return { frames, seed, path: process.env.WARREN_FUZZ_PATH, timeLimitMs };
}

/** Counts what went wrong outside the awaited promises: it must stay empty. */
export class Watch {
  readonly problems: string[] = [];
  private readonly onRejection = (reason: unknown) => {
    this.problems.push(`unhandled rejection: ${describe(reason)}`);
  };
  private readonly onException = (error: unknown) => {
    this.problems.push(`uncaught exception: ${describe(error)}`);
  };
  private readonly onWarning = (warning: Error) => {
    this.problems.push(`process warning: ${warning.name}: ${warning.message}`);
  };

  start(): void {
    process.on('unhandledRejection', this.onRejection);
    process.on('uncaughtExceptionMonitor', this.onException);
    process.on('warning', this.onWarning);
  }

  stop(): void {
    process.off('unhandledRejection', this.onRejection);
    process.off('uncaughtExceptionMonitor', this.onException);
    process.off('warning', this.onWarning);
  }
}

export function describe(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  return String(value);
}

let gcFn: (() => void) | undefined;
/** Heap in use after a full collection (best effort without --expose-gc). */
export async function settledHeap(): Promise<number> {
  if (gcFn === undefined) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  await tick();
  gcFn();
  return process.memoryUsage().heapUsed;
}

export interface BatchReport {
  frames: number;
  cases: number;
  batches: number;
  ms: number;
  heapFirstMiB: number;
  heapLastMiB: number;
  stoppedByTime: boolean;
}

/**
 * Runs `property` in batches of `batchSize` cases with seeds seed, seed + 1, ... until `count()`
 * reaches the frame budget or the time limit passes. With WARREN_FUZZ_PATH set, replays one case.
 */
export async function runBatches<T>(
  s: FuzzSettings,
  arbitrary: fc.Arbitrary<T>,
  predicate: (value: T) => Promise<void>,
  count: () => number,
  batchSize: number,
  log: (line: string) => void,
): Promise<BatchReport> {
  const started = Date.now();
  const property = fc.asyncProperty(arbitrary, predicate);
  if (s.path !== undefined) {
    await fc.assert(property, {
      seed: s.seed,
      path: s.path,
      numRuns: 1,
      endOnFailure: true,
      includeErrorInReport: true,
    });
    return report(0, 1, 0, 0, false);
  }
  let batches = 0;
  let cases = 0;
  let heapFirst = 0;
  let heapLast = 0;
  let stoppedByTime = false;
  while (count() < s.frames) {
    if (Date.now() - started > s.timeLimitMs) {
      stoppedByTime = true;
      break;
    }
    const seed = s.seed + batches;
    try {
      await fc.assert(property, { seed, numRuns: batchSize, includeErrorInReport: true });
    } catch (err) {
      log(`fuzz batch failed: seed ${seed}; replay with WARREN_FUZZ_SEED=${seed} and the path fast-check prints`);
      throw err;
    }
    batches++;
    cases += batchSize;
    heapLast = await settledHeap();
    if (batches === 1) heapFirst = heapLast;
  }
  return report(heapFirst, cases, batches, heapLast, stoppedByTime);

  function report(first: number, n: number, b: number, last: number, byTime: boolean): BatchReport {
    return {
      frames: count(),
      cases: n,
      batches: b,
      ms: Date.now() - started,
      heapFirstMiB: Math.round(first / 2 ** 20),
      heapLastMiB: Math.round(last / 2 ** 20),
      stoppedByTime: byTime,
    };
  }
}

/** Cuts `bytes` at the given points (modulo its length), as a socket might deliver it. */
export function cut(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  if (bytes.length === 0) return [];
  const points = [...new Set(cuts.map((c) => c % bytes.length))].filter((p) => p > 0).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}
