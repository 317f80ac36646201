// Names, defaults and command-line parsing shared by the runner (run.ts / check.ts) and the child (child.ts).

import { isLibName, LIB_NAMES, type LibName } from './libs/types.js';

/** The throughput and latency scenarios: every size, every library, `--rounds` rounds. */
export const CORE_SCENARIOS = ['publish', 'publish-confirm', 'consume-ack', 'rpc'] as const;
/** Recovery under faults and cost at scale: 16 B only, `--extended-rounds` rounds (default 1). */
export const EXTENDED_SCENARIOS = [
  'recovery',
  'recovery-inflight',
  'consumers-1',
  'consumers-100',
  'consumers-1000',
  'channels',
  'connections',
  'fanout',
] as const;
export const SCENARIOS = [...CORE_SCENARIOS, ...EXTENDED_SCENARIOS] as const;
export type Scenario = (typeof SCENARIOS)[number];
export type CoreScenario = (typeof CORE_SCENARIOS)[number];

export function isCoreScenario(s: string): s is CoreScenario {
  return (CORE_SCENARIOS as readonly string[]).includes(s);
}

/**
 * Whether `lib` takes part in `scenario`. warren-amqplib is the amqplib adapter over another module, so the
 * extended scenarios (which measure the library underneath) leave it out; the floor has no reconnects and
 * speaks on one channel.
 */
export function applies(lib: LibName, scenario: Scenario): boolean {
  if (isCoreScenario(scenario)) return true;
  if (lib === 'warren-amqplib') return false;
  if (lib === 'floor') return scenario !== 'recovery' && scenario !== 'recovery-inflight' && scenario !== 'channels';
  return true;
}

/** The sizes a scenario runs at: the extended ones only at 16 B. */
export function appliesToSize(scenario: Scenario, size: SizeName): boolean {
  return isCoreScenario(scenario) || size === '16B';
}

export const SIZES = ['16B', '1MiB'] as const;
export type SizeName = (typeof SIZES)[number];

export const SIZE_BYTES: Record<SizeName, number> = { '16B': 16, '1MiB': 1024 * 1024 };

export const DEFAULT_URL = 'amqp://guest:guest@127.0.0.1:5672';
export const PREFETCH = 1000;
/** Publisher-confirm window: 1000 unconfirmed messages, or 64 MiB of bodies when that is fewer (see README). */
export const CONFIRM_WINDOW_MESSAGES = 1000;
export const CONFIRM_WINDOW_BYTES = 64 * 1024 * 1024;

export function confirmWindow(bodySize: number, override?: number): number {
  if (override !== undefined) return override;
  return Math.max(1, Math.min(CONFIRM_WINDOW_MESSAGES, Math.floor(CONFIRM_WINDOW_BYTES / bodySize)));
}

export function isScenario(s: string): s is Scenario {
  return (SCENARIOS as readonly string[]).includes(s);
}

export function isSizeName(s: string): s is SizeName {
  return (SIZES as readonly string[]).includes(s);
}

// Sized so each 16 B run takes roughly 2–5 s on a quiet 2-core machine with the broker on the same box (which,
// at 40–80k msg/s for a single classic queue there, is the bottleneck for the faster clients). Expect 3–5× longer
// when other work shares the cores.
const FULL_COUNTS: Record<CoreScenario, Record<SizeName, number>> = {
  publish: { '16B': 200_000, '1MiB': 2_000 },
  'publish-confirm': { '16B': 100_000, '1MiB': 2_000 },
  'consume-ack': { '16B': 200_000, '1MiB': 2_000 },
  rpc: { '16B': 5_000, '1MiB': 300 },
};

const QUICK_COUNTS: Record<CoreScenario, Record<SizeName, number>> = {
  publish: { '16B': 20_000, '1MiB': 200 },
  'publish-confirm': { '16B': 10_000, '1MiB': 200 },
  'consume-ack': { '16B': 20_000, '1MiB': 200 },
  rpc: { '16B': 1_000, '1MiB': 50 },
};

/**
 * What "count" means per extended scenario: messages (recovery, consumers-N), cuts (recovery-inflight), channels
 * in total, connections, single publishes to the fan-out exchange. [full, quick]
 */
const EXTENDED_COUNTS: Record<(typeof EXTENDED_SCENARIOS)[number], [number, number]> = {
  recovery: [20_000, 10_000],
  'recovery-inflight': [8, 4],
  'consumers-1': [50_000, 10_000],
  'consumers-100': [50_000, 10_000],
  'consumers-1000': [50_000, 10_000],
  channels: [2_047, 2_047],
  connections: [100, 100],
  fanout: [20, 5],
};

/** Counts that are structural (the scenario's definition), not sample sizes: --scale leaves them alone. */
const UNSCALED: readonly Scenario[] = ['recovery-inflight', 'channels', 'connections'];

export function defaultCount(scenario: Scenario, size: SizeName, quick: boolean): number {
  if (isCoreScenario(scenario)) return (quick ? QUICK_COUNTS : FULL_COUNTS)[scenario][size];
  return EXTENDED_COUNTS[scenario][quick ? 1 : 0];
}

export interface RunOptions {
  url: string;
  libs: LibName[];
  scenarios: Scenario[];
  sizes: SizeName[];
  rounds: number;
  quick: boolean;
  /** Multiplies every default count (explicit --count values are taken as given). */
  scale: number;
  counts: Map<string, number>;
  timeoutMs: number;
  confirmWindow: number | undefined;
  /** Wall-time cap of one rpc run's measured loop, in ms. */
  rpcBudgetMs: number;
  /** Rounds of the extended scenarios (recovery, scaling); they are long and steadier, so 1 by default. */
  extendedRounds: number;
  /** Wall-time cap of one recovery run's publishing, in ms. */
  recoveryBudgetMs: number;
  outDir: string | undefined;
  chart: boolean;
}

