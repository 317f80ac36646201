// Markdown for issue 12's targets: the ratios of the core scenarios (warren ÷ floor, warren CPU ÷ best peer's),
// and one table per recovery and scaling scenario with the ratios each target is stated in.

import type { Scenario } from './config.js';
import type { LibName } from './libs/types.js';
import { fmtInt, fmtNum, type SummaryRow } from './report.js';

/** The other Node clients warren is compared with (warren-amqplib is warren, the floor is the limit). */
const PEERS: readonly LibName[] = ['amqplib', 'amqp-client', 'rabbitmq-client'];

type Num = number | null | undefined;

function ratio(a: Num, b: Num): string {
  if (a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '–';
  const q = a / b;
  return `${q !== 0 && q < 0.1 ? q.toPrecision(2) : q.toFixed(2)}×`;
}

function row(rows: readonly SummaryRow[], lib: LibName, scenario: Scenario): SummaryRow | undefined {
  return rows.find((r) => r.lib === lib && r.scenario === scenario && r.size === '16B');
}

function metric(r: SummaryRow | undefined, key: string): Num {
  return r?.metrics?.[key];
}

/** The peer with the best (lowest with `lower`, else highest) value of `pick`. */
function bestPeer(
  rows: readonly SummaryRow[],
  scenario: Scenario,
  pick: (r: SummaryRow) => Num,
  lower: boolean,
): SummaryRow | undefined {
  let best: SummaryRow | undefined;
  for (const lib of PEERS) {
    const r = row(rows, lib, scenario);
    const v = r === undefined ? null : pick(r);
    if (r === undefined || v == null || !Number.isFinite(v)) continue;
    const b = best === undefined ? null : pick(best);
    if (b == null || (lower ? v < b : v > b)) best = r;
  }
  return best;
}

function failed(r: SummaryRow): string {
  return `failed${r.errors[0] === undefined ? '' : ` (${r.errors[0]})`}`;
}

function rate(r: SummaryRow | undefined): string {
  if (r === undefined) return '–';
  if (r.msgsPerSec === null) return failed(r);
  return `${fmtInt(r.msgsPerSec)} (${fmtNum(r.cpuUsPerMsg, 2)})`;
}

function targets(rows: readonly SummaryRow[]): string[] {
  const out: string[] = [];
  const scenarios: Scenario[] = ['publish', 'publish-confirm', 'consume-ack'];
  if (scenarios.some((s) => row(rows, 'warren', s) !== undefined)) {
    out.push(
      '### Targets at 16 B: msg/s (client CPU µs/msg)',
      '',
      '| scenario | floor | warren | best peer | warren ÷ floor | warren CPU ÷ best peer’s | warren CPU ÷ floor’s |',
      '|---|--:|--:|--:|--:|--:|--:|',
    );
    for (const s of scenarios) {
      const w = row(rows, 'warren', s);
      if (w === undefined) continue;
      const f = row(rows, 'floor', s);
      const p = bestPeer(rows, s, (r) => r.msgsPerSec, false);
      out.push(
        `| ${s} | ${rate(f)} | ${rate(w)} | ${p === undefined ? '–' : `${p.lib} ${rate(p)}`} | ${ratio(w.msgsPerSec, f?.msgsPerSec)} | ${ratio(w.cpuUsPerMsg, p?.cpuUsPerMsg)} | ${ratio(w.cpuUsPerMsg, f?.cpuUsPerMsg)} |`,
      );
    }
    out.push('');
  }
  const w = row(rows, 'warren', 'rpc');
  if (w !== undefined) {
    const f = row(rows, 'floor', 'rpc');
    const p = bestPeer(rows, 'rpc', (r) => r.p50Us, true);
    const lat = (r: SummaryRow | undefined): string =>
      r === undefined ? '–' : r.p50Us === null ? failed(r) : `${fmtInt(r.p50Us)} / ${fmtNum(r.p99Us, 0)}`;
    out.push(
      '### RPC at 16 B over direct reply-to, one call in flight: p50 / p99 µs',
      '',
      '| floor | warren | best peer | warren ÷ floor p50 / p99 | warren ÷ best peer p50 / p99 |',
      '|--:|--:|--:|--:|--:|',
      `| ${lat(f)} | ${lat(w)} | ${p === undefined ? '–' : `${p.lib} ${lat(p)}`} | ${ratio(w.p50Us, f?.p50Us)} / ${ratio(w.p99Us, f?.p99Us)} | ${ratio(w.p50Us, p?.p50Us)} / ${ratio(w.p99Us, p?.p99Us)} |`,
      '',
    );
  }
  return out;
}

function present(rows: readonly SummaryRow[], scenario: Scenario): SummaryRow[] {
  return rows.filter((r) => r.scenario === scenario && r.size === '16B');
}

function ms(v: Num, digits = 0): string {
  return fmtNum(v, digits);
}

interface Column {
  head: string;
  /** Identifies the row (library, count): kept in a failed row, whose first other cell carries the error. */
  id?: boolean;
  left?: boolean;
  cell: (r: SummaryRow) => string;
}

const LIB: Column = { head: 'library', id: true, left: true, cell: (r) => r.lib };

/** Column of a scenario figure, formatted with `digits` decimals. */
function fig(head: string, key: string, digits = 0): Column {
  return { head, cell: (r) => fmtNum(metric(r, key), digits) };
}

function notesOf(rs: readonly SummaryRow[]): string[] {
  return rs.filter((r) => r.note !== undefined).map((r) => `- ${r.lib}: ${r.note}`);
}

/** One markdown table (a row per run that has a result), then the lines under it; nothing when `rs` is empty. */
function section(title: string, rs: readonly SummaryRow[], cols: readonly Column[], after: string[]): string[] {
  if (rs.length === 0) return [];
  const out = [
    `### ${title}`,
    '',
    `| ${cols.map((c) => c.head).join(' | ')} |`,
    `|${cols.map((c) => (c.left === true ? '---' : '--:')).join('|')}|`,
  ];
  for (const r of rs) {
    if (r.metrics !== undefined) {
      out.push(`| ${cols.map((c) => c.cell(r)).join(' | ')} |`);
      continue;
    }
    const firstOther = cols.findIndex((c) => c.id !== true);
    out.push(`| ${cols.map((c, i) => (c.id === true ? c.cell(r) : i === firstOther ? failed(r) : '')).join(' | ')} |`);
  }
  out.push('', ...after, '');
  return out;
}

function recoveryTables(rows: readonly SummaryRow[]): string[] {
  const storm = present(rows, 'recovery');
  const stormAfter: string[] = [];
  const w = storm.find((r) => r.lib === 'warren');
  const q = storm.find((r) => r.lib === 'rabbitmq-client');
  if (w?.metrics !== undefined && q?.metrics !== undefined) {
    const done = (r: SummaryRow): boolean => (metric(r, 'confirmed') ?? 0) >= r.count;
    const time = done(w) && done(q) ? ratio(metric(w, 'totalMs'), metric(q, 'totalMs')) : 'n/a (budget reached)';
    // Duplicates per confirmed message, so a run that got further is not penalised for it.
    const dupRate = (r: SummaryRow): Num => {
      const d = metric(r, 'duplicates');
      const c = metric(r, 'confirmed');
      return d == null || c == null || c === 0 ? null : d / c;
    };
    const dq = dupRate(q);
    const dups =
      dq === 0 ? (dupRate(w) === 0 ? '1.00× (none either)' : '∞ (rabbitmq-client: none)') : ratio(dupRate(w), dq);
    stormAfter.push(
      `warren ÷ rabbitmq-client: time ${time} (target ≤ 0.8×), duplicates per message ${dups} (target ≤ 0.2×); warren's median cut → first confirm ${ms(metric(w, 'cutToConfirmMedianMs'))} ms (target ≤ 100 ms).`,
      '',
    );
  }
  const inflight = present(rows, 'recovery-inflight');
  const iw = inflight.find((r) => r.lib === 'warren');
  const iq = inflight.find((r) => r.lib === 'rabbitmq-client');
  const inflightAfter =
    iw?.metrics !== undefined && iq?.metrics !== undefined
      ? [
          `warren ÷ rabbitmq-client: median reconnect ${ratio(metric(iw, 'reconnectMedianMs'), metric(iq, 'reconnectMedianMs'))}, max ${ratio(metric(iw, 'reconnectMaxMs'), metric(iq, 'reconnectMaxMs'))}.`,
          '',
        ]
      : [];
  const total: Column = {
    head: 'total s',
    cell: (r) => {
      const t = metric(r, 'totalMs');
      return t == null ? '–' : (t / 1000).toFixed(t < 10_000 ? 2 : 1);
    },
  };
  return [
    ...section(
      'Recovery: a cut every 300 ms, confirmed persistent publishes, 100 in flight',
      storm,
      [
        LIB,
        { head: 'confirmed / asked', cell: (r) => `${fmtInt(metric(r, 'confirmed') ?? 0)} / ${fmtInt(r.count)}` },
        total,
        fig('cuts', 'cuts'),
        fig('connections', 'connections'),
        fig('duplicates', 'duplicates'),
        fig('lost', 'lost'),
        {
          head: 'cut → first confirm ms, median (max)',
          cell: (r) => `${ms(metric(r, 'cutToConfirmMedianMs'))} (${ms(metric(r, 'cutToConfirmMaxMs'))})`,
        },
      ],
      [...stormAfter, ...notesOf(storm)],
    ),
    ...section(
      'Recovery: a cut every second with 100 publishes in flight — each reconnect delay (cut → new connection)',
      inflight,
      [
        LIB,
        fig('cuts', 'cuts'),
        {
          head: 'reconnect delays, ms, in order',
          left: true,
          cell: (r) => (r.series?.reconnectMs ?? []).map((v) => fmtInt(v)).join(', '),
        },
        fig('median', 'reconnectMedianMs'),
        fig('max', 'reconnectMaxMs'),
        fig('cut → first confirm ms, median', 'cutToConfirmMedianMs'),
        fig('duplicates', 'duplicates'),
        fig('lost', 'lost'),
      ],
      [...inflightAfter, ...notesOf(inflight)],
    ),
  ];
}

const CPU: Column = { head: 'CPU µs/msg', cell: (r) => fmtNum(r.cpuUsPerMsg, 2) };

function scaleTables(rows: readonly SummaryRow[]): string[] {
  const consumerScenarios: Scenario[] = ['consumers-1', 'consumers-100', 'consumers-1000'];
  const w = (s: Scenario): SummaryRow | undefined => row(rows, 'warren', s);
  const bestCpu = bestPeer(rows, 'consumers-1000', (r) => r.cpuUsPerMsg, true);
  const bestConsumerMem = bestPeer(rows, 'consumers-1000', (r) => metric(r, 'heapPerConsumerKiB'), true);
  const bestConsumerMarginal = bestPeer(rows, 'consumers-1000', (r) => metric(r, 'heapPerConsumerMarginalKiB'), true);
  const bestChannelMem = bestPeer(rows, 'channels', (r) => metric(r, 'heapPerChannelKiB'), true);
  const bestChannelMarginal = bestPeer(rows, 'channels', (r) => metric(r, 'heapPerChannelMarginalKiB'), true);
  const bestConnMem = bestPeer(rows, 'connections', (r) => metric(r, 'heapPerConnectionKiB'), true);
  const bestFanCpu = bestPeer(rows, 'fanout', (r) => r.cpuUsPerMsg, true);
  const floorConn = row(rows, 'floor', 'connections');
  const floorFan = row(rows, 'floor', 'fanout');
  const heap =
    (key: string): ((r: SummaryRow | undefined) => Num) =>
    (r) =>
      metric(r, key);
  return [
    ...section(
      'Consumers on one channel: CPU per message and memory per consumer',
      consumerScenarios.flatMap((s) => present(rows, s)),
      [
        { head: 'consumers', id: true, cell: (r) => r.scenario.slice('consumers-'.length) },
        LIB,
        CPU,
        fig('heap KiB / consumer', 'heapPerConsumerKiB', 2),
        fig('heap KiB / consumer, second half', 'heapPerConsumerMarginalKiB', 2),
        fig('RSS KiB / consumer', 'rssPerConsumerKiB', 1),
        fig('attach µs / consumer', 'attachUsPerConsumer'),
        {
          head: 'warren CPU ÷ this',
          cell: (r) => (r.lib === 'warren' ? '' : ratio(w(r.scenario)?.cpuUsPerMsg, r.cpuUsPerMsg)),
        },
      ],
      [
        `warren CPU/msg at 1,000 consumers ÷ at 1: ${ratio(w('consumers-1000')?.cpuUsPerMsg, w('consumers-1')?.cpuUsPerMsg)} (flat is 1.00×); ÷ best peer's at 1,000 (${bestCpu?.lib ?? '–'}): ${ratio(w('consumers-1000')?.cpuUsPerMsg, bestCpu?.cpuUsPerMsg)}; heap per consumer ÷ lowest peer's (${bestConsumerMem?.lib ?? '–'}): ${ratio(heap('heapPerConsumerKiB')(w('consumers-1000')), heap('heapPerConsumerKiB')(bestConsumerMem))}, over the second half alone (${bestConsumerMarginal?.lib ?? '–'}): ${ratio(heap('heapPerConsumerMarginalKiB')(w('consumers-1000')), heap('heapPerConsumerMarginalKiB')(bestConsumerMarginal))}.`,
      ],
    ),
    ...section(
      'Channels on one connection, opened one after another',
      present(rows, 'channels'),
      [
        LIB,
        fig('channels', 'channels'),
        fig('open µs, median', 'openUsMedian'),
        {
          head: 'first 100 / last 100',
          cell: (r) => `${ms(metric(r, 'openUsFirst100'))} / ${ms(metric(r, 'openUsLast100'))}`,
        },
        { head: 'CPU µs / open', cell: (r) => fmtNum(r.cpuUsPerMsg, 0) },
        fig('heap KiB / channel', 'heapPerChannelKiB', 2),
        fig('heap KiB / channel, second half', 'heapPerChannelMarginalKiB', 2),
        fig('RSS KiB / channel', 'rssPerChannelKiB', 2),
      ],
      [
        `warren heap per channel ÷ lowest peer's (${bestChannelMem?.lib ?? '–'}): ${ratio(heap('heapPerChannelKiB')(w('channels')), heap('heapPerChannelKiB')(bestChannelMem))}, over the second half alone (${bestChannelMarginal?.lib ?? '–'}): ${ratio(heap('heapPerChannelMarginalKiB')(w('channels')), heap('heapPerChannelMarginalKiB')(bestChannelMarginal))}; warren's last 100 opens ÷ first 100: ${ratio(metric(w('channels'), 'openUsLast100'), metric(w('channels'), 'openUsFirst100'))}.`,
      ],
    ),
    ...section(
      'Connections from one process, opened at once (each with one channel)',
      present(rows, 'connections'),
      [
        LIB,
        fig('connections', 'connections'),
        fig('total ms', 'totalMs'),
        { head: 'CPU µs / connection', cell: (r) => fmtNum(r.cpuUsPerMsg, 0) },
        fig('heap KiB / connection', 'heapPerConnectionKiB', 1),
        fig('RSS KiB / connection', 'rssPerConnectionKiB', 1),
      ],
      [
        `warren ÷ floor: time ${ratio(metric(w('connections'), 'totalMs'), metric(floorConn, 'totalMs'))}, heap ${ratio(heap('heapPerConnectionKiB')(w('connections')), heap('heapPerConnectionKiB')(floorConn))}; heap ÷ lowest peer's (${bestConnMem?.lib ?? '–'}): ${ratio(heap('heapPerConnectionKiB')(w('connections')), heap('heapPerConnectionKiB')(bestConnMem))}.`,
      ],
    ),
    ...section(
      'Fan-out: one publish to a fanout exchange with 1,000 bound queues, each consumed by the library',
      present(rows, 'fanout'),
      [
        LIB,
        fig('publishes', 'publishes'),
        {
          head: 'all 1,000 delivered, ms median (max)',
          cell: (r) => `${fmtNum(metric(r, 'allDeliveredMedianMs'), 1)} (${fmtNum(metric(r, 'allDeliveredMaxMs'), 1)})`,
        },
        { head: 'CPU µs / delivered copy', cell: (r) => fmtNum(r.cpuUsPerMsg, 2) },
      ],
      [
        `warren ÷ floor: time ${ratio(metric(w('fanout'), 'allDeliveredMedianMs'), metric(floorFan, 'allDeliveredMedianMs'))}; warren CPU ÷ best peer's (${bestFanCpu?.lib ?? '–'}): ${ratio(w('fanout')?.cpuUsPerMsg, bestFanCpu?.cpuUsPerMsg)}.`,
      ],
    ),
  ];
}

/** The targets and the extended scenarios' tables, as markdown; empty when none of them ran. */
export function extendedMarkdown(rows: readonly SummaryRow[]): string {
  return [...targets(rows), ...recoveryTables(rows), ...scaleTables(rows)].join('\n').trim();
}