export function countKey(scenario: Scenario, size: SizeName): string {
  return `${scenario}:${size}`;
}

export function countFor(opts: RunOptions, scenario: Scenario, size: SizeName): number {
  const explicit = opts.counts.get(countKey(scenario, size));
  if (explicit !== undefined) return explicit;
  const base = defaultCount(scenario, size, opts.quick);
  if (UNSCALED.includes(scenario)) return base;
  return Math.max(1, Math.round(base * opts.scale));
}

export const USAGE = `usage: tsx bench/run.ts [options]
  --quick                 small counts, 1 round (default 3 rounds)
  --rounds N              rounds per library/scenario/size (medians are reported)
  --libs a,b              subset of: ${LIB_NAMES.join(', ')}
  --scenarios a,b         subset of: ${SCENARIOS.join(', ')}
  --sizes a,b             subset of: ${SIZES.join(', ')}
  --count SCENARIO:SIZE=N message count for one cell, e.g. --count publish:16B=150000 (repeatable)
  --scale F               multiply every default count by F
  --window N              publisher-confirm window (default 1000, capped at 64 MiB of bodies)
  --rpc-budget S          stop an rpc run after S seconds of calls (default 20, quick 8) and report what it did
  --extended-rounds N     rounds of the recovery and scaling scenarios (default 1; at most --rounds)
  --recovery-budget S     stop a recovery run's publishing after S seconds (default 60, quick 30)
  --core                  only the core scenarios (${CORE_SCENARIOS.join(', ')})
  --timeout S             per-child timeout in seconds (default 120); an overrun is killed and reported failed
  --url URL               broker URL (default ${DEFAULT_URL}, or $AMQP_URL)
  --out DIR               results directory (default bench/results)
  --no-chart              skip the SVG
env: BENCH_ROUNDS, BENCH_SCALE, BENCH_QUICK=1, BENCH_TIMEOUT (seconds), AMQP_URL`;

function list<T extends string>(raw: string, valid: (s: string) => s is T, what: string): T[] {
  const out: T[] = [];
  for (const part of raw.split(',')) {
    const s = part.trim();
    if (s === '') continue;
    if (!valid(s)) throw new Error(`unknown ${what} "${s}"`);
    out.push(s);
  }
  if (out.length === 0) throw new Error(`empty ${what} list`);
  return out;
}

function positive(raw: string | undefined, what: string): number {
  const n = Number(raw);
  if (raw === undefined || !Number.isFinite(n) || n <= 0) throw new Error(`${what} needs a positive number`);
  return n;
}

export function parseRunOptions(argv: readonly string[], env: NodeJS.ProcessEnv): RunOptions {
  const quick = argv.includes('--quick') || env.BENCH_QUICK === '1';
  const opts: RunOptions = {
    url: env.AMQP_URL ?? DEFAULT_URL,
    libs: [...LIB_NAMES],
    scenarios: [...SCENARIOS],
    sizes: [...SIZES],
    rounds: env.BENCH_ROUNDS !== undefined ? positive(env.BENCH_ROUNDS, 'BENCH_ROUNDS') : quick ? 1 : 3,
    quick,
    scale: env.BENCH_SCALE !== undefined ? positive(env.BENCH_SCALE, 'BENCH_SCALE') : 1,
    counts: new Map(),
    timeoutMs: (env.BENCH_TIMEOUT !== undefined ? positive(env.BENCH_TIMEOUT, 'BENCH_TIMEOUT') : 120) * 1000,
    confirmWindow: undefined,
    rpcBudgetMs: quick ? 8_000 : 20_000,
    extendedRounds: 1,
    recoveryBudgetMs: quick ? 30_000 : 60_000,
    outDir: undefined,
    chart: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    switch (arg) {
      case '--quick':
        break;
      case '--rounds':
        opts.rounds = Math.round(positive(next(), '--rounds'));
        break;
      case '--libs':
        opts.libs = list(next(), isLibName, 'library');
        break;
      case '--scenarios':
        opts.scenarios = list(next(), isScenario, 'scenario');
        break;
      case '--sizes':
        opts.sizes = list(next(), isSizeName, 'size');
        break;
      case '--count': {
        const m = /^([a-z0-9-]+):([0-9A-Za-z]+)=(\d+)$/.exec(next());
        const [, sc, sz, n] = m ?? [];
        if (sc === undefined || sz === undefined || n === undefined || !isScenario(sc) || !isSizeName(sz)) {
          throw new Error('--count wants SCENARIO:SIZE=N, e.g. publish:16B=150000');
        }
        opts.counts.set(countKey(sc, sz), Math.max(1, Number(n)));
        break;
      }
      case '--scale':
        opts.scale = positive(next(), '--scale');
        break;
      case '--window':
        opts.confirmWindow = Math.round(positive(next(), '--window'));
        break;
      case '--rpc-budget':
        opts.rpcBudgetMs = positive(next(), '--rpc-budget') * 1000;
        break;
      case '--extended-rounds':
        opts.extendedRounds = Math.round(positive(next(), '--extended-rounds'));
        break;
      case '--recovery-budget':
        opts.recoveryBudgetMs = positive(next(), '--recovery-budget') * 1000;
        break;
      case '--core':
        opts.scenarios = [...CORE_SCENARIOS];
        break;
      case '--timeout':
        opts.timeoutMs = positive(next(), '--timeout') * 1000;
        break;
      case '--url':
        opts.url = next();
        break;
      case '--out':
        opts.outDir = next();
        break;
      case '--no-chart':
        opts.chart = false;
        break;
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${arg}\n${USAGE}`);
    }
  }
  return opts;
}
